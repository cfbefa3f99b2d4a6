"""Reading the Stanford Cars MATLAB annotation files with clear errors instead of scipy tracebacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from core.data.errors import AnnotationError
from core.data.tables import RawRows

__all__ = ["load_mat", "read_class_names", "read_annotations"]

MAX_ANNOTATION_BYTES = 64 * 1024 * 1024
"""Annotation files are < 2 MB; anything far larger is not one, and is not loaded into memory."""

BOX_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")


def load_mat(path: Path) -> dict:
    """``scipy.io.loadmat`` with ``squeeze_me``; any failure becomes an :class:`AnnotationError`."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise AnnotationError(f"{path}: cannot be read ({err.strerror or err})") from err
    if size > MAX_ANNOTATION_BYTES:
        raise AnnotationError(f"{path}: {size:,} bytes is far too large for a Stanford Cars annotation file; "
                              "replace it with the original from the devkit")
    try:
        return scipy.io.loadmat(path, squeeze_me=True)
    except Exception as err:  # noqa: BLE001 - scipy raises ValueError, TypeError, OSError... on bad files
        raise AnnotationError(
            f"{path}: not a readable MATLAB annotation file ({type(err).__name__}: {err}); "
            "download the Stanford Cars devkit again"
        ) from err


def _field(path: Path, mat: dict, key: str) -> np.ndarray:
    if key not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise AnnotationError(f"{path}: has no {key!r} variable (found {found}); is it the right file?")
    return np.atleast_1d(mat[key])


def read_class_names(path: Path, mat: dict | None = None) -> tuple[str, ...]:
    """The ``class_names`` cell array of ``cars_meta.mat`` or ``cars_annos.mat``, in class order."""
    names = _field(path, load_mat(path) if mat is None else mat, "class_names")
    result = tuple(str(name).strip() for name in names.ravel())
    if not result or any(not name for name in result):
        raise AnnotationError(f"{path}: 'class_names' is empty or has blank names")
    return result


def _column(path: Path, annotations: np.ndarray, name: str, dtype) -> np.ndarray:
    try:
        return np.asarray(annotations[name], dtype=dtype).reshape(-1)
    except (ValueError, TypeError) as err:
        raise AnnotationError(f"{path}: column {name!r} has values that are not numbers ({err})") from err


def read_annotations(path: Path, *, fname_fields: tuple[str, ...] = ("fname",),
                     require_class: bool = False, mat: dict | None = None) -> tuple[RawRows, dict]:
    """Rows of an ``annotations`` struct array (``cars_*_annos*.mat``, ``cars_annos.mat``).

    Returns the rows and the other per-row columns by name (e.g. ``test`` of ``cars_annos.mat``).
    ``classes`` is None when the file has no ``class`` column (the devkit's unlabelled test file).
    """
    mat = load_mat(path) if mat is None else mat
    annotations = _field(path, mat, "annotations")
    names = annotations.dtype.names or ()
    fname_field = next((f for f in fname_fields if f in names), None)
    missing = [f for f in BOX_FIELDS if f not in names] + ([] if fname_field else [fname_fields[0]])
    if require_class and "class" not in names:
        missing.append("class")
    if missing:
        raise AnnotationError(f"{path}: 'annotations' lacks the fields {missing} (it has {list(names)})")
    boxes = np.stack([_column(path, annotations, f, np.float64) for f in BOX_FIELDS], axis=1)
    classes = _column(path, annotations, "class", np.float64) if "class" in names else None
    fnames = [str(f) for f in annotations[fname_field].reshape(-1)]
    extra = {f: annotations[f].reshape(-1) for f in names if f not in (*BOX_FIELDS, "class", fname_field)}
    return RawRows(fnames, boxes, classes), extra
