"""Run the network only when the photo, model, layer, class or recipe changed; keep raw maps per session.

Slow (per-channel) methods show a progress bar and a Stop button. Streamlit stops a running script when
any widget is used, at its next call into Streamlit: the progress callback is such a call, so Stop ends
the computation between two chunks, and the flag its click sets keeps the next run from starting it
again until the user asks.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np
import streamlit as st

from core.cam import RawExplanation, RunOptions, Target
from core.methods import METHODS
from ui.controls import ExplainChoice
from ui.models import LoadedModel

_CACHE_KEY = "raw_explanations"
_STOPPED_KEY = "stopped_slow_methods"
_CACHE_SIZE = 32


def _stop(key) -> None:
    st.session_state[_STOPPED_KEY] = key


def _resume() -> None:
    st.session_state.pop(_STOPPED_KEY, None)


def _progress_options(slow: tuple[str, ...], choice: ExplainChoice, key) -> RunOptions:
    """A progress bar per request and a Stop button; the bar's updates are where a Stop lands."""
    bar = st.progress(0.0, text=f"{', '.join(METHODS[m].label for m in slow)}: starting…")
    st.button("Stop", key=f"stop_{hash(key)}", on_click=_stop, args=(key,),
              help="Stops the slow methods; the others are shown at once.")
    started = time.perf_counter()

    def report(method: str, done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - started, 1e-6)
        bar.progress(done / max(total, 1), text=f"{METHODS[method].label}: {done}/{total} channels · "
                                                 f"{rate:.0f}/s")

    return RunOptions(eigen_smooth=choice.eigen_smooth, progress=report)


def raw_explanation(loaded: LoadedModel, photo_id: str, photo: np.ndarray, choice: ExplainChoice,
                    target: Target) -> tuple[RawExplanation, float, bool]:
    """(raw maps, seconds the network took, whether it came from this session's cache)."""
    cache: OrderedDict = st.session_state.setdefault(_CACHE_KEY, OrderedDict())
    methods = choice.methods
    key = (loaded.key, photo_id, methods, choice.layer, target, choice.variant, choice.pipeline.recipe,
           choice.eigen_smooth)
    slow = tuple(m for m in methods if not METHODS[m].one_pass)
    if slow and st.session_state.get(_STOPPED_KEY) == key:
        st.info(f"Stopped: {', '.join(METHODS[m].label for m in slow)} not computed for this photo.")
        st.button("Compute them", key=f"resume_{hash(key)}", on_click=_resume)
        methods = tuple(m for m in methods if METHODS[m].one_pass)
        key = key[:2] + (methods,) + key[3:]
        slow = ()
    if key in cache:
        cache.move_to_end(key)
        raw, seconds = cache[key]
        return raw, seconds, True
    if not methods:
        st.stop()
    holder = st.empty()
    with holder.container():
        options = _progress_options(slow, choice, key) if slow else RunOptions(eigen_smooth=choice.eigen_smooth)
    started = time.perf_counter()
    explainer = loaded.explainer_for(choice.pipeline)
    raw = explainer.explain([photo], methods=methods, layer=choice.layer, target=target,
                            variant=choice.variant, options=options)[0]
    seconds = time.perf_counter() - started
    holder.empty()
    cache[key] = (raw, seconds)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return raw, seconds, False
