"""Where the data lives: ``open_dataset(spec)`` picks tfds or a Stanford Cars folder and its layout.

``spec`` is what a user types (the dashboard passes its field's value, the CLI its argument):
``None`` → the ``CARS196_DIR`` environment variable; ``"tfds:cars196"`` → prepared tfds data
(``TFDS_DATA_DIR`` or ``data_dir=``); anything else → a folder whose layout is detected.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from core.data.csv_layout import is_csv_layout, open_csv
from core.data.dataset import Dataset
from core.data.errors import DatasetNotFoundError, UnknownLayoutError
from core.data.stanford import is_car_ims_layout, is_devkit_layout, open_car_ims, open_devkit
from core.data.tfds_source import TFDS_NAME, open_tfds

__all__ = ["ENV_VAR", "LAYOUTS", "open_dataset", "open_folder", "detect_layout"]

ENV_VAR = "CARS196_DIR"
TFDS_PREFIX = "tfds:"

LAYOUTS: tuple[tuple[str, Callable[[Path], bool], Callable[[Path], Dataset]], ...] = (
    ("car_ims", is_car_ims_layout, open_car_ims),
    ("devkit", is_devkit_layout, open_devkit),
    ("csv", is_csv_layout, open_csv),
)
"""(name, test, opener), tried in this order: the first whose marker files are present wins."""

HOW_TO_GET_DATA = (
    "Download Stanford Cars (Cars196) from a mirror — e.g. the Kaggle copy with cars_train/, cars_test/ "
    "and the devkit, plus cars_test_annos_withlabels.mat — then set CARS196_DIR to that folder (or type it "
    "in the dataset field) and check it with `python -m core.data FOLDER`. tfds.load('cars196') cannot "
    "download it any more (its URLs return 404)."
)

_MARKERS = ("cars_annos.mat + car_ims/ (all photos in one folder)",
            "devkit/cars_meta.mat + cars_train/ + cars_test/ (original, torchvision, Kaggle nested)",
            "anno_train.csv / anno_test.csv + names.csv (CSV mirrors)")


def detect_layout(root: Path) -> str | None:
    """Name of the first layout in :data:`LAYOUTS` whose marker files ``root`` holds, or None."""
    return next((name for name, matches, _ in LAYOUTS if matches(root)), None)


def _unknown_layout(root: Path) -> UnknownLayoutError:
    try:
        entries = sorted(entry.name for entry in os.scandir(root))
    except OSError:
        entries = []
    shown = ", ".join(entries[:12]) + (" …" if len(entries) > 12 else "") if entries else "nothing"
    hints = [f"{root / name}" for name in entries[:50]
             if (root / name).is_dir() and detect_layout(root / name) is not None]
    hint = f" It looks like the data is one level down: {hints[0]}." if hints else ""
    if (root / "anno_train.csv").is_file() and not (root / "names.csv").is_file():
        hint += " anno_train.csv is there but names.csv (the class names) is missing."
    return UnknownLayoutError(
        f"{root}: not a Stanford Cars folder in any known layout. It holds {shown}. Expected one of: "
        + "; ".join(_MARKERS) + "." + hint
    )


def open_folder(folder: str | os.PathLike) -> Dataset:
    """Open a Stanford Cars folder, detecting its layout; raise a :class:`DatasetError` otherwise."""
    root = Path(folder).expanduser()
    if not root.exists():
        raise DatasetNotFoundError(f"{root}: no such folder. {HOW_TO_GET_DATA}")
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root}: is a file, not a folder; give the folder that holds the dataset")
    for name, matches, opener in LAYOUTS:
        if matches(root):
            return opener(root)
    raise _unknown_layout(root)


def open_dataset(spec: str | os.PathLike | None = None, *, data_dir: str | os.PathLike | None = None,
                 download: bool = False) -> Dataset:
    """Open Cars196 from ``spec`` (see module docstring); ``data_dir``/``download`` apply to tfds only.

    Raises a :class:`core.data.errors.DatasetError` (a ``ValueError``) whose message says what to do.
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        spec = os.environ.get(ENV_VAR, "").strip()
        if not spec:
            raise DatasetNotFoundError(f"no dataset given and {ENV_VAR} is not set. {HOW_TO_GET_DATA}")
    if isinstance(spec, str) and spec.strip().lower().startswith(TFDS_PREFIX):
        name = spec.strip()[len(TFDS_PREFIX):].lower()
        if name != TFDS_NAME:
            raise DatasetNotFoundError(f"{spec!r}: only tfds:{TFDS_NAME} is supported")
        return open_tfds(data_dir, download=download)
    return open_folder(spec.strip() if isinstance(spec, str) else spec)
