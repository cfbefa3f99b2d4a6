"""Turning raw Stanford Cars annotation rows (from ``.mat`` or ``.csv``) into a checked split table.

This is the one place where Stanford boxes and classes are converted: devkit and CSV boxes are 1-based
inclusive pixels (→ :func:`core.boxes.from_devkit`), classes are 1-based (→ 0-based labels). Rows whose
photo is missing or whose file name is unsafe are dropped and counted; rows with a class outside the class
list or an invalid box are kept without that field and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.boxes import box_area, from_devkit
from core.data.folders import PhotoLocator, safe_parts
from core.data.records import UNKNOWN_LABEL, AnnotationTable, SplitSummary

__all__ = ["RawRows", "build_table"]


@dataclass(frozen=True, eq=False)
class RawRows:
    """Annotation rows as stored: file names, 1-based inclusive boxes (N, 4), 1-based classes or None."""

    fnames: list[str]
    boxes: np.ndarray
    classes: np.ndarray | None

    def take(self, mask: np.ndarray) -> RawRows:
        """The rows where ``mask`` is True (e.g. the test rows of ``cars_annos.mat``)."""
        keep = np.flatnonzero(mask)
        classes = None if self.classes is None else self.classes[keep]
        return RawRows([self.fnames[i] for i in keep], self.boxes[keep], classes)


def _labels(classes: np.ndarray | None, n: int, num_classes: int) -> np.ndarray:
    """1-based classes → 0-based labels, with UNKNOWN_LABEL for any outside 1..num_classes."""
    if classes is None:
        return np.full(n, UNKNOWN_LABEL, dtype=np.int64)
    values = np.asarray(classes, dtype=np.float64)
    ok = np.isfinite(values) & (values == np.round(values)) & (values >= 1) & (values <= num_classes)
    return np.where(ok, np.nan_to_num(values) - 1, UNKNOWN_LABEL).astype(np.int64)


def _boxes(devkit_boxes: np.ndarray) -> np.ndarray:
    """Devkit boxes → project boxes, with NaN rows for non-finite or empty ones."""
    boxes = from_devkit(np.asarray(devkit_boxes, dtype=np.float64).reshape(-1, 4))
    ok = np.isfinite(boxes).all(axis=1) & (box_area(boxes) > 0)
    boxes[~ok] = np.nan
    return boxes


def build_table(
    split: str, rows: RawRows, locator: PhotoLocator, class_names: tuple[str, ...]
) -> tuple[AnnotationTable, SplitSummary]:
    """Match rows to photo files and convert boxes and classes; returns the table and its counts.

    Counts of bad labels and boxes cover the kept rows only, so they describe what the split holds;
    ``unannotated`` is left to the caller, who knows which folders belong to the split. Ids are
    ``"stanford:<split>/<file name>"``: the same for one photo in every layout that numbers photos the
    same way (devkit, Kaggle and CSV mirrors all use ``00001.jpg``…).
    """
    keep: list[int] = []
    paths: list[Path] = []
    unsafe = missing = 0
    for i, fname in enumerate(rows.fnames):
        parts = safe_parts(fname)
        if parts is None:
            unsafe += 1
            continue
        path = locator.locate(parts)
        if path is None:
            missing += 1
            continue
        keep.append(i)
        paths.append(path)
    kept = np.asarray(keep, dtype=np.int64)
    labels = _labels(rows.classes, len(rows.fnames), len(class_names))[kept]
    boxes = _boxes(rows.boxes)[kept].reshape(-1, 4)
    ids = tuple(f"stanford:{split}/{path.name}" for path in paths)
    table = AnnotationTable(split, ids, labels, boxes, tuple(paths), class_names)
    summary = SplitSummary(
        name=split, annotated=len(rows.fnames), found=len(keep), missing=missing, unsafe=unsafe,
        bad_labels=int((labels == UNKNOWN_LABEL).sum()) if rows.classes is not None else 0,
        bad_boxes=int(np.isnan(boxes).any(axis=1).sum()),
        labelled=rows.classes is not None,
    )
    return table, summary
