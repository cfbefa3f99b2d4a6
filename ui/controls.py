"""Sidebar controls shared by every page; they return plain values, never touch the model."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.cam import Target
from core.methods import DEFAULT_METHODS, METHODS
from core.explanation import BOX_SHAPES, COMPONENT_MODES, BoxSettings, DisplaySettings
from core.model_spec import ModelBundle
from core.overlay import COLORMAPS
from core.pipelines import CalibratedPipeline, calibrated_pipelines
from ui.leaderboard import standing_caption
from ui.models import AUTO, custom_model_path, model_options
from ui.state import default as _default

TARGET_MODES = ("predicted class", "ground-truth class", "class group", "any class")
TAU_MODES = ("calibrated τ per method", "one τ for all (slider)")


def model_picker() -> str:
    """The chosen model key (menu entry or a typed .keras path)."""
    options = model_options()
    if st.session_state.get("model_key") not in options:
        st.session_state["model_key"] = AUTO
    key = st.sidebar.selectbox("Model", list(options), format_func=options.get, key="model_key")
    with st.sidebar.expander("Use my own .keras model"):
        custom = custom_model_path(st.text_input(
            "Path to a .keras file on this machine", key="custom_model",
            help="Loaded with Keras safe mode: files that would run code (Lambda layers) are refused."))
    return custom or key


@dataclass(frozen=True)
class ExplainChoice:
    """What the network must compute: changing any of it runs the model once more."""

    methods: tuple[str, ...]
    layer: str
    target_mode: str
    target: Target | None  # None: ground truth, resolved per photo by the page
    variant: str
    pipeline: CalibratedPipeline = CalibratedPipeline()
    eigen_smooth: bool = False


def explain_controls(bundle: ModelBundle, ground_truth_available: bool = False,
                     per_layer: bool = False) -> ExplainChoice:
    """Network-side controls; ``per_layer`` pages pick their own layers, so methods and layer are hidden."""
    sidebar = st.sidebar
    if per_layer:  # the layer grid compares layers on the plain pipeline
        plain = next(p for p in calibrated_pipelines(bundle.metadata) if p.recipe.views == 1 and not p.recipe.sizes)
        pipeline = _apply_pipeline_defaults(bundle, plain)
        layered = [k for k, m in METHODS.items() if m.one_pass and not m.needs_cam_head]
        _default("layer_method", "gradcam")
        chosen = sidebar.selectbox("Method", layered, key="layer_method", format_func=lambda m: METHODS[m].label,
                                   help="Any one-pass method: every layer comes from one forward and one "
                                        "backward pass. FullGrad ignores the layer: one map, whatever the "
                                        "layers.")
        return ExplainChoice((chosen,), bundle.default_layer,
                             *_target_and_variant(bundle, ground_truth_available), pipeline)
    pipeline = _pipeline_picker(bundle)
    available = [m for m in METHODS if not (METHODS[m].needs_cam_head and bundle.cam_head is None)]
    if bundle.cam_head is None:
        sidebar.caption(f"CAM unavailable: {bundle.cam_unavailable_reason}")
    if not set(st.session_state.get("methods", available)) <= set(available):
        del st.session_state["methods"]
    _default("methods", [m for m in DEFAULT_METHODS if m in available] or available[:2])
    chosen = sidebar.multiselect(
        "Methods", available, format_func=lambda m: METHODS[m].menu_label, key="methods",
        help="One-pass methods share one forward and one backward pass. Slow ones run a forward pass per "
             "channel (SS-CAM and IS-CAM several), or a forward and backward pass per noisy copy (Smooth "
             "Grad-CAM++), show progress and can be stopped.")
    standing = standing_caption(chosen, bundle.name)
    if standing:
        sidebar.caption(standing)
    slow = [METHODS[m].label for m in chosen if not METHODS[m].one_pass]
    if slow and pipeline.recipe.views > 1:
        sidebar.caption(f"{', '.join(slow)} run(s) their extra passes (per channel, or per noisy copy) for "
                        f"each of this pipeline's {pipeline.recipe.views} views; 'one view (fast)' in Detail "
                        "is quicker.")
    ignoring = [METHODS[m].label for m in chosen if not METHODS[m].uses_class]
    if ignoring:
        sidebar.caption(f"{', '.join(ignoring)} ignore(s) the class: the map is the same for every target.")
    layer_free = [METHODS[m].label for m in chosen if METHODS[m].kind == "input"]
    if layer_free:
        sidebar.caption(f"{', '.join(layer_free)} ignore(s) the layer below: the map is at the input's "
                        "resolution, from the gradients of the input and of every layer with a bias.")
    layer = layer_slider(bundle)
    if not per_layer:
        pipeline = pipeline.at_layer(layer, bundle.default_layer)
    smooth = sidebar.toggle("Eigen-smoothing", key="eigen_smooth",
                            help="Show the first principal component of each method's weighted activations "
                                 "instead of their sum (pytorch-grad-cam's eigen_smooth): less noise.")
    return ExplainChoice(tuple(chosen), layer, *_target_and_variant(bundle, ground_truth_available), pipeline,
                         smooth)


def layer_slider(bundle: ModelBundle) -> str:
    """The layer as a slider from the deepest to the shallowest: the suggested block outputs, or every
    spatial layer when asked."""
    sidebar = st.sidebar
    every = sidebar.toggle("Every spatial layer", key="every_layer",
                           help=f"The slider runs over the {len(bundle.suggested_layers)} suggested block "
                                f"outputs; on, over all {len(bundle.conv_layers)} layers with a spatial output.")
    suggested = [n for n in bundle.suggested_layers if n in bundle.conv_layers] or list(bundle.conv_layers)
    options = list(bundle.conv_layers) if every else suggested
    if st.session_state.get("layer") not in options:
        st.session_state["layer"] = bundle.default_layer if bundle.default_layer in options else options[0]
    if len(options) == 1:
        sidebar.caption(f"Layer: `{options[0]}` (the only spatial layer)")
        return options[0]
    return sidebar.select_slider(
        "Layer (deepest → shallowest)", options, key="layer",
        help="For every method but CAM (always the layer before pooling). Deeper layers see whole objects "
             "at low resolution; shallower ones see parts and edges at high resolution.")


def _pipeline_picker(bundle: ModelBundle) -> CalibratedPipeline:
    """Which calibrated way of making maps to use (views, target, τ); the first is the calibrated default."""
    pipelines = calibrated_pipelines(bundle.metadata)
    if st.session_state.get("pipeline", 0) >= len(pipelines):
        st.session_state["pipeline"] = 0
    index = st.sidebar.selectbox(
        "Detail", range(len(pipelines)), key="pipeline", format_func=lambda i: pipelines[i].label,
        help="More views (a larger input, the mirrored photo) give tighter maps and boxes but cost more. "
             "Each comes with the threshold calibrated for it.") if len(pipelines) > 1 else 0
    return _apply_pipeline_defaults(bundle, pipelines[index])


def _apply_pipeline_defaults(bundle: ModelBundle, pipeline: CalibratedPipeline) -> CalibratedPipeline:
    """When the pipeline changes, its calibrated τ and target become the controls' values."""
    marker = (bundle.name, pipeline.recipe, pipeline.target)
    if st.session_state.get("_pipeline_applied") != marker:
        st.session_state["_pipeline_applied"] = marker
        st.session_state["threshold"] = pipeline.threshold("cam")
        wants_group = pipeline.target == "car" and bundle.class_groups
        st.session_state["target_mode"] = "class group" if wants_group else "predicted class"
    return pipeline


_FORCED_MODE = "_target_mode_forced"


def _offer_target_mode(modes: list[str]) -> None:
    """A page without ground truth cannot offer 'ground-truth class': it shows the first mode instead,
    and the next page that offers it gets the user's choice back (unless the user picked another)."""
    state = st.session_state
    if _FORCED_MODE in state:
        wanted, fallback = state[_FORCED_MODE]
        if state.get("target_mode") != fallback:
            del state[_FORCED_MODE]  # the user chose another mode meanwhile
        elif wanted in modes:
            state["target_mode"] = wanted
            del state[_FORCED_MODE]
    if state.get("target_mode") not in modes:
        if state.get("target_mode") in TARGET_MODES:
            state[_FORCED_MODE] = (state["target_mode"], modes[0])
        state["target_mode"] = modes[0]


def _target_and_variant(bundle: ModelBundle, ground_truth_available: bool):
    sidebar = st.sidebar
    modes = [m for m in TARGET_MODES if (m != "ground-truth class" or ground_truth_available)
             and (m != "class group" or bundle.class_groups)]
    _offer_target_mode(modes)
    mode = sidebar.selectbox("Explain which class", modes, key="target_mode")
    target: Target | None = Target.predicted()
    if mode == "any class":
        index = sidebar.selectbox("Class", range(bundle.num_classes), format_func=lambda i: bundle.class_names[i],
                                  key=f"target_class_{bundle.name}")
        target = Target.of_class(index, bundle.class_names[index])
    elif mode == "class group":
        name = sidebar.selectbox("Group", list(bundle.class_groups), key="target_group")
        target = Target.group(bundle.class_groups[name], name)
    elif mode == "ground-truth class":
        target = None
    variant = sidebar.radio("Recipe", ("paper", "original"), key="variant", horizontal=True,
                            format_func={"paper": "Papers", "original": "Original study"}.get,
                            help="Papers: Grad-CAM on the class logit with ReLU, CAM min-max scaled. "
                                 "Original study: softmax probability, no ReLU, divided by the max.")
    return mode, target, variant


def _one_tau() -> None:
    st.session_state["tau_mode"] = TAU_MODES[1]


def display_controls(pipeline: CalibratedPipeline, methods=("cam",)) -> DisplaySettings:
    """Controls that only redraw: τ (each method's calibrated one, or one slider for all), alpha,
    colormap, box mode."""
    sidebar = st.sidebar
    sidebar.divider()
    first = methods[0] if methods else "cam"
    default_threshold = pipeline.threshold(first)
    _default("threshold", default_threshold)
    _default("tau_mode", TAU_MODES[0])
    mode = sidebar.radio("Box threshold", TAU_MODES, key="tau_mode",
                         help="A τ is calibrated per method and fits only that method's maps. Moving the "
                              "slider sets one τ for every method.")
    threshold = sidebar.slider("Box threshold τ", 0.0, 1.0, step=0.01, key="threshold", on_change=_one_tau,
                               help="Fraction of the normalised map's peak, for every method.")
    per_method = pipeline.thresholds_for(methods) if mode == TAU_MODES[0] else ()
    if per_method:
        sidebar.caption("τ: " + " · ".join(
            f"{METHODS[m].label} {t:.2f}" + ("" if pipeline.is_calibrated(m) else " (default, not calibrated)")
            for m, t in per_method) + f"  \n{pipeline.source}  \nMaps upsampled {pipeline.pipeline.interpolation}, "
                                        "as calibrated.")
    component = sidebar.selectbox("Box from", COMPONENT_MODES, key="component",
                                  format_func={"largest": "largest region", "all": "all regions",
                                               "peak": "region with the peak"}.get)
    shape = sidebar.selectbox("Box shape", BOX_SHAPES, key="shape",
                              format_func={"rect": "axis-aligned", "rotated": "rotated (original study)"}.get)
    _default("alpha", 0.5)
    alpha = sidebar.slider("Heatmap opacity α", 0.0, 1.0, step=0.05, key="alpha")
    colormap = sidebar.selectbox("Colormap", COLORMAPS, key="colormap")
    corrections = pipeline.corrections_for(methods) if per_method else ()
    if corrections:
        _default("box_correction", True)
        if not sidebar.checkbox("Calibrated box correction", key="box_correction",
                                help="An affine correction of the τ box, fitted with τ on the calibration "
                                     "photos (it lifts held-out mean IoU by 0.01–0.02; the raw regions stay "
                                     "drawn thin). It only applies with each method's calibrated τ."):
            corrections = ()
    return DisplaySettings(BoxSettings(threshold, component, shape), alpha, colormap, per_method,
                           corrections=corrections, interpolation=pipeline.pipeline.interpolation)
