"""Drawing results: overlays side by side, IoU, boxes, an interactive heatmap and downloads."""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.cam import RawExplanation
from core.methods import METHODS
from core.explanation import DisplaySettings, MethodView, RedrawCache, truth_key
from core.model_spec import ModelBundle
from core.sweep import SweptBoxes, view_sweep
from ui.live_overlay import live_overlay

_HOVER_MAX_SIDE = 160  # hover heatmaps are downsampled: a full 1024×768 grid makes the browser crawl
# Overlays travel as JPEG no wider than they are shown (a third of a wide page, twice that for sharp
# screens): a full-size PNG of a 1024×768 overlay is ~1 MB, this is ~60 kB, and encoding is 10× quicker.
_SHOWN_MAX_WIDTH = 720
_JPEG_QUALITY = 85


def prediction_summary(bundle: ModelBundle, raw: RawExplanation, target_label: str) -> None:
    top = raw.top_k(5)
    best, score = top[0]
    st.markdown(f"**Prediction:** {bundle.class_names[best]} — {score:.1%}  ·  explaining: *{target_label}*")
    with st.expander("Top-5 classes"):
        st.table({"class": [bundle.class_names[c] for c, _ in top], "score": [f"{p:.2%}" for _, p in top]})


def display_jpeg(image_rgb: np.ndarray, max_width: int = _SHOWN_MAX_WIDTH) -> bytes:
    """JPEG bytes of an RGB image at most ``max_width`` wide (aspect kept), for ``st.image``."""
    height, width = image_rgb.shape[:2]
    if width > max_width:
        image_rgb = cv2.resize(image_rgb, (max_width, max(1, round(height * max_width / width))),
                               interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    return encoded.tobytes() if ok else b""


def show_image(image_rgb: np.ndarray, caption: str | None = None) -> None:
    st.image(display_jpeg(image_rgb), caption=caption, width="stretch")


def _png_bytes(view: MethodView) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(view.overlay, cv2.COLOR_RGB2BGR))
    return encoded.tobytes() if ok else b""


def _npy_bytes(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, values.astype(np.float32), allow_pickle=False)
    return buffer.getvalue()


def boxes_record(view: MethodView) -> dict:
    """Boxes and IoU of one view as plain JSON-ready values (project convention x1, y1, x2, y2)."""
    return {
        "method": view.method, "layer": view.layer, "iou": view.localized.iou,
        "boxes": [{"x1": float(b.box[0]), "y1": float(b.box[1]), "x2": float(b.box[2]), "y2": float(b.box[3]),
                   "pixels": int(b.area_px)} for b in view.localized.boxes],
    }


def _boxes_json(view: MethodView) -> str:
    return json.dumps(boxes_record(view), indent=2)


def hover_heatmap(view: MethodView) -> go.Figure:
    values = view.heatmap.values
    height, width = values.shape
    step = max(1, int(np.ceil(max(height, width) / _HOVER_MAX_SIDE)))
    small = values[::step, ::step]
    figure = go.Figure(go.Heatmap(
        z=small, x=np.arange(0, width, step), y=np.arange(0, height, step), colorscale="Jet", zmin=0, zmax=1,
        hovertemplate="x %{x}, y %{y}<br>value %{z:.3f}<extra></extra>"))
    figure.update_yaxes(autorange="reversed", scaleanchor="x")
    figure.update_layout(height=320, margin=dict(l=0, r=0, t=10, b=0))
    return figure


@dataclass(frozen=True)
class LiveBoxes:
    """What overlays need for their boxes to follow the τ slider in the browser (``ui.live_overlay``):
    each map's blend as JPEG (no predicted boxes), its sweep when the browser asks for it, the slider's τ
    the server drew, and ``token``, what the sweeps depend on (photo and box settings)."""

    sweep: Callable[[str, str], list[SweptBoxes]]
    blends: dict[tuple[str, str], bytes]
    slider_tau: float
    token: str


def live_boxes(photo_key: str, photo: np.ndarray, raw: RawExplanation, views: list[MethodView],
               display: DisplaySettings, ground_truth=None, cache: RedrawCache | None = None) -> LiveBoxes:
    """Blend JPEGs and sweeps for ``views`` of the photo ``photo_key``; with the page's ``cache`` a τ move
    reuses both."""
    truth = truth_key(ground_truth)
    blends = {}
    for view in views:
        key = ("blend jpeg", view.method, view.layer, display.interpolation, display.alpha, display.colormap, truth)
        make = functools.partial(display_jpeg, view.base)
        blends[(view.method, view.layer)] = make() if cache is None else cache.get(photo, raw, key, make)
    token = "|".join(map(str, (photo_key, display.box.component, display.box.shape, display.interpolation, truth)))
    return LiveBoxes(lambda method, layer: view_sweep(photo, raw, method, layer, display, ground_truth, cache),
                     blends, display.box.threshold, token)


def method_column(view: MethodView, file_stem: str, key: str, overlay_jpeg: bytes | None = None,
                  live: LiveBoxes | None = None) -> None:
    """One method's panel: overlay, IoU, box, warnings, hover heatmap and downloads. With ``live`` the
    overlay's boxes follow the τ slider in the browser."""
    entry = METHODS[view.method]
    st.subheader(f"{entry.label} · `{view.layer}`", help=f"{entry.paper}. {entry.doc.strip()}")
    if live is not None:
        live_overlay(view, live.blends[(view.method, view.layer)],
                     functools.partial(live.sweep, view.method, view.layer), live.slider_tau, live.token,
                     key=f"live_{key}")
    else:
        st.image(display_jpeg(view.overlay) if overlay_jpeg is None else overlay_jpeg, width="stretch")
    if view.heatmap.status:
        st.warning(view.heatmap.status)
    box = view.localized.main_box
    if view.localized.iou is not None:
        st.metric("IoU with the ground truth", f"{view.localized.iou:.3f}")
    if box is None:
        st.info("No region above the threshold: lower τ to get a box.")
    else:
        st.caption(f"Box (x1, y1, x2, y2) = ({box[0]:.0f}, {box[1]:.0f}, {box[2]:.0f}, {box[3]:.0f})"
                   f" · {len(view.localized.boxes)} region(s)")
    # Built only while open, and files only when clicked: a new photo or τ does not pay for them.
    with st.expander("Heatmap values (hover)", key=f"hover_open_{key}", on_change="rerun") as hover:
        if hover.open:
            st.plotly_chart(hover_heatmap(view), width="stretch", key=f"hover_{key}")
    stem = f"{file_stem}_{view.method}_{view.layer}"
    left, middle, right = st.columns(3)
    left.download_button("Overlay PNG", functools.partial(_png_bytes, view), f"{stem}.png", "image/png",
                         key=f"png_{key}", on_click="ignore")
    middle.download_button("Heatmap .npy", functools.partial(_npy_bytes, view.heatmap.values), f"{stem}.npy",
                           "application/octet-stream", key=f"npy_{key}", on_click="ignore")
    right.download_button("Boxes JSON", functools.partial(_boxes_json, view), f"{stem}_boxes.json",
                          "application/json", key=f"json_{key}", on_click="ignore")


_PER_ROW = 3


def views_side_by_side(views: list[MethodView], file_stem: str, key: str, variant: str = "paper",
                       live: LiveBoxes | None = None) -> None:
    """Methods in rows of three, each with its overlay, IoU and downloads (``live``: boxes that follow the
    τ slider in the browser)."""
    methods = {v.method for v in views}
    if variant == "paper" and {"cam", "gradcam"} <= methods and len({v.layer for v in views}) == 1:
        st.caption("At the CAM layer, Grad-CAM on the logit is ReLU(CAM) up to scale, so the two agree; "
                   "pick an earlier layer (or the original recipe) to see them differ.")
    # Encode every overlay before drawing any element: the page's elements then reach the browser in one
    # burst, and the browser re-renders the page once or twice rather than once per method.
    encoded = [None if live is not None else display_jpeg(view.overlay) for view in views]
    for row in range(0, len(views), _PER_ROW):
        for column, view, jpeg in zip(st.columns(_PER_ROW), views[row:row + _PER_ROW], encoded[row:row + _PER_ROW]):
            with column:
                method_column(view, file_stem, f"{key}_{view.method}", jpeg, live)
