"""What a report holds, independent of how it is written (HTML, PDF, PNG contact sheet).

Plain frozen values: every number a writer prints is computed once here or in :mod:`core.report.build`,
so the HTML, the PDF and the contact sheet cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class MethodResult:
    """One method on one photo: its overlay (uint8 RGB, boxes drawn), main box, IoU and τ."""

    method: str
    label: str
    layer: str
    threshold: float
    calibrated: bool  # whether τ was calibrated for this method's maps (else the default)
    iou: float | None  # None without a ground truth
    box: tuple[float, float, float, float] | None  # main box (x1, y1, x2, y2), photo pixels
    regions: int
    status: str | None  # a warning about the map (flat, NaN...), when there is one
    overlay: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class PhotoReport:
    """One photo: what the model predicted, the truth when known, and every method's result."""

    name: str  # as the user gave it: always escaped by the writers
    width: int
    height: int
    predicted: str
    score: float
    target: str
    top5: tuple[tuple[str, float], ...]
    truth: tuple[float, float, float, float] | None
    seconds: float | None  # network time for all methods together
    methods: tuple[MethodResult, ...]


@dataclass(frozen=True)
class ComparisonRow:
    """One method across the report's photos; IoU figures only over photos with a ground truth."""

    method: str
    label: str
    layer: str
    threshold: float
    calibrated: bool
    photos: int  # photos this method ran on
    scored: int  # of them, photos with a ground truth
    mean_iou: float | None
    hits: int  # scored photos with IoU ≥ 0.5
    heldout_iou: float | None  # mean IoU on held-out photos when τ was calibrated (k-fold)


@dataclass(frozen=True)
class Table:
    """A titled table of display strings (an evaluation summary, a leaderboard, ...)."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class Provenance:
    """How every figure in the report was made, as (label, value) lines in reading order."""

    items: tuple[tuple[str, str], ...]

    def get(self, label: str) -> str | None:
        return dict(self.items).get(label)


@dataclass(frozen=True)
class Report:
    title: str
    created: str  # UTC, ISO 8601
    provenance: Provenance
    photos: tuple[PhotoReport, ...]
    comparison: tuple[ComparisonRow, ...]
    tables: tuple[Table, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (photo name, why it could not be read)

    def __post_init__(self):
        if not self.photos and not self.tables:
            raise ValueError("a report needs at least one photo or one table")


IOU_HIT = 0.5  # the usual "correct localisation" level (BoxAcc@0.5)


def comparison_rows(photos, heldout: dict | None = None) -> tuple[ComparisonRow, ...]:
    """Per method, in the order the methods first appear: τ, mean IoU and hits over the scored photos."""
    heldout = heldout or {}
    order: dict[str, list[MethodResult]] = {}
    for photo in photos:
        for result in photo.methods:
            order.setdefault(result.method, []).append(result)
    rows = []
    for method, results in order.items():
        ious = [r.iou for r in results if r.iou is not None]
        first = results[0]
        rows.append(ComparisonRow(
            method=method, label=first.label, layer=first.layer, threshold=first.threshold,
            calibrated=first.calibrated, photos=len(results), scored=len(ious),
            mean_iou=float(np.mean(ious)) if ious else None, hits=sum(v >= IOU_HIT for v in ious),
            heldout_iou=heldout.get(method) if first.calibrated else None,
        ))
    return tuple(rows)


def comparison_table(rows: tuple[ComparisonRow, ...]) -> Table:
    """The method comparison as display strings (the writers all print this one)."""
    columns = ("Method", "Layer", "τ", "Photos", "Mean IoU", f"IoU ≥ {IOU_HIT}", "Held-out IoU (calibration)")
    body = tuple(
        (row.label, row.layer, f"{row.threshold:.2f}" + ("" if row.calibrated else " (default)"),
         str(row.photos), "—" if row.mean_iou is None else f"{row.mean_iou:.3f}",
         "—" if not row.scored else f"{row.hits}/{row.scored}",
         "—" if row.heldout_iou is None else f"{row.heldout_iou:.3f}")
        for row in rows
    )
    return Table("Method comparison", columns, body,
                 "IoU of each method's main box with the ground truth, over the photos that have one.")
