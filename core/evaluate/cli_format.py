"""What the evaluation command line prints: a progress bar with ETA, and the final metrics table."""

from __future__ import annotations

from core.evaluate.plots import LABELS

__all__ = ["ProgressBar", "summary_table", "duration"]


def duration(seconds: float | None) -> str:
    """``75`` → ``"1:15"``, ``3700`` → ``"1:01:40"``; ``"?"`` when unknown."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """A callable for ``run_evaluation(progress=...)``: one redrawn line on a terminal, otherwise a
    line every 10 % (logs stay short)."""

    def __init__(self, stream, width: int = 30):
        self.stream, self.width = stream, width
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._last_decile = {}
        self._open = False

    def line(self, p) -> str:
        share = p.done / p.total if p.total else 1.0
        filled = int(round(share * self.width))
        if p.rate:
            rate = f"{p.rate:.1f} photos/s"
        else:
            rate = f"{p.done} resumed from disk" if p.done else "starting"
        return (f"{p.stage:11s} {p.done}/{p.total} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{rate}, ETA {duration(p.eta)}")

    def __call__(self, p) -> None:
        if self.tty:
            self.stream.write("\r" + self.line(p))
            self._open = True
        else:
            decile = int(10 * p.done / p.total) if p.total else 10
            if self._last_decile.get(p.stage) != decile:
                self._last_decile[p.stage] = decile
                self.stream.write(self.line(p) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self._open = False


def _cell(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return f"{min(value):.2f}–{max(value):.2f}"
    return f"{value:.{digits}f}"


def speed_text(photos_per_second: float | None) -> str:
    """Evaluation speed a person can read: photos per second, or seconds per photo for the slow methods
    (IS-CAM's 0.024 photos/s printed as "0.0")."""
    if photos_per_second is None:
        return "not measured (resumed run)"
    if photos_per_second >= 1:
        return f"{photos_per_second:.1f} photos/s"
    if photos_per_second <= 0:
        return "not measured"
    return f"{1 / photos_per_second:,.1f} s a photo"


METRIC_COLUMNS = ("τ", "mean IoU", "median", "@0.3", "@0.5", "@0.7", "MaxBoxAcc", "V2", "top-1 loc", "GT-known")


def summary_rows(summary: dict) -> list[dict]:
    """One row per method, then per baseline, keyed by :data:`METRIC_COLUMNS` (None where not defined);
    the CLI prints them, the dashboard shows them as a table."""
    rows = []
    for method in summary["pipeline"]["methods"]:
        m = summary[method]
        acc = m["boxacc"]
        rows.append({"": LABELS.get(method, method), "τ": m["tau"], "mean IoU": m["mean_iou"],
                     "median": m["median_iou"], "@0.3": acc["0.3"], "@0.5": acc["0.5"], "@0.7": acc["0.7"],
                     "MaxBoxAcc": m["maxboxacc"], "V2": m["maxboxaccv2"], "top-1 loc": m["top1_loc"],
                     "GT-known": m["gt_known_loc"]})
    for name, base in summary["baselines"].items():
        acc = base["boxacc"]
        label = name.replace("_", " ") + (f" ({_cell(base['fraction'], 2)})" if "fraction" in base else "")
        rows.append({"": label, **{column: None for column in METRIC_COLUMNS}, "mean IoU": base["mean_iou"],
                     "median": base["median_iou"], "@0.3": acc["0.3"], "@0.5": acc["0.5"], "@0.7": acc["0.7"]})
    return rows


def formatted_rows(summary: dict) -> list[dict]:
    """:func:`summary_rows` as display strings (τ ranges as "0.51–0.54", blanks where undefined)."""
    return [{column: (value if column == "" else "" if value is None else _cell(value, 2 if column == "τ" else 3))
             for column, value in row.items()} for row in summary_rows(summary)]


def summary_table(summary: dict) -> str:
    """The metrics as a fixed-width table, methods then baselines."""
    widths = {"τ": 9, "mean IoU": 8, "median": 7, "@0.3": 6, "@0.5": 6, "@0.7": 6, "MaxBoxAcc": 9, "V2": 6,
              "top-1 loc": 9, "GT-known": 8}
    head = f"{'':22s} " + " ".join(f"{column:>{widths[column]}s}" for column in METRIC_COLUMNS)
    lines = [f"model: {summary['model']}", f"pipeline: {summary['pipeline_label']}",
             f"data: {summary['data']} [{summary['split']}]: {summary['n']} photos with a box "
             f"({summary['n_photos']} evaluated)", head]
    for row in summary_rows(summary):
        cells = " ".join(("" if row[c] is None else _cell(row[c], 2 if c == "τ" else 3)).rjust(widths[c])
                         for c in METRIC_COLUMNS)
        lines.append(f"{row['']:22s} {cells}".rstrip())
    lines.append(f"τ source: {summary[summary['pipeline']['methods'][0]]['tau_source']}")
    accuracy = _cell(summary["classification_accuracy"])
    lines.append(f"classification: {summary['correct_rule']}; accuracy {accuracy}")
    lines.append(f"speed: {speed_text(summary['photos_per_second'])}")
    return "\n".join(lines)


def leaderboard_frame_rows(board: dict, with_interval: bool = True) -> list[dict]:
    """One row per method: each metric as "0.852 [0.838, 0.866]" (or the mean alone), and its rank."""
    rows = []
    for row in board.get("rows", []):
        entry = {"method": LABELS.get(row["method"], row["method"])}
        for column in board.get("metrics", []):
            cell = row[column["key"]]
            text = _cell(cell["mean"])
            if with_interval and cell["mean"] is not None:
                text += f" [{_cell(cell['low'])}, {_cell(cell['high'])}]"
            entry[column["label"] + (" ↑" if column["higher_is_better"] else " ↓")] = text
        rows.append(entry)
    return rows


def leaderboard_table(summary: dict) -> str:
    """The leaderboard as text: methods × metrics, mean [95 % interval] (n photos), the cost per photo."""
    board = summary.get("leaderboard") or {}
    if not board.get("rows"):
        return ""
    rows = leaderboard_frame_rows(board)
    headers = list(rows[0])
    widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in headers}
    n = {c["label"]: board["rows"][0][c["key"]]["n"] for c in board["metrics"]}
    lines = [f"leaderboard ({int(board['level'] * 100)} % bootstrap intervals over photos; ↑ higher is better, "
             f"↓ lower; n = {', '.join(f'{k} {v}' for k, v in n.items())})",
             "  ".join(h.ljust(widths[h]) for h in headers)]
    lines += ["  ".join(r[h].ljust(widths[h]) for h in headers) for r in rows]
    cost = board.get("cost")
    if cost:
        ms = ", ".join(f"{family} {value:.0f} ms" for family, value in cost["ms_per_photo_per_method"].items()
                       if value)
        lines.append(f"faithfulness cost per photo and method at {cost['input']}: {ms}")
    return "\n".join(lines)
