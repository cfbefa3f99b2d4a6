"""A ground-truth box for an uploaded photo: dragged with the mouse on the photo, or typed.

The drawing canvas (streamlit-drawable-canvas) shows the photo at most ``_CANVAS_MAX_WIDTH`` wide; its box
comes back in the shown image's pixels and is scaled to the photo's own pixels here. A new drawing fills
the four number fields, and the fields are what counts: typing corrects a drawn box, and a typed box is
used as it is, and shown on the photo.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.boxes import InvalidBoxError, check_box
from ui.render import display_jpeg

_CANVAS_MAX_WIDTH = 640
_SIDES = ("x1", "y1", "x2", "y2")
_STROKE, _FILL = "#28dc3c", "rgba(40, 220, 60, 0.15)"


def shown_size(height: int, width: int, max_width: int = _CANVAS_MAX_WIDTH) -> tuple[int, int]:
    """(height, width) of the photo on the canvas: never wider than ``max_width``, aspect kept."""
    if width <= max_width:
        return height, width
    return max(1, round(height * max_width / width)), max_width


def to_photo_pixels(drawn: dict, shown: tuple[int, int], photo: tuple[int, int]) -> tuple[float, ...]:
    """A canvas box ``{left, top, width, height}`` in shown pixels → (x1, y1, x2, y2) in photo pixels.

    >>> to_photo_pixels({"left": 50, "top": 20, "width": 100, "height": 40}, (300, 600), (600, 1200))
    (100.0, 40.0, 300.0, 120.0)
    """
    scale_y, scale_x = photo[0] / shown[0], photo[1] / shown[1]
    left, top = drawn["left"] * scale_x, drawn["top"] * scale_y
    return (float(left), float(top), float(left + drawn["width"] * scale_x),
            float(top + drawn["height"] * scale_y))


def _canvas_box(photo: np.ndarray, key: str, current: tuple[float, ...]) -> tuple[float, ...] | None:
    """The last box dragged on the photo, in photo pixels (None before any drawing).

    The canvas starts from ``current`` (the fields' box), so a typed box shows on the photo too; the
    fields' starting value, the whole photo, is not drawn (it would tint all of it). The canvas keeps
    every shape drawn on it, so its key follows the fields: a new box starts a fresh canvas showing it.
    """
    from streamlit_drawable_canvas import boxes_to_drawing, st_canvas  # only this page needs the component

    height, width = photo.shape[:2]
    shown = shown_size(height, width)
    sy, sx = shown[0] / height, shown[1] / width
    x1, y1, x2, y2 = current
    typed = [] if current == (0, 0, width, height) else [
        {"left": x1 * sx, "top": y1 * sy, "width": (x2 - x1) * sx, "height": (y2 - y1) * sy}]
    start = boxes_to_drawing(typed, stroke_color=_STROKE, stroke_width=2, fill_color=_FILL)
    result = st_canvas(background_image=display_jpeg(photo, shown[1]), width=shown[1], height=shown[0],
                       drawing_mode="labeled_rect", stroke_width=2, stroke_color=_STROKE, fill_color=_FILL,
                       initial_drawing=start, key=f"gt_canvas_{key}_{'_'.join(f'{v:.0f}' for v in current)}")
    boxes = result.boxes_in_image_space
    if not boxes:
        return None
    natural = result.background_fit
    drawn_on = (natural["natural_height"], natural["natural_width"]) if natural else shown
    return to_photo_pixels(boxes[-1], drawn_on, (height, width))


def ground_truth_input(photo: np.ndarray, key: str) -> np.ndarray | None:
    """An optional ground-truth box (x1, y1, x2, y2) in photo pixels, validated against the photo."""
    height, width = photo.shape[:2]
    with st.expander("Add a ground-truth box to get IoU (optional)"):
        use = st.checkbox("I know where the car is", key=f"use_gt_{key}")
        fields = [f"gt_{side}_{key}" for side in _SIDES]
        for field, default in zip(fields, (0, 0, width, height)):
            st.session_state.setdefault(field, default)
        if use:
            st.caption("Drag a box around the car on the photo, or type its corners below.")
            drawn = _canvas_box(photo, key, tuple(float(st.session_state[f]) for f in fields))
            seen = f"gt_drawn_{key}"
            if drawn is not None and drawn != st.session_state.get(seen):
                st.session_state[seen] = drawn  # a new drawing fills the fields; typing afterwards wins
                if _a_click(drawn, height, width):
                    st.error("That was a click, not a box: press on one corner of the car, drag to the opposite "
                             "corner and let go.")
                elif not _inside(drawn, height, width):
                    st.error(f"The box drawn ({', '.join(f'{v:.0f}' for v in drawn)}) reaches outside the "
                             f"{width}×{height} photo: draw it again inside the photo.")
                else:
                    rounded = [min(max(round(v), 0), limit) for v, limit in zip(drawn, (width, height, width, height))]
                    if rounded != [st.session_state[f] for f in fields]:
                        for field, value in zip(fields, rounded):
                            st.session_state[field] = value
                        st.rerun()  # a fresh canvas with only this box, and the IoU for it
        cols = st.columns(4)
        values = [cols[i].number_input(side, 0, limit, key=field)
                  for i, (side, limit, field) in enumerate(zip(_SIDES, (width, height, width, height), fields))]
        if not use:
            return None
        try:
            return check_box(values, height, width)
        except InvalidBoxError as error:
            st.error(f"That box cannot be used: {error}. Drag a larger box or fix the numbers.")
            return None


def _inside(box: tuple[float, ...], height: int, width: int, slack: float = 1.0) -> bool:
    """Within the photo, allowing a pixel of rounding at the edges."""
    x1, y1, x2, y2 = box
    return -slack <= x1 and -slack <= y1 and x2 <= width + slack and y2 <= height + slack


def _a_click(box: tuple[float, ...], height: int, width: int, min_shown_px: float = 6.0) -> bool:
    """Narrower or lower than a few pixels on the canvas: a click or a slip, not a box around a car."""
    shown_h, shown_w = shown_size(height, width)
    x1, y1, x2, y2 = box
    return (x2 - x1) * shown_w / width < min_shown_px or (y2 - y1) * shown_h / height < min_shown_px
