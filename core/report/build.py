"""A :class:`~core.report.model.Report` from the objects the CLIs and the dashboard already hold: the photo,
its :class:`~core.cam.RawExplanation` (or rendered views), the display settings, the calibrated pipeline
and the model bundle. No network runs here: views are rendered from the raw maps when not given.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
from functools import lru_cache

import numpy as np

from core.cam import RawExplanation
from core.evaluate.cli_format import METRIC_COLUMNS, formatted_rows, summary_rows
from core.explanation import DisplaySettings, MethodView, render_views
from core.methods import METHODS
from core.model_sources import weights_file
from core.model_spec import ModelBundle
from core.pipelines import CalibratedPipeline
from core.report.images import shrunk
from core.report.model import MethodResult, PhotoReport, Provenance, Report, Table, comparison_rows

__all__ = ["photo_report", "provenance", "evaluation_table", "make_report", "build_report"]


def _is_calibrated(method: str, display: DisplaySettings, calibrated: CalibratedPipeline | None) -> bool:
    """τ in use is the one calibrated for this method (not a default, not a slider the user moved)."""
    if calibrated is None or not calibrated.is_calibrated(method):
        return False
    return abs(display.box_for(method).threshold - calibrated.threshold(method)) < 1e-9


def _box(box) -> tuple[float, float, float, float] | None:
    return None if box is None else tuple(round(float(v), 1) for v in np.asarray(box).ravel()[:4])


def method_result(view: MethodView, display: DisplaySettings,
                  calibrated: CalibratedPipeline | None) -> MethodResult:
    return MethodResult(
        method=view.method, label=METHODS[view.method].label, layer=view.layer,
        threshold=display.box_for(view.method).threshold,
        calibrated=_is_calibrated(view.method, display, calibrated), iou=view.localized.iou,
        box=_box(view.localized.main_box), regions=len(view.localized.boxes), status=view.heatmap.status or None,
        overlay=shrunk(view.overlay),  # what every writer embeds at most; keeps a many-photo report small
    )


def photo_report(name: str, photo: np.ndarray, raw: RawExplanation, bundle: ModelBundle,
                 display: DisplaySettings, *, target_label: str, calibrated: CalibratedPipeline | None = None,
                 views: list[MethodView] | None = None, truth=None, seconds: float | None = None) -> PhotoReport:
    """One photo's section; ``views`` are rendered from ``raw`` when the caller has none."""
    if views is None:
        views = render_views(photo, raw, display, truth)
    height, width = photo.shape[:2]
    best = raw.predicted_class
    return PhotoReport(
        name=str(name), width=int(width), height=int(height), predicted=bundle.class_names[best],
        score=float(raw.probabilities[best]), target=target_label,
        top5=tuple((bundle.class_names[c], float(p)) for c, p in raw.top_k(5)), truth=_box(truth),
        seconds=None if seconds is None else float(seconds),
        methods=tuple(method_result(v, display, calibrated) for v in views),
    )


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _weights(bundle: ModelBundle) -> str:
    path = weights_file(bundle)
    if path is None or not path.is_file():
        return "not known (the weights were not read from a file)"
    stat = path.stat()
    return f"{path.name} · sha256 {_sha256(str(path), stat.st_size, stat.st_mtime)[:16]}"


def _versions() -> str:
    names = ("tensorflow-cpu", "tensorflow", "keras", "numpy", "opencv-python-headless")
    found = []
    for name in names:
        try:
            found.append(f"{name.replace('-cpu', '').replace('-python-headless', '')} "
                         f"{importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(dict.fromkeys(found))


def _layers_text(layers: dict[str, str]) -> str:
    """"out_relu (every method)", or "out_relu: CAM, Grad-CAM; block_13: LayerCAM"."""
    by_layer: dict[str, list[str]] = {}
    for method, layer in layers.items():
        by_layer.setdefault(layer, []).append(METHODS[method].label)
    if len(by_layer) == 1:
        return f"{next(iter(by_layer))} (every method)"
    return "; ".join(f"{layer}: {', '.join(labels)}" for layer, labels in by_layer.items())


def provenance(bundle: ModelBundle, calibrated: CalibratedPipeline, display: DisplaySettings, methods,
               *, model_reason: str | None = None, note: str | None = None, created: str = "",
               layers: dict[str, str] | None = None, variant: str | None = None) -> Provenance:
    """Model, weights, pipeline, τ per method and where it was calibrated, drawing settings, date.

    The target each photo was explained for is in its own section (a page may explain the ground-truth
    class, not the calibrated target)."""
    pipeline = calibrated.pipeline
    calibration = bundle.metadata.get("calibration") or {}
    taus = ", ".join(f"{METHODS[m].label} {display.box_for(m).threshold:.2f}"
                     + ("" if _is_calibrated(m, display, calibrated) else " (not calibrated)") for m in methods)
    where = (calibration.get("calibrated_on") or calibrated.source) + f"; for target {pipeline.target!r}"
    if calibration.get("date"):
        where += f" (calibrated {calibration['date']})"
    if note:
        where = f"{note}. Calibration: {where}"
    layer_text = _layers_text(layers or {})
    items = [
        ("Model", bundle.name),
        ("Model source", bundle.source + (f" — {model_reason}" if model_reason else "")),
        ("Weights", _weights(bundle)),
        ("Classes", f"{bundle.num_classes} · input {bundle.input_size[1]}×{bundle.input_size[0]} · "
                    f"{bundle.preprocessing} preprocessing"),
        ("Pipeline", f"{pipeline.recipe.label()}, {pipeline.interpolation} upsampling, "
                     f"{variant or pipeline.variant} variant"),
        ("Layers", layer_text or (pipeline.layer or f"{bundle.default_layer} (default)")),
        ("τ per method", taus),
        ("τ calibrated on", where),
        ("Boxes", f"{display.box.component} component(s), {display.box.shape} boxes; overlay α "
                  f"{display.alpha:.2f}, {display.colormap} colormap"),
        ("Software", _versions()),
        ("Created", created),
    ]
    return Provenance(tuple(items))


def evaluation_table(summary: dict, title: str = "Evaluation") -> Table:
    """An evaluation's summary (``summary.json`` of ``python -m core.evaluate``) as a leaderboard: the
    methods ranked by mean IoU, then the baselines, with the metrics the evaluation CLI prints."""
    columns = ("",) + METRIC_COLUMNS
    methods = len(summary["pipeline"]["methods"])
    pairs = list(zip(summary_rows(summary), formatted_rows(summary)))
    ranked = sorted(pairs[:methods], key=lambda pair: -(pair[0]["mean IoU"] or 0.0)) + pairs[methods:]
    rows = tuple(tuple(str(shown[c]) for c in columns) for _, shown in ranked)
    first = summary["pipeline"]["methods"][0]
    note = (f"{summary.get('model', '?')} on {summary.get('data', '?')} [{summary.get('split', '?')}]: "
            f"{summary.get('n', '?')} photos with a box; methods ranked by mean IoU. "
            f"τ: {summary[first].get('tau_source', '?')}.")
    return Table(title, ("Method",) + METRIC_COLUMNS, rows, note)


def leaderboard_table(board: dict, title: str = "Leaderboard") -> Table:
    """A leaderboard (``core.evaluate.leaderboard``): methods × metrics, mean [95 % interval], best first
    by mean IoU."""
    from core.evaluate.cli_format import leaderboard_frame_rows

    shown = leaderboard_frame_rows(board)
    order = sorted(range(len(shown)), key=lambda i: board["rows"][i]["mean_iou"]["rank"] or 99)
    columns = tuple(shown[0]) if shown else ("method",)
    rows = tuple(tuple(shown[i][c] for c in columns) for i in order)
    where = " · ".join(str(board[k]) for k in ("title", "data", "pipeline_label") if board.get(k))
    note = (f"{where}. " if where else "") + (f"{int(board.get('level', 0.95) * 100)} % bootstrap intervals over "
                                              f"photos; ↑ higher is better, ↓ lower. τ: {board.get('tau_source', '?')}.")
    return Table(title, ("Method",) + columns[1:], rows, note)


def _shipped_board_table(model_name: str) -> Table | None:
    from core.evaluate.leaderboard import shipped_leaderboards

    try:
        board = next((b for b in shipped_leaderboards() if b.get("model") == model_name), None)
    except ValueError:
        return None
    return None if board is None else leaderboard_table(board, "Leaderboard (shipped with the project)")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def make_report(photos, bundle: ModelBundle, calibrated: CalibratedPipeline, display: DisplaySettings, *,
                title: str = "CAM Explorer report", tables=(), skipped=(), model_reason: str | None = None,
                note: str | None = None, variant: str | None = None) -> Report:
    """Photos + the method comparison over them + any tables (evaluation, leaderboard) + provenance."""
    photos = tuple(photos)
    layers = {r.method: r.layer for p in photos for r in p.methods}
    methods = tuple(layers) or tuple(calibrated.pipeline.methods)
    created = _now()
    if not any(t.title.startswith("Leaderboard") for t in tables):
        shipped = _shipped_board_table(bundle.name)
        tables = tuple(tables) + ((shipped,) if shipped else ())
    return Report(
        title=title, created=created,
        provenance=provenance(bundle, calibrated, display, methods, model_reason=model_reason, note=note,
                              created=created, layers=layers, variant=variant),
        photos=photos, comparison=comparison_rows(photos, calibrated.heldout_iou), tables=tuple(tables),
        skipped=tuple((str(n), str(e)) for n, e in skipped),
    )


def build_report(name: str, photo: np.ndarray, raw: RawExplanation, display: DisplaySettings,
                 bundle: ModelBundle, calibrated: CalibratedPipeline, *, target_label: str,
                 views: list[MethodView] | None = None, truth=None, seconds: float | None = None,
                 evaluation: dict | None = None, title: str | None = None) -> Report:
    """The dashboard's one-click report of the photo a page shows (write it with ``to_html``/``to_pdf``)."""
    section = photo_report(name, photo, raw, bundle, display, target_label=target_label, calibrated=calibrated,
                           views=views, truth=truth, seconds=seconds)
    tables = (evaluation_table(evaluation),) if evaluation else ()
    if evaluation and (evaluation.get("leaderboard") or {}).get("rows"):
        tables += (leaderboard_table(evaluation["leaderboard"]),)
    return make_report([section], bundle, calibrated, display, title=title or f"CAM Explorer report: {name}",
                       tables=tables, variant=raw.variant)

