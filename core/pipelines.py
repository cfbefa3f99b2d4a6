"""How maps are made (:class:`Pipeline`: methods, layer, target, recipe of views, upsampling) and the
pipelines a model was calibrated for, so the evaluation, the CLIs and the dashboard agree.

A calibrated τ only fits maps made the same way. A model's calibration (``bundle.metadata["calibration"]``,
see ``core.calibration``) names its main pipeline and may list others (e.g. the plain single-view one);
each becomes a :class:`CalibratedPipeline`. Without a calibration, the only one is the plain pipeline
with the default τ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.box_correction import BoxCorrection
from core.cam import Target
from core.methods import METHODS
from core.localize import DEFAULT_THRESHOLD
from core.model_sources import IMAGENET_CAR_GROUP
from core.multiscale import InputRecipe

TARGETS = ("predicted", "car")



@dataclass(frozen=True)
class Pipeline:
    """Everything the stored per-photo values depend on, apart from the model and the data."""

    methods: tuple[str, ...] = ("cam", "gradcam")
    layer: str | None = None
    target: str = "predicted"  # "predicted", "car" (the model's car class group) or a class index
    variant: str = "paper"
    recipe: InputRecipe = InputRecipe()
    interpolation: str = "bilinear"

    def __post_init__(self):
        unknown = [m for m in self.methods if m not in METHODS]
        if not self.methods or unknown:
            raise ValueError(f"methods must be a non-empty subset of {sorted(METHODS)}, got {self.methods!r}")
        if self.target not in TARGETS and not str(self.target).isdigit():
            raise ValueError(f"target must be 'predicted', 'car' or a class index, got {self.target!r}")

    def as_dict(self) -> dict:
        return {"methods": list(self.methods), "layer": self.layer, "target": self.target,
                "variant": self.variant, "recipe": self.recipe.as_dict(), "interpolation": self.interpolation}

    def label(self) -> str:
        return (f"{self.recipe.label()}, target {self.target}, {self.interpolation} upsampling, "
                f"{self.variant} variant")

    @classmethod
    def from_dict(cls, data: dict) -> "Pipeline":
        """The inverse of :meth:`as_dict` (missing keys take the defaults)."""
        return cls(
            methods=tuple(data.get("methods") or ("cam", "gradcam")), layer=data.get("layer"),
            target=str(data.get("target", "predicted")), variant=data.get("variant", "paper"),
            recipe=InputRecipe.from_dict(data.get("recipe", {})),
            interpolation=data.get("interpolation", "bilinear"),
        )


def same_maps(a: dict, b: dict) -> bool:
    """Whether two pipelines (as dicts) make the same maps, so a τ calibrated with one fits the other:
    everything but the list of methods (each method has its own τ) must agree."""
    strip = lambda d: {k: v for k, v in Pipeline.from_dict(d).as_dict().items() if k != "methods"}  # noqa: E731
    return strip(a) == strip(b)


def target_for(bundle, spec: str) -> Target:
    """The engine's Target for a pipeline target name; ValueError when the model lacks it."""
    if spec == "predicted":
        return Target.predicted()
    if spec == "car":
        if IMAGENET_CAR_GROUP not in bundle.class_groups:
            raise ValueError(f"'{bundle.name}' has no car class group; "
                             "use target 'predicted' or a class index")
        return Target.group(bundle.class_groups[IMAGENET_CAR_GROUP], IMAGENET_CAR_GROUP)
    index = int(spec)
    if not 0 <= index < bundle.num_classes:
        raise ValueError(f"target class {index} is outside the model's {bundle.num_classes} classes")
    return Target.of_class(index, bundle.class_names[index])


@dataclass(frozen=True)
class CalibratedPipeline:
    """A pipeline and the τ calibrated for it (with the held-out mean IoU it reached)."""

    pipeline: Pipeline = Pipeline()
    thresholds: dict = field(default_factory=dict, compare=False)
    heldout_iou: dict = field(default_factory=dict, compare=False)
    source: str = "not calibrated: the CAM paper's 20 % of the maximum"
    corrections: dict = field(default_factory=dict, compare=False)  # method → BoxCorrection

    @property
    def recipe(self) -> InputRecipe:
        return self.pipeline.recipe

    @property
    def target(self) -> str:
        return self.pipeline.target

    def threshold(self, method: str = "cam") -> float:
        """``method``'s calibrated τ; the uncalibrated default when this pipeline has none for it (a τ
        calibrated for another method does not fit this one's maps)."""
        return float(self.thresholds.get(method, DEFAULT_THRESHOLD))

    def is_calibrated(self, method: str) -> bool:
        return method in self.thresholds

    def thresholds_for(self, methods) -> tuple[tuple[str, float], ...]:
        """(method, τ) pairs for :class:`core.explanation.DisplaySettings`."""
        return tuple((m, self.threshold(m)) for m in methods)

    def at_layer(self, layer: str | None, default_layer: str | None) -> "CalibratedPipeline":
        """This pipeline with maps from ``layer``: a τ (and box correction) calibrated at another layer
        does not fit those maps, so it is dropped for every method but those the layer choice does not change
        (CAM, always at its own layer; FullGrad, at none)."""
        calibrated_at = self.pipeline.layer or default_layer
        if layer is None or layer == calibrated_at:
            return self
        from dataclasses import replace

        keep = {m: t for m, t in self.thresholds.items() if not METHODS[m].uses_layer_choice}
        return replace(self, thresholds=keep,
                       corrections={m: c for m, c in self.corrections.items() if m in keep},
                       source=f"{self.source}; τ of the other methods was calibrated at `{calibrated_at}`, "
                              f"not `{layer}`: they use the uncalibrated default")

    def corrections_for(self, methods) -> tuple:
        """(method, BoxCorrection) pairs of the methods calibrated with a box correction."""
        return tuple((m, self.corrections[m]) for m in methods if m in self.corrections and m in self.thresholds)

    @property
    def label(self) -> str:
        """Short enough for a sidebar menu: views, then the best held-out mean IoU a method reached."""
        views = self.recipe.label() if self.recipe.views > 1 or self.recipe.sizes else "one view (fast)"
        best = max(self.heldout_iou.values(), default=None)
        return views.replace("px", "") + (f" · best IoU {best:.2f}" if best is not None else "")


def _calibrated(entry: dict, thresholds: dict, heldout: dict, source: str) -> CalibratedPipeline:
    corrections = {m: BoxCorrection.from_list(rows) for m, rows in (entry.get("box_corrections") or {}).items()}
    return CalibratedPipeline(Pipeline.from_dict(entry.get("pipeline", {})), dict(thresholds), dict(heldout),
                              source, corrections)


def calibrated_pipelines(metadata: dict) -> list[CalibratedPipeline]:
    """The main calibrated pipeline first, then the others; always at least the plain one."""
    calibration = metadata.get("calibration") or {}
    if not calibration.get("pipeline"):
        threshold = metadata.get("threshold")
        thresholds = {"cam": float(threshold)} if threshold is not None else {}
        return [CalibratedPipeline(thresholds=thresholds,
                                   source=metadata.get("threshold_source", CalibratedPipeline.source))]
    source = metadata.get("threshold_source", "calibrated")
    heldout = {m: v.get("mean_iou") for m, v in calibration.get("kfold_heldout", {}).items()
               if isinstance(v, dict) and v.get("mean_iou") is not None}
    pipelines = [_calibrated(calibration, metadata.get("thresholds", {}), heldout, source)]
    for other in calibration.get("other_pipelines", []):
        pipelines.append(_calibrated(other, other.get("thresholds", {}),
                                   other.get("kfold_heldout_mean_iou", {}),
                                   f"{calibration.get('calibrated_on', source)}; {other.get('note', '')}".strip()))
    if not any(p.recipe.views == 1 and not p.recipe.sizes for p in pipelines):
        pipelines.append(CalibratedPipeline())
    return pipelines


def choose_pipeline(pipelines: list[CalibratedPipeline], plain: bool = False, target: str | None = None,
                    layer: str | None = None, variant: str | None = None) -> tuple[CalibratedPipeline, str | None]:
    """The calibrated pipeline to run, and a note when its τ cannot be used.

    The main (first) pipeline, or the single-view one with ``plain``; one of them with the asked target,
    when one was calibrated for it. A τ only fits maps made exactly as calibrated, so a target, layer or
    variant other than the calibrated one keeps the pipeline but drops its τ (the note says so).
    """
    candidates = [p for p in pipelines if not plain or (p.recipe.views == 1 and not p.recipe.sizes)]
    chosen = next((p for p in candidates if target is None or p.target == str(target)), candidates[0])
    wanted = chosen.pipeline
    changes = {}
    if target is not None and str(target) != wanted.target:
        changes["target"] = str(target)
    if layer is not None and layer != wanted.layer:
        changes["layer"] = layer
    if variant is not None and variant != wanted.variant:
        changes["variant"] = variant
    if not changes:
        return chosen, None
    from dataclasses import replace

    note = (f"τ was calibrated for {', '.join(f'{k} {getattr(wanted, k)!r}' for k in changes)}, not "
            f"{', '.join(f'{v!r}' for v in changes.values())}: boxes use the uncalibrated τ "
            f"{DEFAULT_THRESHOLD} (or --threshold)")
    return CalibratedPipeline(replace(wanted, **changes)), note
