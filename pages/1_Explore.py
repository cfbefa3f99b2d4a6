"""Explore: browse Stanford Cars photos with their ground truth; CAM and Grad-CAM boxes against it.

The navigation, the photo, the display controls and the overlays form one fragment: 'Next', τ, α or the
colormap re-run only that, not the sidebar's model and method choices or the dataset above it. (Overlays
in a fragment of their own inside it would re-run less on τ, but Streamlit 1.67 refuses a nested fragment
the sidebar and the containers of the fragment around it once that re-runs.) While a photo is shown, the
next one is loaded and explained in the background. The overlays' boxes follow the τ slider in the
browser before the fragment's re-run lands (``ui.live_overlay``).
"""

import random
import time

import numpy as np
import streamlit as st

from core.cam import Target
from core.methods import METHODS
from core.explanation import RedrawCache, render_views
from core.report import build_report
from core.images import ImageDecodeError
from core.overlay import draw_boxes
from ui.controls import display_controls, explain_controls
from ui.dataset import dataset_picker, split_ious
from ui.explain import explain_ahead, raw_explanation, take_ahead
from ui.page import start_page
from ui.render import display_jpeg, live_boxes, prediction_summary, views_side_by_side
from ui.report import report_buttons
from ui.state import keep_valid

loaded = start_page("Explore Stanford Cars")
if loaded is None:
    st.stop()
bundle = loaded.bundle
dataset = dataset_picker()
if dataset is None:
    st.stop()
with st.expander(f"Dataset: {dataset.summary.layout} · {sum(len(s) for s in dataset.splits.values())} photos"):
    st.code(dataset.describe(), language=None)
splits = [name for name, split in dataset.splits.items() if len(split)]
if not splits:
    st.error("No photos of this dataset are on disk: only annotations were found. Check the folder.")
    st.stop()
choice = explain_controls(bundle, ground_truth_available=True)
if not choice.methods:
    st.warning("Pick at least one method in the sidebar.")
    st.stop()

top = st.columns([1, 2, 2])
keep_valid("explore_split", splits, splits[-1])
split = dataset[top[0].selectbox("Split", splits, key="explore_split")]
table = split.annotations
present = sorted({int(label) for label in table.labels if label >= 0})
keep_valid("explore_class", [-1] + present, -1)
class_filter = top[1].selectbox("Class", [-1] + present, key="explore_class",
                                format_func=lambda c: "All classes" if c < 0 else table.class_names[c])
orders = ["dataset order"] + [f"worst {METHODS[m].label} IoU first" for m in choice.methods]
keep_valid("explore_order", orders, orders[0])
order = top[2].selectbox("Order", orders, key="explore_order")
indices = np.arange(len(split)) if class_filter < 0 else table.indices_of_class(class_filter)
if len(indices) == 0:
    st.info("No photo of this class in this split.")
    st.stop()


def target_for(record) -> Target:
    if choice.target is not None:
        return choice.target
    if record.label is None or record.label >= bundle.num_classes:
        return Target.predicted()
    return Target.of_class(record.label, record.class_name)


target_key = choice.target if choice.target is not None else "ground truth"
sorted_by_iou = order != "dataset order"
display = display_controls(choice.pipeline, choice.methods) if sorted_by_iou else None  # else: in the fragment
if sorted_by_iou:
    method = next(m for m in choice.methods if order.startswith(f"worst {METHODS[m].label} "))
    ious = split_ious(loaded, split, indices, choice, target_for, target_key, display, method)
    indices = indices[np.argsort(np.nan_to_num(ious, nan=2.0), kind="stable")]

count = len(indices)
position_key = "explore_position"
st.session_state[position_key] = min(max(1, st.session_state.get(position_key, 1)), count)


def step(delta: int) -> None:
    st.session_state[position_key] = (st.session_state[position_key] - 1 + delta) % count + 1


def jump_random() -> None:
    st.session_state[position_key] = random.randint(1, count)


def photo_view(fixed_display) -> None:
    """Navigation, the photo, its explanation and overlays. A fragment on the plain order: 'Next' and τ
    re-run only this, not the sidebar, the dataset and the model above it."""
    nav = st.columns([1, 1, 1, 3])
    nav[0].button("◀ Previous", on_click=step, args=(-1,), width="stretch")
    nav[1].button("Next ▶", on_click=step, args=(1,), width="stretch")
    nav[2].button("Random", on_click=jump_random, width="stretch")
    nav[3].number_input(f"Photo (1–{count})", 1, count, key=position_key)
    index = int(indices[st.session_state[position_key] - 1])

    shown_key = (id(split), index)  # redraws reuse the decoded photo instead of reading it again
    if st.session_state.get("explore_record", (None, None))[0] != shown_key:
        ahead = take_ahead(loaded, shown_key, choice)
        try:
            st.session_state["explore_record"] = (shown_key, ahead or split[index])
        except ImageDecodeError as error:
            st.error(f"{error}. Skip to the next photo.")
            st.stop()
    record = st.session_state["explore_record"][1]

    truth = None if record.box is None else np.asarray(record.box, float)
    target = target_for(record)
    raw, seconds, cached = raw_explanation(loaded, record.id, record.image, choice, target)

    left, right = st.columns([1, 2])
    with left:
        if st.session_state.get("explore_truth_jpeg", (None, b""))[0] != shown_key:  # τ moves reuse it
            shown = record.image if truth is None else draw_boxes(record.image, [truth], color=(40, 220, 60),
                                                                   labels=["truth"])
            st.session_state["explore_truth_jpeg"] = (shown_key, display_jpeg(shown))
        st.image(st.session_state["explore_truth_jpeg"][1], width="stretch",
                 caption=f"{record.id} · {record.image.shape[1]}×{record.image.shape[0]}")
    with right:
        st.markdown(f"**Ground truth:** {record.class_name or 'unknown class'}"
                    + ("" if truth is not None else " · no box annotated"))
        prediction_summary(bundle, raw, target.label)
        network_note = st.empty()

    display = fixed_display or display_controls(choice.pipeline, choice.methods)
    started = time.perf_counter()
    redraw_cache = st.session_state.setdefault("explore_redraw", RedrawCache())  # τ moves reuse maps and blends
    views = render_views(record.image, raw, display, truth, redraw_cache)
    live = live_boxes(record.id, record.image, raw, views, display, truth, redraw_cache)
    redraw_ms = (time.perf_counter() - started) * 1000
    network_note.caption(f"network {seconds * 1000:.0f} ms" + (" (cached)" if cached else "")
                         + f" · redraw {redraw_ms:.0f} ms")
    views_side_by_side(views, record.id.replace("/", "_").replace(":", "_"), f"explore_{index}", choice.variant, live)
    report_buttons(lambda: build_report(record.id, record.image, raw, display, bundle, choice.pipeline,
                                        views=views, truth=truth, seconds=seconds, target_label=target.label),
                   record.id, "explore")

    following = int(indices[st.session_state[position_key] % count])
    explain_ahead(loaded, (id(split), following), lambda: split[following], lambda r: (r.id, r.image, target_for(r)),
                  choice)


(photo_view if sorted_by_iou else st.fragment(photo_view))(display)
