"""What every data source yields, whatever its layout: photo records, annotation rows and split counts.

Conventions (the same for every source)
    * ``image``: RGB ``uint8`` array of shape (H, W, 3).
    * ``label``: 0-based class index, or ``None`` when unknown (uploads, a test split without labels,
      a class index outside the class list).
    * ``box``: ``(x1, y1, x2, y2)`` float pixels in the project convention of :mod:`core.boxes`, or ``None``
      when unknown or invalid.
    * ``id``: stable text naming the photo, e.g. ``"stanford:train/00028.jpg"``, ``"tfds:test/00017"``,
      ``"upload:car.jpg:3fa9c1d2e4b5"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Record", "Annotation", "AnnotationTable", "SplitSummary", "UNKNOWN_LABEL"]

UNKNOWN_LABEL = -1
"""Value of :attr:`AnnotationTable.labels` where the class is unknown."""

Box = tuple[float, float, float, float]


@dataclass(frozen=True, eq=False)
class Record:
    """One photo with what is known about it."""

    id: str
    image: np.ndarray
    label: int | None = None
    class_name: str | None = None
    box: Box | None = None
    split: str | None = None


@dataclass(frozen=True)
class Annotation:
    """One annotation row, without the photo: cheap to list and filter."""

    id: str
    split: str
    label: int | None
    class_name: str | None
    box: Box | None
    path: Path | None


def box_or_none(row: np.ndarray) -> Box | None:
    """A table row of 4 floats → a box tuple, or None for the NaN row that means "no box"."""
    return None if np.isnan(row).any() else tuple(float(v) for v in row)  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class AnnotationTable:
    """Column-wise annotations of one split, aligned with the split's indices.

    ``labels`` is int64 with :data:`UNKNOWN_LABEL` for unknown classes; ``boxes`` is float64 (N, 4) in the
    project convention with NaN rows for unknown boxes; ``paths`` holds the photo files (``None`` for
    sources without files, such as tfds). Columns, not objects, so a UI filters 8,000 rows at once:

    >>> import numpy as np
    >>> t = AnnotationTable("train", ("a", "b"), np.array([3, -1]), np.full((2, 4), np.nan), (None, None), ())
    >>> t.indices_of_class(3).tolist(), t.row(1).label
    ([0], None)
    """

    split: str
    ids: tuple[str, ...]
    labels: np.ndarray
    boxes: np.ndarray
    paths: tuple[Path | None, ...]
    class_names: tuple[str, ...]

    def __post_init__(self):
        n = len(self.ids)
        if self.labels.shape != (n,) or self.boxes.shape != (n, 4) or len(self.paths) != n:
            raise ValueError(
                f"annotation columns disagree in length: {n} ids, labels {self.labels.shape}, "
                f"boxes {self.boxes.shape}, {len(self.paths)} paths"
            )
        self.labels.setflags(write=False)  # tables are cached and shared (e.g. across dashboard sessions)
        self.boxes.setflags(write=False)

    def __len__(self) -> int:
        return len(self.ids)

    def class_name(self, label: int | None) -> str | None:
        """Name of a 0-based class index, or None when unknown or out of range."""
        if label is None or not 0 <= label < len(self.class_names):
            return None
        return self.class_names[label]

    def label(self, index: int) -> int | None:
        value = int(self.labels[index])
        return None if value == UNKNOWN_LABEL else value

    def row(self, index: int) -> Annotation:
        label = self.label(index)
        return Annotation(
            id=self.ids[index], split=self.split, label=label, class_name=self.class_name(label),
            box=box_or_none(self.boxes[index]), path=self.paths[index],
        )

    def indices_of_class(self, label: int) -> np.ndarray:
        """Indices (into the split) of the photos of one 0-based class."""
        return np.flatnonzero(self.labels == label)


@dataclass(frozen=True)
class SplitSummary:
    """What opening one split found: the numbers ``python -m core.data`` prints."""

    name: str
    annotated: int
    """Annotation rows read (for tfds: examples)."""
    found: int
    """Rows whose photo is present: the split's length."""
    missing: int = 0
    """Rows skipped because their photo is absent (partial copies are common)."""
    unsafe: int = 0
    """Rows skipped because their file name escapes the dataset folder (``..``, absolute paths)."""
    bad_labels: int = 0
    """Rows kept with ``label=None`` because their class index is outside the class list."""
    bad_boxes: int = 0
    """Rows kept with ``box=None`` because their box is invalid (NaN, inverted, empty)."""
    unannotated: int = 0
    """Photo files in the split's folder that no annotation row mentions (not loaded)."""
    labelled: bool = True
    """False when the split has no class labels at all (e.g. the devkit's unlabelled test file)."""
    photo_folder: str = ""
    """Where the split's photos were looked for, relative to the dataset folder ("" when not a folder)."""

    def lines(self) -> list[str]:
        where = f" (photos in {self.photo_folder}/)" if self.photo_folder else ""
        text = [f"{self.name}: {self.found} photos ready of {self.annotated} annotated{where}"]
        problems = [
            (self.missing, "annotated photos missing (skipped)"),
            (self.unsafe, "rows with a file name outside the folder (skipped)"),
            (self.bad_labels, "rows with a class outside the class list (kept without label)"),
            (self.bad_boxes, "rows with an invalid box (kept without box)"),
            (self.unannotated, "photo files without annotation (ignored)"),
        ]
        text += [f"  {count} {what}" for count, what in problems if count]
        if not self.labelled:
            text.append("  no class labels for this split")
        return text
