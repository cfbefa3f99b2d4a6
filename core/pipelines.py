"""The explanation pipelines a model was calibrated for, so a UI can offer them with their τ.

A calibrated τ only fits maps made the same way (input sizes, flip, target). A model's calibration
(``bundle.metadata["calibration"]``, see ``core.calibration``) names its main pipeline and may list
others (e.g. the plain single-view one); each becomes a :class:`Pipeline`. Without a calibration, the
only pipeline is the plain one with the default τ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.multiscale import InputRecipe

DEFAULT_THRESHOLD = 0.2  # the CAM paper's 20 % of the max, used only when nothing was calibrated


@dataclass(frozen=True)
class Pipeline:
    """How maps are made (views, target) and the τ calibrated for them."""

    recipe: InputRecipe = InputRecipe()
    target: str = "predicted"  # "predicted", "car" (the model's car class group) or a class index
    thresholds: dict = field(default_factory=dict, compare=False)
    heldout_iou: dict = field(default_factory=dict, compare=False)
    source: str = "not calibrated: the CAM paper's 20 % of the maximum"

    def threshold(self, method: str = "cam") -> float:
        return float(self.thresholds.get(method, self.thresholds.get("cam", DEFAULT_THRESHOLD)))

    @property
    def label(self) -> str:
        views = self.recipe.label() if self.recipe.views > 1 or self.recipe.sizes else "one view at input size"
        scores = ", ".join(f"{m} {v:.2f}" for m, v in self.heldout_iou.items())
        return views + (f" · held-out mean IoU {scores}" if scores else "")


def _pipeline(entry: dict, thresholds: dict, heldout: dict, source: str) -> Pipeline:
    spec = entry.get("pipeline", entry)
    return Pipeline(InputRecipe.from_dict(spec.get("recipe", {})), str(spec.get("target", "predicted")),
                    dict(thresholds), dict(heldout), source)


def calibrated_pipelines(metadata: dict) -> list[Pipeline]:
    """The main calibrated pipeline first, then the others; always at least the plain one."""
    calibration = metadata.get("calibration") or {}
    if not calibration.get("pipeline"):
        threshold = metadata.get("threshold")
        thresholds = {"cam": float(threshold)} if threshold is not None else {}
        return [Pipeline(thresholds=thresholds, source=metadata.get("threshold_source", Pipeline.source))]
    source = metadata.get("threshold_source", "calibrated")
    heldout = {m: v.get("mean_iou") for m, v in calibration.get("kfold_heldout", {}).items()
               if isinstance(v, dict) and v.get("mean_iou") is not None}
    pipelines = [_pipeline(calibration, metadata.get("thresholds", {}), heldout, source)]
    for other in calibration.get("other_pipelines", []):
        pipelines.append(_pipeline(other, other.get("thresholds", {}),
                                   other.get("kfold_heldout_mean_iou", {}),
                                   f"{calibration.get('calibrated_on', source)}; {other.get('note', '')}".strip()))
    if not any(p.recipe.views == 1 and not p.recipe.sizes for p in pipelines):
        pipelines.append(Pipeline())
    return pipelines
