"""Compare: every chosen method on one photo, side by side, with its box, IoU and time."""

import streamlit as st

from ui.compare import SORT_ORDERS, compare_grid, iou_table, method_ranks, run_methods, sort_results
from ui.controls import display_controls
from ui.page import start_page
from ui.study import compare_controls, pick_study_photo, target_for_photo

loaded = start_page("Compare methods")
if loaded is None:
    st.stop()
bundle = loaded.bundle
choice = compare_controls(bundle)
display = display_controls(choice.pipeline, choice.methods)
if not choice.methods:
    st.warning("Pick at least one method in the sidebar.")
    st.stop()
photo = pick_study_photo("compare")
if photo is None:
    st.stop()
target = target_for_photo(choice, photo, bundle)
try:
    results = run_methods(loaded, photo, choice, target, display)
except ValueError as error:  # a layer or method this model cannot run
    st.error(f"These methods cannot run here: {error}")
    st.info("Pick another layer or remove the method in the sidebar.")
    st.stop()
order = st.radio("Sort by", SORT_ORDERS, horizontal=True, key="compare_order")
results = sort_results(results, order)
st.caption(f"{len(results)} methods · {photo.name} · explaining: {target.label} · one view at "
           f"{bundle.input_size[1]}×{bundle.input_size[0]}; each method boxes with its own τ (sidebar).")
compare_grid(results, method_ranks(bundle.name))
with st.expander("The numbers as a table"):
    st.dataframe(iou_table(results), hide_index=True)
