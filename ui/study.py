"""Controls of the pages that study one photo with chosen methods ("How it works", "Compare"): which photo
(the one on Explore, the sample drawing or an upload), which method(s), layer, class and recipe.

Both pages run one view at the network's input size (the plain pipeline): stages and timings are about
one forward pass, and each method boxes with the τ calibrated for that pipeline.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.cam import Target
from core.methods import METHODS
from core.model_spec import ModelBundle
from core.pipelines import CalibratedPipeline, calibrated_pipelines
from ui.controls import ExplainChoice, _target_and_variant, layer_slider
from ui.photos import ACCEPTED_TYPES, SAMPLE, Photo, decode_upload

# The car's box as assets/draw_sample_car.py draws it (CAR_BOX), project convention: the drawing's truth.
SAMPLE_CAR_BOX = (117.0, 183.0, 723.0, 406.0)
EXPLORE_PHOTO = "Photo on the Explore page"
SOURCES = (EXPLORE_PHOTO, "Sample drawing", "Upload a photo")


def _explore_photo() -> Photo | None:
    """The photo the Explore page shows now (kept in this session), with its ground-truth box."""
    shown = st.session_state.get("explore_record")
    if not shown or shown[1] is None:
        return None
    record = shown[1]
    truth = None if record.box is None else np.asarray(record.box, float)
    return Photo(f"explore:{record.id}", record.id, record.image, truth, record.label)


def pick_study_photo(key: str) -> Photo | None:
    """The photo to study: Explore's current one (when Explore has shown one), the sample drawing (its
    drawn box is the ground truth) or an upload (no ground truth). None with a message when there is none."""
    explore = _explore_photo()
    sources = [s for s in SOURCES if s != EXPLORE_PHOTO or explore is not None]
    source = st.radio("Photo", sources, horizontal=True, key=f"{key}_source")
    if source == EXPLORE_PHOTO:
        return explore
    if source == "Sample drawing":
        photo = decode_upload(SAMPLE.name, SAMPLE.read_bytes())
        return None if photo is None else Photo(photo.key, photo.name, photo.image, np.array(SAMPLE_CAR_BOX))
    file = st.file_uploader("Car photo", type=ACCEPTED_TYPES, key=f"{key}_upload",
                            help="Kept in memory, never saved. Uploads have no ground truth, so no IoU.")
    if file is None:
        st.info("Upload a photo of a car, or pick the sample drawing.")
        return None
    return decode_upload(file.name, file.getvalue())


def target_for_photo(choice: ExplainChoice, photo: Photo, bundle: ModelBundle) -> Target:
    """The chosen target; "ground-truth class" uses the photo's label when the model has that class."""
    if choice.target is not None:
        return choice.target
    if photo.label is None or not 0 <= photo.label < bundle.num_classes:
        return Target.predicted()
    return Target.of_class(photo.label, bundle.class_names[photo.label])


def plain_pipeline(bundle: ModelBundle) -> CalibratedPipeline:
    """One view at the input size, with the τ calibrated for it."""
    pipelines = calibrated_pipelines(bundle.metadata)
    return next(p for p in pipelines if p.recipe.views == 1 and not p.recipe.sizes)


def available_methods(bundle: ModelBundle) -> list[str]:
    """Every registered method this model can run (CAM needs a pooling → Dense head)."""
    return [m for m, entry in METHODS.items() if not (entry.needs_cam_head and bundle.cam_head is None)]


def _layer_control(bundle: ModelBundle, methods) -> str:
    """The shared layer slider, deepest to shallowest (same key as the other pages, so it follows the
    user), saying which of ``methods`` it does not change."""
    layer = layer_slider(bundle)
    head = bundle.cam_head.feature_layer if bundle.cam_head else None
    cam_like = [METHODS[m].label for m in methods if METHODS[m].needs_cam_head]
    if cam_like and layer != head:
        st.sidebar.caption(f"{', '.join(cam_like)} always use(s) `{head}`, the layer before pooling.")
    layer_free = [METHODS[m].label for m in methods if METHODS[m].kind == "input"]
    if layer_free:
        st.sidebar.caption(f"{', '.join(layer_free)} ignore(s) the layer: the map is at the input's resolution, "
                           "from the gradients of the input and of every layer with a bias.")
    return layer


def single_method_controls(bundle: ModelBundle) -> ExplainChoice:
    """One method (any registered one the model can run), its layer, class and recipe."""
    available = available_methods(bundle)
    if bundle.cam_head is None:
        st.sidebar.caption(f"CAM unavailable: {bundle.cam_unavailable_reason}")
    if st.session_state.get("stages_method") not in available:
        chosen = [m for m in st.session_state.get("methods", []) if m in available]
        st.session_state["stages_method"] = chosen[0] if chosen else ("gradcam" if "gradcam" in available
                                                                      else available[0])
    method = st.sidebar.selectbox("Method", available, key="stages_method",
                                  format_func=lambda m: METHODS[m].menu_label)
    layer = _layer_control(bundle, [method])
    return ExplainChoice((method,), layer, *_target_and_variant(bundle, ground_truth_available=True),
                         plain_pipeline(bundle).at_layer(layer, bundle.default_layer))


def compare_controls(bundle: ModelBundle) -> ExplainChoice:
    """The methods to compare (default: every one-pass method; slow ones are opt-in), layer, class, recipe."""
    available = available_methods(bundle)
    if bundle.cam_head is None:
        st.sidebar.caption(f"CAM unavailable: {bundle.cam_unavailable_reason}")
    fast = [m for m in available if METHODS[m].one_pass]
    if not set(st.session_state.get("compare_methods", fast)) <= set(available):
        del st.session_state["compare_methods"]
    st.session_state.setdefault("compare_methods", fast)
    methods = st.sidebar.multiselect(
        "Methods", available, key="compare_methods", format_func=lambda m: METHODS[m].menu_label,
        help="Every one-pass method shares one forward and one backward pass. Slow ones run a forward pass "
             "per channel each (about a minute for Score-CAM here; SS-CAM and IS-CAM 4 times that), with "
             "progress and a Stop button.")
    layer = _layer_control(bundle, methods)
    return ExplainChoice(tuple(methods), layer, *_target_and_variant(bundle, ground_truth_available=True),
                         plain_pipeline(bundle).at_layer(layer, bundle.default_layer))
