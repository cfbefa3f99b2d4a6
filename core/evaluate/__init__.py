"""Localisation evaluation of CAM and Grad-CAM over a dataset split, and threshold calibration.

    python -m core.evaluate --data PATH_OR_tfds:cars196 --split test --out DIR [--model M]
        [--methods cam,gradcam] [--layer L] [--target predicted|car|INDEX] [--sizes 224,576] [--flip]
        [--calibrate-on PATH:SPLIT | --folds K [--save-calibration]] [--limit N]

writes ``DIR/per_photo.csv``, ``DIR/per_class.csv``, ``DIR/summary.json`` and ``DIR/plots/`` (Plotly JSON
and PNG). From Python (the dashboard)::

    summary = run_evaluation(EvalRequest(data, "test"), out_dir, progress=callback)
    results = load_results(out_dir)   # summary, per-photo and per-class rows, Plotly figures

Metrics (Choe et al., CVPR 2020): each map is normalised (CAM min-max, Grad-CAM ReLU + max), put on a
224×224 grid with the truth box, and swept over τ ∈ {0, 0.01, …, 0.99} once; mean/median IoU, BoxAcc@δ,
GT-known and top-1 localisation are read at the chosen τ (largest component's rectangle); MaxBoxAcc is the
best BoxAcc@0.5 over τ (largest component), MaxBoxAccV2 the mean over δ ∈ {0.3, 0.5, 0.7} of the best
BoxAcc@δ over τ with the best box among all components. Baselines: the full-image box and the centred box
whose side fraction was chosen on the calibration photos.

τ comes from ``--calibrate-on`` (chosen there, stored with the model: ``core.calibration``), from
``--folds K`` (each photo scored with τ chosen on the other folds), or from the model's stored
calibration. Interrupted runs resume: finished batches are kept under ``DIR/.partial/<settings hash>/``.
"""

from core.evaluate.outputs import Results, load_results
from core.evaluate.pipeline import Pipeline, Progress
from core.evaluate.runner import EvalRequest, parse_split_spec, run_evaluation

__all__ = ["run_evaluation", "load_results", "EvalRequest", "Results", "Progress", "Pipeline",
           "parse_split_spec"]
