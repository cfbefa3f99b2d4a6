"""Run the network only when the photo, model, layer, class or recipe changed; keep raw maps per session."""

from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np
import streamlit as st

from core.cam import RawExplanation, Target
from ui.controls import ExplainChoice
from ui.models import LoadedModel

_CACHE_KEY = "raw_explanations"
_CACHE_SIZE = 32


def raw_explanation(loaded: LoadedModel, photo_id: str, photo: np.ndarray, choice: ExplainChoice,
                    target: Target) -> tuple[RawExplanation, float, bool]:
    """(raw maps, seconds the network took, whether it came from this session's cache)."""
    cache: OrderedDict = st.session_state.setdefault(_CACHE_KEY, OrderedDict())
    key = (loaded.key, photo_id, choice.methods, choice.layer, target, choice.variant, choice.pipeline.recipe)
    if key in cache:
        cache.move_to_end(key)
        raw, seconds = cache[key]
        return raw, seconds, True
    started = time.perf_counter()
    explainer = loaded.explainer_for(choice.pipeline)
    raw = explainer.explain([photo], methods=choice.methods, layer=choice.layer, target=target,
                            variant=choice.variant)[0]
    seconds = time.perf_counter() - started
    cache[key] = (raw, seconds)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return raw, seconds, False
