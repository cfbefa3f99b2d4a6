"""A method's overlay whose boxes follow the τ slider in the browser, before the server redraws.

The page still re-runs on every τ move (it must: the numbers, the downloads and the report follow τ), but
what a person watches, the boxes on the overlays, changes in the frame the slider moves: the component
draws them from the sweep (``core.sweep``) and swaps in the server's exact boxes when they arrive. The
blended photo travels once per photo, colormap or α as a JPEG; the boxes travel as numbers.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from core.explanation import PREDICTED_COLOR, RAW_REGION_COLOR, Localized, MethodView, predicted_label
from core.overlay import auto_thickness, label_font_size, label_ink
from core.localize import box_corners
from core.sweep import SWEEP_STEP, SweptBoxes

_JS = (Path(__file__).with_name("live_overlay.js")).read_text(encoding="utf-8")
_CSS = """
.cam-live-overlay { position: relative; width: 100%; line-height: 0; }
.cam-live-overlay img { width: 100%; height: auto; display: block; border-radius: 0.5rem; }
.cam-live-overlay svg { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
"""
# Not isolated in a shadow root: the page's tests and benchmarks find the overlay like any other element.
_COMPONENT = st.components.v2.component("cam_explorer_live_overlay", css=_CSS, js=_JS, isolate_styles=False)
_ASKED_KEY = "live_overlay_sweeps_for"
_SLIDER_LABEL = "Box threshold τ"  # the sidebar slider of ``ui.controls.display_controls``

__all__ = ["live_overlay"]


def _hex(color) -> str:
    return "#" + "".join(f"{int(c):02x}" for c in color)


def _outline(corners, color, width: int, label: str | None) -> dict:
    return {"points": [[round(float(x), 1), round(float(y), 1)] for x, y in corners], "color": _hex(color),
            "width": width, "label": label, "ink": _hex(label_ink(color))}


def _drawn(localized: Localized, corners: list, width: int) -> list[dict]:
    """The boxes as ``core.explanation.draw_predicted`` draws them: red and labelled with the IoU; the raw
    regions thin under a corrected box."""
    if not localized.boxes:
        return []
    label = predicted_label(localized)
    if localized.corrected is not None:
        return ([_outline(c, RAW_REGION_COLOR, 1, None) for c in corners]
                + [_outline(box_corners(localized.corrected), PREDICTED_COLOR, width, label)])
    return [_outline(c, PREDICTED_COLOR, width, label if n == 0 else None) for n, c in enumerate(corners)]


def overlay_data(view: MethodView, base_jpeg: bytes, sweep: list[SweptBoxes] | None, slider_tau: float,
                 token: str) -> dict:
    """What the component draws: the blend, the exact boxes at the server's τ, and the sweep (None: not
    asked for yet)."""
    height, width = view.heatmap.values.shape
    thickness = auto_thickness(height, width)
    return {
        "image": "data:image/jpeg;base64," + base64.b64encode(base_jpeg).decode("ascii"),
        "alt": f"{view.method} overlay",
        "width": width, "height": height, "font": label_font_size(height, width),
        "slider": _SLIDER_LABEL, "tau": round(float(slider_tau), 2), "step": SWEEP_STEP,
        "boxes": _drawn(view.localized, [b.corners for b in view.localized.boxes], thickness),
        "sweep": None if sweep is None else [_drawn(s.localized, s.corners(), thickness) for s in sweep],
        "token": token,
    }


def _asked(key: str) -> None:
    """The browser asked for the sweeps of a token (its photo and box settings): every overlay of that
    token sends them from now on."""
    st.session_state[_ASKED_KEY] = st.session_state[key].get("sweep")


def live_overlay(view: MethodView, base_jpeg: bytes, sweep: Callable[[], list[SweptBoxes]], slider_tau: float,
                 token: str, key: str) -> None:
    """Mount the overlay of ``view`` (``base_jpeg``: its blend without predicted boxes).

    A new photo is shown without sweeps, so 'Next' does not wait for them (they cost ~45 ms per method);
    the browser asks for them when the pointer or the keyboard reaches the τ slider (one re-run for every
    overlay of the photo), so browsing costs none."""
    asked = st.session_state.get(_ASKED_KEY) == token
    _COMPONENT(key=key, data=overlay_data(view, base_jpeg, sweep() if asked else None, slider_tau, token),
               height="content", on_sweep_change=functools.partial(_asked, key))
