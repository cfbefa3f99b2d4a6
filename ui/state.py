"""Choices that survive moving between pages and reruns.

Streamlit deletes a widget's value at the end of every run in which the widget was not drawn, so a
layer chosen on Upload would be gone after a visit to Evaluate. The standard remedy: keep a copy under
a key that belongs to no widget (Streamlit never cleans those) and give it back to the widget's key
when Streamlit dropped it. :func:`sync` does both for every kept choice, once at the top of every page
(``ui.page.start_page``); a page only has to use one of the keys below for its widget.
"""

from __future__ import annotations

import streamlit as st

__all__ = ["KEPT_KEYS", "KEPT_PREFIXES", "default", "is_kept", "keep_valid", "sync"]

KEPT_KEYS = frozenset({
    # sidebar: model, methods, layer, target, recipe, pipeline, τ and drawing
    "model_key", "custom_model", "methods", "layer", "every_layer", "target_mode", "target_group", "variant",
    "pipeline", "eigen_smooth", "layer_method", "tau_mode", "threshold", "alpha", "colormap", "component",
    "shape", "box_correction", "stages_method", "compare_methods", "compare_order", "stages_source",
    "compare_source",
    # pages: dataset, photo, upload source, evaluation form
    "dataset_path", "use_sample", "layers_source",
})
KEPT_PREFIXES = ("target_class_", "grid_layers_", "explore_", "eval_")
"""Keys starting with these are kept too (per-model class menus, the Explore and Evaluate forms)."""
_NOT_KEPT = frozenset({"explore_record", "explore_truth_jpeg", "explore_redraw"})  # a photo and caches, not choices
_COPIES = "_kept_choices"


def is_kept(key: str) -> bool:
    return key not in _NOT_KEPT and (key in KEPT_KEYS or key.startswith(KEPT_PREFIXES))


def sync() -> None:
    """Copy every kept widget value into the copies, then give every copy back through the
    session-state API.

    At the top of a run the widgets drawn in the previous run still hold their (possibly just changed)
    values; those of another page's widgets were deleted at the end of the previous run. Values still
    present are assigned too: a widget whose options differ on this page (the class menu offers
    'ground-truth class' on Explore only) is a new widget to Streamlit and would otherwise start at its
    default.
    """
    state = st.session_state
    copies: dict = state.setdefault(_COPIES, {})
    for key in list(state.keys()):
        if isinstance(key, str) and is_kept(key):
            copies[key] = state[key]
    for key, value in copies.items():
        state[key] = value  # also for present keys: a widget drawn anew (other options) takes it up


def default(key: str, value) -> None:
    """A widget's first value, given through session state (passing it to the widget as well would
    warn, and would reset it when the page is drawn again)."""
    if key not in st.session_state:
        st.session_state[key] = value


def keep_valid(key: str, options, fallback) -> None:
    """Before drawing a menu: a kept value this menu does not offer (another dataset's class, a method
    no longer chosen) becomes ``fallback``; a missing one too."""
    if st.session_state.get(key) not in list(options):
        st.session_state[key] = fallback
