"""The faithfulness metrics by key: label, paper, direction and cost, so a caller can state what a run
will cost before starting it (``forward_passes``)."""

from __future__ import annotations

from dataclasses import dataclass

from core.faithfulness.deletion_insertion import DEFAULT_STEPS, perturbed_counts
from core.faithfulness.road import ROAD_PERCENTILES

__all__ = ["DEFAULT_METRICS", "METRICS", "METRIC_KEYS", "FaithfulnessMetric", "forward_passes", "metric"]


@dataclass(frozen=True)
class FaithfulnessMetric:
    """One per-photo value. ``family`` groups metrics computed (and paid for) together; ``baseline`` is
    the deletion/insertion substrate ("zero" or "blur")."""

    key: str
    label: str
    paper: str
    higher_is_better: bool
    family: str  # "curve", "confidence", "road", "pointing"
    needs_boxes: bool = False
    baseline: str | None = None
    doc: str = ""

    def forward_passes(self, pixels: int = 224 * 224, steps: int = DEFAULT_STEPS,
                       percentiles=ROAD_PERCENTILES) -> int:
        """Forward passes per photo for this metric alone, the unperturbed photo included."""
        return forward_passes((self.key,), pixels, steps, percentiles)


_RISE = "Petsiuk, Das & Saenko, BMVC 2018 (RISE)"
_GCPP = "Chattopadhay et al., WACV 2018 (Grad-CAM++)"
_ROAD = "Rong et al., ICML 2022 (ROAD)"
METRICS: tuple[FaithfulnessMetric, ...] = (
    FaithfulnessMetric("deletion", "Deletion AUC (zero baseline)", _RISE, False, "curve", baseline="zero",
                       doc="Area under the score as the most salient pixels are set to zero (RISE)."),
    FaithfulnessMetric("insertion", "Insertion AUC (blurred baseline)", _RISE, True, "curve", baseline="blur",
                       doc="Area under the score as the most salient pixels are restored into a blurred "
                           "copy (RISE)."),
    FaithfulnessMetric("deletion_blur", "Deletion AUC (blurred baseline)", _RISE, False, "curve",
                       baseline="blur", doc="Deletion into the blurred copy."),
    FaithfulnessMetric("insertion_zero", "Insertion AUC (zero baseline)", _RISE, True, "curve",
                       baseline="zero", doc="Insertion from zeros, as torchcam's default baseline."),
    FaithfulnessMetric("avg_drop", "Average drop", _GCPP, False, "confidence",
                       doc="max(0, Y − O) / Y with O the score of the photo times its normalised map."),
    FaithfulnessMetric("avg_increase", "Increase in confidence", _GCPP, True, "confidence",
                       doc="Share of photos whose score rises when multiplied by their map."),
    FaithfulnessMetric("road_morf", "ROAD MoRF", _ROAD, False, "road",
                       doc="Mean score change, most relevant pixels imputed first (10–90th percentiles)."),
    FaithfulnessMetric("road_lerf", "ROAD LeRF", _ROAD, True, "road",
                       doc="Mean score change, least relevant pixels imputed first."),
    FaithfulnessMetric("road_combined", "ROAD combined", _ROAD, True, "road",
                       doc="(LeRF − MoRF) / 2, pytorch-grad-cam's ROADCombined."),
    FaithfulnessMetric("pointing_game", "Pointing game", "Zhang et al., ECCV 2016 / IJCV 2018", True,
                       "pointing",
                       needs_boxes=True, doc="Hit when the map's maximum lies within 15 px of the box."),
    FaithfulnessMetric("energy_pointing_game", "Energy-based pointing game", "Wang et al., CVPR-W 2020 "
                       "(Score-CAM)", True, "pointing", needs_boxes=True,
                       doc="Share of the map's energy inside the box."),
)
METRIC_KEYS = tuple(m.key for m in METRICS)
DEFAULT_METRICS = ("deletion", "insertion", "avg_drop", "avg_increase", "road_morf", "road_lerf",
                   "road_combined")
_BY_KEY = {m.key: m for m in METRICS}


def metric(key: str) -> FaithfulnessMetric:
    try:
        return _BY_KEY[key]
    except KeyError:
        raise ValueError(f"unknown faithfulness metric {key!r}; choose from "
                         f"{', '.join(METRIC_KEYS)}") from None


def forward_passes(keys, pixels: int = 224 * 224, steps: int = DEFAULT_STEPS,
                   percentiles=ROAD_PERCENTILES) -> int:
    """Forward passes per photo for ``keys`` computed together (shared work counted once), including the
    one on the unperturbed photo; 0 when only pointing games (they need none).

    >>> forward_passes(["deletion", "insertion"]), forward_passes(["deletion", "insertion_zero"])
    (41, 40)
    """
    chosen = [metric(key) for key in keys]
    interior = len(perturbed_counts(pixels, steps)) - 2
    total = 0
    for baseline in ("zero", "blur"):
        curves = sum(1 for m in chosen if m.family == "curve" and m.baseline == baseline)
        total += curves * interior + (1 if curves else 0)
    total += 1 if any(m.family == "confidence" for m in chosen) else 0
    orders = {"road_morf": {"morf"}, "road_lerf": {"lerf"}, "road_combined": {"morf", "lerf"}}
    road = set().union(*(orders[m.key] for m in chosen if m.family == "road"))
    total += len(road) * len(tuple(percentiles))
    return total + (1 if total else 0)
