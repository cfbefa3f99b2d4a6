"""What the evaluation command line prints: a progress bar with ETA, and the final metrics table."""

from __future__ import annotations


__all__ = ["ProgressBar", "summary_table", "duration"]

LABELS = {"cam": "CAM", "gradcam": "Grad-CAM"}


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


def summary_table(summary: dict) -> str:
    """The metrics as a fixed-width table, methods then baselines."""
    head = (f"{'':22s} {'τ':>9s} {'mean IoU':>8s} {'median':>7s} {'@0.3':>6s} {'@0.5':>6s} {'@0.7':>6s} "
            f"{'MaxBoxAcc':>9s} {'V2':>6s} {'top-1 loc':>9s} {'GT-known':>8s}")
    lines = [f"model: {summary['model']}", f"pipeline: {summary['pipeline_label']}",
             f"data: {summary['data']} [{summary['split']}]: {summary['n']} photos with a box "
             f"({summary['n_photos']} evaluated)", head]
    for method in summary["pipeline"]["methods"]:
        m = summary[method]
        acc = m["boxacc"]
        lines.append(f"{LABELS.get(method, method):22s} {_cell(m['tau'], 2):>9s} {_cell(m['mean_iou']):>8s} "
                     f"{_cell(m['median_iou']):>7s} {_cell(acc['0.3']):>6s} {_cell(acc['0.5']):>6s} "
                     f"{_cell(acc['0.7']):>6s} {_cell(m['maxboxacc']):>9s} {_cell(m['maxboxaccv2']):>6s} "
                     f"{_cell(m['top1_loc']):>9s} {_cell(m['gt_known_loc']):>8s}")
    for name, base in summary["baselines"].items():
        acc = base["boxacc"]
        label = name.replace("_", " ") + (f" ({_cell(base['fraction'], 2)})" if "fraction" in base else "")
        lines.append(f"{label:22s} {'':>9s} {_cell(base['mean_iou']):>8s} {_cell(base['median_iou']):>7s} "
                     f"{_cell(acc['0.3']):>6s} {_cell(acc['0.5']):>6s} {_cell(acc['0.7']):>6s}")
    lines.append(f"τ source: {summary[summary['pipeline']['methods'][0]]['tau_source']}")
    accuracy = _cell(summary["classification_accuracy"])
    lines.append(f"classification: {summary['correct_rule']}; accuracy {accuracy}")
    lines.append(f"photos per second: {_cell(summary['photos_per_second'], 1)}")
    return "\n".join(lines)
