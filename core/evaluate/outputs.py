"""Writing and reading an evaluation folder: ``per_photo.csv``, ``per_class.csv``, ``summary.json``, plots.

Every file is replaced atomically, and ``summary.json`` is written last: a folder with a summary holds a
complete, consistent result set. :func:`load_results` gives the dashboard everything it plots.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.evaluate.plots import write_plots
from core.files import write_atomically

__all__ = ["write_outputs", "load_results", "Results", "photo_columns"]

BOX_SIDES = ("x1", "y1", "x2", "y2")


def photo_columns(methods, metrics=()) -> list[str]:
    """Column order of ``per_photo.csv``."""
    columns = ["id", "label", "class_name", "height", "width", *(f"truth_{s}" for s in BOX_SIDES),
               "predicted", "predicted_name", "score", "correct"]
    for method in methods:
        columns += [f"{method}_tau", *(f"{method}_{s}" for s in BOX_SIDES), f"{method}_iou",
                    *(f"{method}_{key}" for key in metrics)]
    return columns + ["full_image_iou", "center_box_iou"]


LEADERBOARD_COLUMNS = ("method", "metric", "mean", "low", "high", "n", "rank")


def leaderboard_rows(board: dict) -> list[dict]:
    """The board as one row per (method, metric), for ``leaderboard.csv``."""
    return [{"method": row["method"], "metric": column["key"], **row[column["key"]]}
            for row in board.get("rows", []) for column in board.get("metrics", [])]


def _flat(row: dict, methods) -> dict:
    flat = {key: value for key, value in row.items() if key != "truth" and not key.endswith("_box")}
    for prefix, box in [("truth", row["truth"])] + [(m, row[f"{m}_box"]) for m in methods]:
        for side, value in zip(BOX_SIDES, box or (None,) * 4):
            flat[f"{prefix}_{side}"] = value
    return flat


def _csv_text(rows: list[dict], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else _rounded(row.get(k))) for k in columns})
    return buffer.getvalue()


def _rounded(value):
    return round(value, 5) if isinstance(value, float) else value


def write_outputs(out: Path, summary: dict, rows: list[dict], classes: list[dict], methods) -> None:
    out = Path(out)
    board = summary.get("leaderboard") or {}
    metrics = [c["key"] for c in board.get("metrics", []) if c.get("family") != "box"]
    write_atomically(out / "per_photo.csv", _csv_text([_flat(r, methods) for r in rows],
                                                      photo_columns(methods, metrics)))
    class_columns = list(classes[0]) if classes else ["label", "class_name", "n"]
    write_atomically(out / "per_class.csv", _csv_text(classes, class_columns))
    files = ["per_photo.csv", "per_class.csv", "summary.json"]
    if board:
        write_atomically(out / "leaderboard.csv", _csv_text(leaderboard_rows(board), list(LEADERBOARD_COLUMNS)))
        files.insert(0, "leaderboard.csv")
    summary["plots"] = write_plots(out, summary, rows, methods)
    summary["files"] = files
    write_atomically(out / "summary.json", json.dumps(summary, indent=2))


@dataclass(frozen=True)
class Results:
    """A finished evaluation folder, read back: the summary, the tables, and the Plotly figures."""

    folder: Path
    summary: dict
    per_photo: list[dict]
    per_class: list[dict]
    figures: dict  # name → plotly Figure
    pngs: dict  # name → Path


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def load_results(folder: str | Path) -> Results:
    """Read an evaluation folder written by ``run_evaluation``; CSV values come back as strings."""
    import plotly.io

    folder = Path(folder)
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{folder} holds no summary.json: run `python -m core.evaluate --out "
                                f"{folder}` first (an interrupted run resumes where it stopped)")
    summary = json.loads(summary_path.read_text())
    plots = folder / "plots"
    figures = {p.stem: plotly.io.from_json(p.read_text()) for p in sorted(plots.glob("*.json"))
               if p.stem != "chart_data"}
    pngs = {p.stem: p for p in sorted(plots.glob("*.png"))}
    return Results(folder, summary, _read_csv(folder / "per_photo.csv"), _read_csv(folder / "per_class.csv"),
                   figures, pngs)


def stored_map(folder: str | Path, photo_id: str, method: str) -> np.ndarray | None:
    """The raw map ``method`` gave ``photo_id`` in an evaluation folder's stored batches (None when the
    batches are gone or never held it): the worst photos are drawn from what was evaluated."""
    for chunk in sorted((Path(folder) / ".partial").glob("*/chunk_*.npz")):
        with np.load(chunk, allow_pickle=False) as data:
            if f"map__{method}" not in data.files:
                continue
            hits = np.flatnonzero(data["id"] == photo_id)
            if hits.size:
                return np.asarray(data[f"map__{method}"][hits[0]])
    return None
