"""What a training run does: one frozen ``TrainConfig``, built from a preset plus the user's overrides.

Two presets:

* ``original`` — the original study's recipe, kept so its numbers can be reproduced: SGD with a constant
  learning rate of 0.01 (no momentum), batch 16, 15 epochs, photos divided by 255 (preprocessing "unit",
  which does not match ImageNet weights), no augmentation, no early stopping.
* ``recommended`` (the default) — the same model trained the way its ImageNet weights expect: the
  backbone's own preprocessing (ResNet50 "caffe", offline MobileNetV2 "torch"), augmentation (crop, flip,
  colour), SGD with momentum 0.9, one warm-up epoch then cosine decay, early stopping on validation
  accuracy. Its learning rate, 0.005 at batch 16, is 0.01 per 32 photos; scale it with the batch size.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.preprocessing import PREPROCESSORS

__all__ = ["TrainConfig", "PRESETS", "BACKBONE_CHOICES", "PRECISIONS", "SCHEDULES", "make_config"]

BACKBONE_CHOICES = ("auto", "resnet50", "mobilenetv2", "tiny")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
SCHEDULES = ("cosine", "constant")
WEIGHTS = ("imagenet", "none")


@dataclass(frozen=True)
class TrainConfig:
    """Every choice of one run; saved with the checkpoints so ``--resume`` rebuilds the same run."""

    data: str
    out: Path
    preset: str = "recommended"
    backbone: str = "auto"
    weights: str = "imagenet"
    epochs: int = 30
    batch_size: int = 16
    steps_per_epoch: int | None = None  # None: every training photo once per epoch
    learning_rate: float = 0.005
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    preprocessing: str | None = None  # None: what the backbone's start weights expect
    augment: bool = True
    patience: int | None = 5  # epochs without a better validation accuracy before stopping; None: never
    image_size: int = 224
    max_train_photos: int | None = None  # a seeded subset, for quick runs
    max_val_photos: int | None = None
    val_fraction: float = 0.1  # held out of train when the test split has no labelled photos
    seed: int = 0
    workers: int = field(default_factory=lambda: min(8, os.cpu_count() or 2))  # threads decoding photos
    precision: str = "auto"

    def __post_init__(self):
        _check_choice("backbone", self.backbone, BACKBONE_CHOICES)
        _check_choice("weights", self.weights, WEIGHTS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("precision", self.precision, PRECISIONS)
        if self.preprocessing is not None:
            _check_choice("preprocessing", self.preprocessing, tuple(PREPROCESSORS))
        for name in ("epochs", "batch_size", "image_size", "workers"):
            _check_positive(name, getattr(self, name))
        for name in ("steps_per_epoch", "max_train_photos", "max_val_photos"):
            if getattr(self, name) is not None:
                _check_positive(name, getattr(self, name))
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise ValueError(f"patience must be a positive number of epochs or None, got {self.patience!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(
                f"warmup_epochs must be in [0, epochs={self.epochs}], got {self.warmup_epochs!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if self.image_size < 32:
            raise ValueError(f"image_size {self.image_size} is too small; use at least 32 pixels")

    def to_json(self) -> dict:
        values = dataclasses.asdict(self)
        values["out"] = str(self.out)
        return values

    @classmethod
    def from_json(cls, values: dict) -> "TrainConfig":
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"saved run settings have unknown keys {unknown}; was it written by a newer version?")
        return cls(**{**values, "out": Path(values["out"])})

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, dict] = {
    "recommended": {},
    "original": {
        "epochs": 15, "batch_size": 16, "learning_rate": 0.01, "momentum": 0.0, "schedule": "constant",
        "warmup_epochs": 0.0, "preprocessing": "unit", "augment": False, "patience": None,
    },
}


def make_config(data: str, out: str | Path, preset: str = "recommended", **overrides) -> TrainConfig:
    """The preset's settings, then every override that is not None (so CLI defaults can be None)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    settings = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig(data=str(data), out=Path(out), preset=preset, **settings)


def _check_choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
