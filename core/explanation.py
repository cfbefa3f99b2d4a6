"""From a raw feature-resolution map to what a user sees: a photo-sized heatmap, boxes and IoU.

This is the cheap half of an explanation. The network runs once (``core.cam``); moving the threshold,
box mode, blend alpha or colormap only re-runs the functions here, which take milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from core.box_correction import BoxCorrection
from core.boxes import iou
from core.cam import RawExplanation
from core.heatmaps import INTERPOLATIONS, NormalizedMap, normalize_map, upsample
from core.methods import method as get_method
from core.localize import DEFAULT_THRESHOLD, Localization, boxes_from_heatmap
from core.overlay import blend, draw_boxes

COMPONENT_MODES = ("largest", "all", "peak")
BOX_SHAPES = ("rect", "rotated")
GROUND_TRUTH_COLOR = (40, 220, 60)
PREDICTED_COLOR = (255, 40, 40)
RAW_REGION_COLOR = (255, 170, 170)


@dataclass(frozen=True)
class BoxSettings:
    """How a heatmap becomes boxes: τ as a fraction of the normalised map, which components, which shape,
    and the calibrated correction of the main box (``core.box_correction``), if any."""

    threshold: float = DEFAULT_THRESHOLD
    component: str = "largest"
    shape: str = "rect"
    correction: BoxCorrection | None = field(default=None, compare=False)

    def __post_init__(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {self.threshold}")
        if self.component not in COMPONENT_MODES:
            raise ValueError(f"component must be one of {COMPONENT_MODES}, got {self.component!r}")
        if self.shape not in BOX_SHAPES:
            raise ValueError(f"shape must be one of {BOX_SHAPES}, got {self.shape!r}")


def normalization_for(method: str, variant: str) -> tuple[bool, str]:
    """(relu, mode): the method's own post-processing (its registry entry), or the original study's
    ``map / max``."""
    return get_method(method).normalization(variant)


def photo_heatmap(raw: RawExplanation, method: str, layer: str, height: int, width: int,
                  interpolation: str = "bilinear") -> NormalizedMap:
    """Normalise the raw map, then resize it to the photo with ``interpolation`` (a pipeline's upsampling:
    a τ calibrated on bicubic maps only fits bicubic maps)."""
    relu, mode = normalization_for(method, raw.variant)
    small = normalize_map(raw.maps[(method, layer)], relu=relu, mode=mode)
    values = upsample(small.values, height, width, interpolation)
    return NormalizedMap(
        values=np.clip(values, 0.0, 1.0), flat=small.flat, had_nan=small.had_nan,
        all_negative=small.all_negative, peak=small.peak, floor=small.floor,
        nonfinite_count=small.nonfinite_count, relu=small.relu, mode=small.mode,
    )


@dataclass(frozen=True)
class Localized:
    """Boxes found on one heatmap and, when a ground truth is known, the IoU of the main box: the first
    component's box, or its calibrated correction (``corrected``) when the settings carry one."""

    boxes: list[Localization]
    iou: float | None
    corrected: np.ndarray | None = None

    @property
    def main_box(self) -> np.ndarray | None:
        if self.corrected is not None:
            return self.corrected
        return self.boxes[0].box if self.boxes else None


def localize(heatmap: NormalizedMap, settings: BoxSettings, ground_truth=None) -> Localized:
    """Boxes from the heatmap at τ; IoU of the main box against ``ground_truth`` (0 when no box)."""
    boxes = [] if heatmap.flat else boxes_from_heatmap(
        heatmap.values, settings.threshold, component=settings.component, shape=settings.shape
    )
    if settings.component == "all" and len(boxes) > 1:
        union = np.array([
            min(b.box[0] for b in boxes), min(b.box[1] for b in boxes),
            max(b.box[2] for b in boxes), max(b.box[3] for b in boxes),
        ])
        score_box = union
    else:
        score_box = boxes[0].box if boxes else None
    corrected = None
    if settings.correction is not None and score_box is not None and settings.component == "largest":
        height, width = heatmap.values.shape
        corrected = score_box = settings.correction.apply(score_box, height, width)
    value = None
    if ground_truth is not None:
        value = 0.0 if score_box is None else iou(score_box, ground_truth)
    return Localized(boxes, value, corrected)


def overlay_image(
    photo: np.ndarray, heatmap: NormalizedMap, localized: Localized | None, alpha: float,
    colormap: str, ground_truth=None,
) -> np.ndarray:
    """The photo with the heatmap blended in, predicted boxes in red and the ground truth in green."""
    return draw_predicted(blended_photo(photo, heatmap, alpha, colormap, ground_truth), localized)


def blended_photo(photo: np.ndarray, heatmap: NormalizedMap, alpha: float, colormap: str,
                  ground_truth=None) -> np.ndarray:
    """The photo with the heatmap blended in and the ground truth in green: everything τ does not change."""
    image = blend(photo, heatmap.values, alpha, colormap)
    if ground_truth is not None:
        image = draw_boxes(image, [np.asarray(ground_truth, float)], color=GROUND_TRUTH_COLOR, labels=["truth"])
    return image


def predicted_label(localized: Localized) -> str | None:
    """The main box's label: its IoU when a ground truth is known."""
    return f"IoU {localized.iou:.2f}" if localized.iou is not None else None


def draw_predicted(image: np.ndarray, localized: Localized | None) -> np.ndarray:
    """A copy of ``image`` with the predicted boxes (red, labelled with the IoU; raw regions thin under a
    corrected box)."""
    if localized is not None and localized.boxes:
        label = predicted_label(localized)
        if localized.corrected is not None:  # the corrected box is the answer; the raw regions stay thin
            image = draw_boxes(image, localized.boxes, color=RAW_REGION_COLOR, thickness=1)
            return draw_boxes(image, [localized.corrected], color=PREDICTED_COLOR, labels=[label])
        labels = [label] + [None] * (len(localized.boxes) - 1)
        image = draw_boxes(image, localized.boxes, color=PREDICTED_COLOR, labels=labels)
    return image


@dataclass(frozen=True)
class DisplaySettings:
    """Everything a redraw depends on; none of it needs the network again.

    ``thresholds``: each method's own τ (a τ is calibrated per method and only fits that method's maps);
    a method not in it boxes with ``box.threshold``. ``corrections``: each method's calibrated box
    correction, used only together with that method's own τ (it was fitted at that τ).
    ``interpolation``: how maps are upsampled to the photo, the pipeline's own
    (``core.pipelines.Pipeline.interpolation``).
    """

    box: BoxSettings = BoxSettings()
    alpha: float = 0.5
    colormap: str = "jet"
    thresholds: tuple[tuple[str, float], ...] = ()
    corrections: tuple[tuple[str, BoxCorrection], ...] = field(default=(), compare=False)
    interpolation: str = "bilinear"

    def __post_init__(self):
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")

    def box_for(self, method: str) -> BoxSettings:
        """The box settings of ``method``: its own τ (and correction) when given, else the shared τ."""
        own = dict(self.thresholds).get(method)
        if own is None:
            return self.box
        return BoxSettings(float(own), self.box.component, self.box.shape, dict(self.corrections).get(method))


@dataclass(frozen=True)
class MethodView:
    """One method's result for one photo, ready to show: heatmap, boxes, IoU and the blended overlay."""

    method: str
    layer: str
    heatmap: NormalizedMap
    localized: Localized
    base: np.ndarray  # the blend before predicted boxes (what a τ move leaves unchanged)

    @cached_property
    def overlay(self) -> np.ndarray:
        """The blend with the predicted boxes drawn in, made when first asked for: pages whose boxes the
        browser draws (live overlays) need it only for a download or a report, not on every τ move."""
        return draw_predicted(self.base, self.localized)


class RedrawCache:
    """What a τ move does not change, for the photo shown last: its maps at the photo's size and the
    blended photos. A τ move then only localises and draws boxes (on a 1024×768 photo that halves the
    redraw). Holds the last (photo, raw maps) pair only; any other pair starts it afresh."""

    _MAX_ITEMS = 48  # α and colormap moves add blends: keep a few screens' worth

    def __init__(self):
        self._owner: tuple | None = None
        self._items: dict = {}

    def get(self, photo: np.ndarray, raw: RawExplanation, key, make):
        if self._owner is None or self._owner[0] is not photo or self._owner[1] is not raw:
            self._owner, self._items = (photo, raw), {}
        if key not in self._items:
            if len(self._items) >= self._MAX_ITEMS:
                self._items.clear()
            value = make()
            if isinstance(value, np.ndarray):
                value.flags.writeable = False  # shared by later redraws: nobody may draw on it
            self._items[key] = value
        return self._items[key]


def truth_key(ground_truth) -> tuple[float, ...] | None:
    """The ground-truth box as a hashable tuple: a cache key for what depends on it (IoU labels, sweeps)."""
    return None if ground_truth is None else tuple(np.asarray(ground_truth, float).ravel())


def render_views(photo: np.ndarray, raw: RawExplanation, display: DisplaySettings,
                 ground_truth=None, cache: RedrawCache | None = None) -> list[MethodView]:
    """Every map in ``raw`` at the photo's size, localised and blended (milliseconds, no network).

    With a ``cache`` (one per page session), the maps at the photo's size and the blends are reused while
    only τ or the box settings change."""
    height, width = photo.shape[:2]
    truth = truth_key(ground_truth)

    def reuse(key, make):
        return make() if cache is None else cache.get(photo, raw, key, make)

    views = []
    for method, layer in raw.maps:
        heatmap = reuse(("map", method, layer, display.interpolation),
                        lambda: photo_heatmap(raw, method, layer, height, width, display.interpolation))
        found = localize(heatmap, display.box_for(method), ground_truth)
        base = reuse(("blend", method, layer, display.interpolation, display.alpha, display.colormap, truth),
                     lambda: blended_photo(photo, heatmap, display.alpha, display.colormap, ground_truth))
        views.append(MethodView(method, layer, heatmap, found, base))
    return views
