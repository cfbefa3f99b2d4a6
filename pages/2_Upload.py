"""Upload: explain your own car photos (decoded in memory, never written to disk)."""

import streamlit as st

from core.explanation import RedrawCache, render_views
from core.report import make_report, photo_report
from ui.controls import display_controls, explain_controls
from ui.explain import raw_explanation
from ui.page import start_page
from ui.photos import ACCEPTED_TYPES, SAMPLE, decode_upload
from ui.render import live_boxes, prediction_summary, views_side_by_side
from ui.report import report_buttons
from ui.truth_box import ground_truth_input

loaded = start_page("Explain your photos")
if loaded is None:
    st.stop()
choice = explain_controls(loaded.bundle)
display = display_controls(choice.pipeline, choice.methods)
files = st.file_uploader("Car photos", type=ACCEPTED_TYPES, accept_multiple_files=True,
                         help="JPEG, PNG, WebP, GIF, BMP or TIFF. Photos stay in memory and are not saved.")
use_sample = st.toggle("Use the sample drawing", key="use_sample",
                       help="A car drawn by the project (assets/sample_car.jpg). ImageNet models do not call a "
                            "drawing a car: set 'Explain which class' to the car class group.")
uploads = [(f.name, f.getvalue()) for f in files or []]
if use_sample:
    uploads.insert(0, (SAMPLE.name, SAMPLE.read_bytes()))
if not uploads:
    st.info("Upload one or more photos of cars to see where the model looks.")
if not choice.methods:
    st.warning("Pick at least one method in the sidebar.")
    st.stop()


sections = []
# Per photo shown: τ moves reuse its maps, blends and sweeps; photos no longer uploaded drop theirs.
kept = st.session_state.get("upload_redraw", {})
caches = st.session_state["upload_redraw"] = {}
for index, (name, data) in enumerate(uploads):
    st.header(name, divider="gray")
    decoded = decode_upload(name, data)
    if decoded is None:
        continue
    photo, key = decoded.image, decoded.key
    truth = ground_truth_input(photo, key)
    target = choice.target
    raw, seconds, cached = raw_explanation(loaded, key, photo, choice, target)
    cache = caches[key] = kept.get(key) or RedrawCache()
    views = render_views(photo, raw, display, truth, cache)
    live = live_boxes(key, photo, raw, views, display, truth, cache)
    prediction_summary(loaded.bundle, raw, target.label)
    st.caption(f"{photo.shape[1]}×{photo.shape[0]} px · network {seconds * 1000:.0f} ms"
               + (" (cached)" if cached else ""))
    views_side_by_side(views, name.rsplit(".", 1)[0], f"{key}_{index}", choice.variant, live)
    sections.append((name, photo, raw, views, truth, seconds, target.label))

if sections:
    st.divider()
    report_buttons(lambda: make_report(
        [photo_report(name, photo, raw, loaded.bundle, display, target_label=label, calibrated=choice.pipeline,
                      views=views, truth=truth, seconds=seconds)
         for name, photo, raw, views, truth, seconds, label in sections],
        loaded.bundle, choice.pipeline, display, title="CAM Explorer report: your photos", variant=choice.variant),
        "uploads", "upload", photos=len(sections))
