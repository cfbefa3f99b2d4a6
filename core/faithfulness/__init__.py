"""Faithfulness metrics: does removing what the map points at change the model's mind?

Small pure functions over numpy maps and a batched score callable (``scoring.ScoreFn``), one concern per
module, each checked against its reference library (tests/test_faithfulness_parity.py):

* ``deletion_insertion``: RISE deletion/insertion curves and AUC (torchcam ``DeletionInsertionMetric``).
* ``confidence``: Grad-CAM++'s average drop and increase in confidence (torchcam ``ClassificationMetric``).
* ``road`` + ``imputation``: ROAD MoRF/LeRF/combined with noisy linear imputation (pytorch-grad-cam).
* ``pointing``: pointing game and energy-based pointing game.
* ``registry``: metric keys, labels, papers, direction, forward passes per photo.
* ``suite.evaluate_faithfulness``: everything requested for one batch, sharing forward passes.

Metrics perturb the *preprocessed* input (as both reference libraries do); build the score function
from the engine with ``explainer_score_fn(explainer, class_weights)`` and the inputs with
``model_inputs(explainer, photos)``:

>>> raws = explainer.explain(photos, ("gradcam",), layer="out_relu")
>>> score = explainer_score_fn(explainer, np.stack([r.class_weights for r in raws]))
>>> maps = np.stack([r.maps[("gradcam", "out_relu")] for r in raws])
>>> evaluate_faithfulness(model_inputs(explainer, photos), maps, score, ("deletion", "insertion"))
"""

from core.faithfulness.confidence import confidence_change, explanation_masked
from core.faithfulness.deletion_insertion import (
                                                  area_under_curve,
                                                  blurred_baseline,
                                                  deletion_insertion_curves,
                                                  perturbed_counts,
                                                  zero_baseline,
)
from core.faithfulness.imputation import impute_removed
from core.faithfulness.pointing import energy_pointing_game, pointing_game
from core.faithfulness.registry import (
                                                  DEFAULT_METRICS,
                                                  METRIC_KEYS,
                                                  METRICS,
                                                  FaithfulnessMetric,
                                                  forward_passes,
                                                  metric,
)
from core.faithfulness.road import ROAD_PERCENTILES, kept_pixels, road_curves
from core.faithfulness.scoring import ScoreFn, explainer_score_fn, model_inputs, original_scores
from core.faithfulness.suite import evaluate_faithfulness

__all__ = [
    "DEFAULT_METRICS", "METRICS", "METRIC_KEYS", "ROAD_PERCENTILES", "FaithfulnessMetric", "ScoreFn",
    "area_under_curve", "blurred_baseline", "confidence_change", "deletion_insertion_curves",
    "energy_pointing_game", "evaluate_faithfulness", "explainer_score_fn", "explanation_masked",
    "forward_passes", "impute_removed", "kept_pixels", "metric", "model_inputs", "original_scores",
    "perturbed_counts", "pointing_game", "road_curves", "zero_baseline",
]
