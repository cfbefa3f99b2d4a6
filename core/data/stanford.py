"""Stanford Cars folders annotated with MATLAB files: the devkit layouts (1, 2) and ``car_ims`` (4).

Layout 1 — original / torchvision::

    cars_train/00001.jpg …   cars_test/00001.jpg …   devkit/cars_meta.mat   devkit/cars_train_annos.mat
    cars_test_annos_withlabels.mat   (test classes; at the root or in devkit/)

Layout 2 — the common Kaggle mirror: the same with ``cars_train/cars_train/``, ``cars_test/cars_test/``
(its devkit may sit in ``car_devkit/devkit/`` and the labelled test file be named
``cars_test_annos_withlabels (1).mat``). Without a labelled test file the test split is read from the
devkit's ``cars_test_annos.mat``, which has boxes but no classes.

Layout 4 — ``car_ims/000001.jpg …`` with ``cars_annos.mat``: all 16,185 photos in one table whose
``relative_im_path`` reads ``car_ims/000001.jpg`` and whose ``test`` flag picks the split.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from core.data.dataset import Dataset, DatasetSummary, folder_split
from core.data.errors import AnnotationError
from core.data.folders import PhotoLocator, first_existing
from core.data.matfiles import load_mat, read_annotations, read_class_names
from core.data.tables import build_table

__all__ = ["find_devkit", "is_devkit_layout", "open_devkit", "is_car_ims_layout", "open_car_ims"]

SPLITS = ("train", "test")


def find_devkit(root: Path) -> Path | None:
    """The folder holding ``cars_meta.mat``: ``devkit/`` or the Kaggle mirror's ``car_devkit/devkit/``."""
    return first_existing([root / "devkit", root / "car_devkit" / "devkit"])


def is_devkit_layout(root: Path) -> bool:
    devkit = find_devkit(root)
    return devkit is not None and (devkit / "cars_meta.mat").is_file()


def _photo_folder(root: Path, split: str) -> tuple[Path, bool]:
    """``cars_<split>/cars_<split>/`` when nested (Kaggle), else ``cars_<split>/``; and whether nested."""
    outer = root / f"cars_{split}"
    inner = outer / f"cars_{split}"
    return (inner, True) if inner.is_dir() else (outer, False)


def _test_annotations(root: Path, devkit: Path) -> tuple[Path | None, bool]:
    """The test annotation file and whether it has classes (the labelled file is preferred)."""
    names = ["cars_test_annos_withlabels.mat", "cars_test_annos_withlabels (1).mat"]
    labelled = first_existing([folder / name for name in names for folder in (root, devkit)])
    if labelled is not None:
        return labelled, True
    unlabelled = devkit / "cars_test_annos.mat"
    return (unlabelled, False) if unlabelled.is_file() else (None, False)


def open_devkit(root: Path) -> Dataset:
    """Open layout 1 or 2 (see module docstring); annotation rows without a photo are counted."""
    devkit = find_devkit(root)
    if devkit is None:
        raise AnnotationError(f"{root}: no devkit/ folder with cars_meta.mat")
    class_names = read_class_names(devkit / "cars_meta.mat")
    sources = {"train": (devkit / "cars_train_annos.mat", True), "test": _test_annotations(root, devkit)}
    splits, summaries, notes, nested_any = {}, [], [], False
    for split in SPLITS:
        annotation_file, labelled = sources[split]
        if annotation_file is None or not annotation_file.is_file():
            notes.append(f"no {split} annotations (looked for {sources[split][0] or 'cars_test_annos*.mat'})")
            continue
        rows, _ = read_annotations(annotation_file, require_class=labelled)
        folder, nested = _photo_folder(root, split)
        nested_any |= nested
        locator = PhotoLocator(folder)
        table, summary = build_table(split, rows, locator, class_names)
        summaries.append(replace(summary, unannotated=max(locator.photos_on_disk() - summary.found, 0),
                                 photo_folder=str(folder.relative_to(root))))
        splits[split] = folder_split(table)
        if not folder.is_dir():
            notes.append(f"{split} photos folder {folder} does not exist")
        if split == "test" and not labelled:
            notes.append("test classes unknown: put cars_test_annos_withlabels.mat in the folder")
    layout = "devkit (Kaggle nested folders)" if nested_any else "devkit (original / torchvision)"
    summary = DatasetSummary("stanford-folder", layout, str(root), len(class_names), tuple(summaries),
                             tuple(notes))
    return Dataset(summary, class_names, splits)


def is_car_ims_layout(root: Path) -> bool:
    return (root / "cars_annos.mat").is_file()


def open_car_ims(root: Path) -> Dataset:
    """Open layout 4: ``cars_annos.mat`` (one table, a ``test`` flag per row) and ``car_ims/``."""
    path = root / "cars_annos.mat"
    mat = load_mat(path)
    class_names = read_class_names(path, mat)
    rows, extra = read_annotations(path, fname_fields=("relative_im_path", "fname"), require_class=True,
                                   mat=mat)
    if "test" not in extra:
        raise AnnotationError(f"{path}: 'annotations' lacks the 'test' flag that tells train from test rows")
    try:
        is_test = np.asarray(extra["test"], dtype=np.float64) != 0
    except (TypeError, ValueError) as err:
        raise AnnotationError(f"{path}: the 'test' flags are not numbers ({err})") from err
    locator = PhotoLocator(root)  # relative_im_path already starts with car_ims/
    splits, summaries = {}, []
    for split, mask in (("train", ~is_test), ("test", is_test)):
        table, summary = build_table(split, rows.take(mask), locator, class_names)
        splits[split] = folder_split(table)
        summaries.append(replace(summary, photo_folder="car_ims"))
    notes = []
    unannotated = locator.photos_on_disk() - sum(s.found for s in summaries)
    if unannotated > 0:
        notes.append(f"{unannotated} photo files without annotation (ignored)")
    if not (root / "car_ims").is_dir():
        notes.append(f"photos folder {root / 'car_ims'} does not exist")
    summary = DatasetSummary("stanford-folder", "car_ims (cars_annos.mat)", str(root), len(class_names),
                             tuple(summaries), tuple(notes))
    return Dataset(summary, class_names, splits)
