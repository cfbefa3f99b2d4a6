"""Calibrated pipelines read from model metadata."""

from __future__ import annotations

import json

from core.calibration import SHIPPED_CALIBRATION
from core.multiscale import InputRecipe
from core.pipelines import DEFAULT_THRESHOLD, CalibratedPipeline, calibrated_pipelines


def test_uncalibrated_model_has_only_the_plain_pipeline():
    (plain,) = calibrated_pipelines({})
    assert plain.recipe == InputRecipe() and plain.target == "predicted"
    assert plain.threshold("gradcam") == DEFAULT_THRESHOLD and "not calibrated" in plain.source


def test_sidecar_threshold_without_pipeline_is_used():
    (plain,) = calibrated_pipelines({"threshold": 0.37, "threshold_source": "my split"})
    assert plain.threshold() == 0.37 and plain.source == "my split"


def test_shipped_calibration_offers_the_fused_pipeline_first_and_the_plain_one():
    entry = json.loads(SHIPPED_CALIBRATION.read_text())["MobileNetV2 (ImageNet, offline weights)"]
    pipelines = calibrated_pipelines(entry)
    main = pipelines[0]
    assert main.recipe == InputRecipe((224, 704), True) and main.target == "car"
    assert main.threshold("cam") == entry["thresholds"]["cam"]
    assert main.heldout_iou["cam"] >= 0.8 and "704" in main.label
    plain = next(p for p in pipelines if p.recipe == InputRecipe())
    assert plain.target == "predicted" and 0 < plain.threshold("cam") < 1
    assert isinstance(plain, CalibratedPipeline) and len({p.recipe for p in pipelines}) == len(pipelines)
