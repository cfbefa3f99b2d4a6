"""An opened dataset: named splits with random access to records, annotations and a description.

Every source (Stanford folder layouts, tfds) builds the same two objects, so the dashboard and the
evaluation code never ask where the photos came from:

    ds = open_dataset("/data/stanford_cars")
    split = ds["train"]
    len(split), split[0].image.shape, split.annotations.indices_of_class(13)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from core.data.records import AnnotationTable, Record, SplitSummary
from core.images import ImageDecodeError, read_image

__all__ = ["Split", "Dataset", "DatasetSummary", "folder_split"]

RecordLoader = Callable[[int], Record]
SequentialReader = Callable[[], Iterator["Record | ImageDecodeError"]]


class Split(Sequence[Record]):
    """One split: ``len(split)``, ``split[i]`` (loads the photo lazily) and ``split.annotations``.

    ``split[i]`` raises :class:`core.images.ImageDecodeError` when that photo cannot be decoded, and
    ``IndexError`` outside ``range(len(split))``. ``sequential``, when a source has one, reads the whole
    split in order faster than random access (tfds); the pipeline uses it.
    """

    def __init__(self, annotations: AnnotationTable, load: RecordLoader,
                 sequential: SequentialReader | None = None):
        self.annotations = annotations
        self._load = load
        self.sequential = sequential

    @property
    def name(self) -> str:
        return self.annotations.split

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.annotations.class_names

    def __len__(self) -> int:
        return len(self.annotations)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("a Split is indexed one photo at a time; use range(len(split))[s] for slices")
        if not isinstance(index, int) and not hasattr(index, "__index__"):
            raise TypeError(f"split index must be an integer, got {type(index).__name__}")
        i = int(index)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for the {self.name!r} split of {n} photos")
        return self._load(i % n)

    def __repr__(self) -> str:
        return f"Split({self.name!r}, {len(self)} photos)"


def folder_split(annotations: AnnotationTable) -> Split:
    """A split whose photos are files listed in ``annotations.paths``.

    Photos are decoded without applying EXIF orientation: Stanford Cars boxes refer to the stored pixel
    grid (see :mod:`core.images`).
    """

    def load(i: int) -> Record:
        path = annotations.paths[i]
        if path is None:
            raise ImageDecodeError(f"{annotations.ids[i]}: no photo file is known for this row")
        row = annotations.row(i)
        return Record(id=row.id, image=read_image(path, apply_exif=False), label=row.label,
                      class_name=row.class_name, box=row.box, split=row.split)

    return Split(annotations, load)


@dataclass(frozen=True)
class DatasetSummary:
    """Which source and layout are in use and what was found; ``text()`` is what the CLI prints."""

    source: str
    """"stanford-folder" or "tfds"."""
    layout: str
    """E.g. "devkit", "devkit (Kaggle nested folders)", "csv (class subfolders)", "car_ims", "tfds"."""
    location: str
    num_classes: int
    splits: tuple[SplitSummary, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def photos(self) -> int:
        """Photos ready to use, all splits together."""
        return sum(s.found for s in self.splits)

    def text(self) -> str:
        lines = [
            f"source:  {self.source}",
            f"layout:  {self.layout}",
            f"where:   {self.location}",
            f"classes: {self.num_classes}",
            f"photos:  {self.photos} ready",
        ]
        for split in self.splits:
            lines += split.lines()
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


class Dataset:
    """Named splits (``"train"``, ``"test"``) plus the class names and a summary of what was opened."""

    def __init__(self, summary: DatasetSummary, class_names: tuple[str, ...], splits: dict[str, Split]):
        self.summary = summary
        self.class_names = class_names
        self.splits = splits

    def __getitem__(self, name: str) -> Split:
        try:
            return self.splits[name]
        except KeyError:
            raise KeyError(f"no split {name!r} in this dataset; it has {sorted(self.splits)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.splits

    def describe(self) -> str:
        """Human-readable description: source, layout, photo counts per split, problems found."""
        return self.summary.text()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(split)}" for name, split in self.splits.items())
        return f"Dataset({self.summary.source}, {self.summary.layout}, {sizes})"
