"""Loading models once per server process and sharing them safely between browser sessions."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st

from core.cam import Explainer, Target
from core.methods import DEFAULT_METHODS
from core.model_sources import (
    DefaultChoice,
    keras_weights_cached,
    load_model,
    network_reachable,
    trained_models,
)
from core.multiscale import FusedExplainer
from core.pipelines import CalibratedPipeline, calibrated_pipelines, target_for

AUTO = "default"


@dataclass(frozen=True)
class LoadedModel:
    """One model shared by every browser session: its plain explainer and, built on first use, one
    fused explainer per calibrated pipeline."""

    key: str
    choice: DefaultChoice
    explainer: Explainer
    _fused: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def bundle(self):
        return self.choice.bundle

    @property
    def pipelines(self) -> list[CalibratedPipeline]:
        return calibrated_pipelines(self.bundle.metadata)

    def explainer_for(self, pipeline: CalibratedPipeline):
        """The explainer that makes maps the way ``pipeline`` was calibrated (same ``explain`` call)."""
        if pipeline.recipe.views == 1 and not pipeline.recipe.sizes:
            return self.explainer
        with self._lock:
            if pipeline.recipe not in self._fused:
                self._fused[pipeline.recipe] = FusedExplainer(self.bundle, pipeline.recipe, self.explainer)
            return self._fused[pipeline.recipe]


@st.cache_data(ttl=300, show_spinner=False)
def _download_possible() -> bool:
    return network_reachable()


def model_options() -> dict[str, str]:
    """Menu key → label, only for models that can be loaded here."""
    options = {AUTO: "Automatic (best available)"}
    if keras_weights_cached("resnet50") or _download_possible():
        options["resnet50"] = "ResNet50 · ImageNet (Keras weights)"
    options["mobilenetv2-offline"] = "MobileNetV2 · ImageNet (offline weights)"
    for path in trained_models():
        options[str(path)] = f"Your model · {path.parent.name}/{path.name}"
    return options


def _warm_up(loaded: LoadedModel) -> None:
    """Trace the default pipeline's compiled functions now, under the loading spinner, so the first
    photo a user explains takes milliseconds rather than seconds."""
    pipeline = loaded.pipelines[0]
    bundle = loaded.bundle
    try:
        target = target_for(bundle, pipeline.target)
    except ValueError:
        target = Target.predicted()
    methods = tuple(m for m in DEFAULT_METHODS if m != "cam" or bundle.cam_head is not None)
    height, width = bundle.input_size
    loaded.explainer_for(pipeline).explain([np.zeros((height, width, 3), np.uint8)], methods=methods,
                                           target=target)


@st.cache_resource(max_entries=3, show_spinner=False)
def _load(key: str) -> LoadedModel:
    choice = load_model(key)
    loaded = LoadedModel(key, choice, Explainer(choice.bundle))
    _warm_up(loaded)
    return loaded


def get_model(key: str) -> LoadedModel | None:
    """The loaded model for ``key``, with a progress note the first time; errors shown in the page."""
    try:
        with st.spinner("Loading and compiling the model (the very first start also converts the offline "
                        "weights; about 10 s)…"):
            return _load(key)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        st.error(f"The model could not be loaded: {error}")
        st.info("Pick another model in the sidebar, or check the model file path.")
        return None


def custom_model_path(text: str) -> str | None:
    """A user-typed path to a .keras file, validated before any loading."""
    text = text.strip()
    if not text:
        return None
    path = Path(text).expanduser()
    if path.suffix != ".keras":
        st.sidebar.error("Only Keras 3 `.keras` files load safely (safe mode, no code). Re-save your model as .keras.")
        return None
    if not path.is_file():
        st.sidebar.error(f"No file at {path}.")
        return None
    return str(path)
