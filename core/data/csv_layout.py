"""Stanford Cars with CSV annotations (layout 3), as several Kaggle mirrors ship it.

Files at the folder's root::

    anno_train.csv, anno_test.csv   image,x1,y1,x2,y2,class   (1-based inclusive boxes, 1-based classes)
    names.csv                       class_id,class_name  or just one class name per line

Each may have a header row or not (detected from the first row). Photos sit in a flat folder or in one
subfolder per class name (``train/Audi R8 Coupe 2012/00001.jpg``); the folder is the first that exists of
``cars_<split>/cars_<split>``, ``cars_<split>``, ``car_data/car_data/<split>``, ``car_data/<split>``,
``<split>``. Photos are matched by file name, so renamed class folders (``Ram C-V …``) do not matter.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.data.dataset import Dataset, DatasetSummary, folder_split
from core.data.errors import AnnotationError
from core.data.folders import PhotoLocator, first_existing
from core.data.matfiles import MAX_ANNOTATION_BYTES
from core.data.tables import RawRows, build_table

__all__ = ["is_csv_layout", "open_csv", "read_names_csv", "read_annotations_csv", "photo_folder_candidates"]

_HEADER_WORDS = {"class_id", "id", "index", "class", "classes", "class_name", "class_names", "name",
                 "names", "label", "labels"}


def is_csv_layout(root: Path) -> bool:
    annotated = any((root / f"anno_{split}.csv").is_file() for split in ("train", "test"))
    return annotated and (root / "names.csv").is_file()


def _read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank CSV rows with their 1-based line numbers; unreadable files raise AnnotationError."""
    try:
        if path.stat().st_size > MAX_ANNOTATION_BYTES:
            raise AnnotationError(f"{path}: far too large for a Stanford Cars annotation file")
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return [(n, [cell.strip() for cell in row]) for n, row in enumerate(csv.reader(handle), 1)
                    if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise AnnotationError(f"{path}: not a readable CSV file ({err})") from err


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _without_names_header(rows: list[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
    """Drop a header: a known column name, or a first row without the integer id all later rows have."""
    if not rows:
        return rows
    first = rows[0][1][0]
    ids_below = len(rows) > 1 and all(_is_int(cells[0]) for _, cells in rows[1:])
    if first.lower() in _HEADER_WORDS or (ids_below and not _is_int(first)):
        return rows[1:]
    return rows


def read_names_csv(path: Path) -> tuple[str, ...]:
    """Class names in class order from ``names.csv`` (``id,name`` rows or bare names, header optional)."""
    rows = _without_names_header(_read_rows(path))
    if not rows:
        raise AnnotationError(f"{path}: no class names")
    if all(_is_int(cells[0]) and len(cells) >= 2 for _, cells in rows):
        ids = [int(cells[0]) for _, cells in rows]
        if sorted(ids) != list(range(1, len(ids) + 1)):
            raise AnnotationError(
                f"{path}: class ids must be 1..{len(ids)} (1-based), got {min(ids)}..{max(ids)}")
        by_id = {int(cells[0]): ",".join(cells[1:]) for _, cells in rows}
        return tuple(by_id[i] for i in range(1, len(ids) + 1))
    return tuple(",".join(cells) for _, cells in rows)


def read_annotations_csv(path: Path) -> RawRows:
    """Rows ``image,x1,y1,x2,y2,class`` of ``anno_<split>.csv``; a header row is skipped when present."""
    rows = _read_rows(path)
    if rows and not all(_is_number(cell) for cell in rows[0][1][1:]):
        rows = rows[1:]  # a header such as image_name,x_min,y_min,x_max,y_max,label
    fnames, numbers = [], []
    for line, cells in rows:
        if len(cells) != 6:
            raise AnnotationError(
                f"{path}, line {line}: expected 6 columns image,x1,y1,x2,y2,class, got {len(cells)}: {cells}")
        try:
            numbers.append([float(value) for value in cells[1:]])
        except ValueError as err:
            raise AnnotationError(f"{path}, line {line}: box and class must be numbers ({err})") from err
        fnames.append(cells[0])
    values = np.asarray(numbers, dtype=np.float64).reshape(-1, 5)
    return RawRows(fnames, values[:, :4], values[:, 4])


def photo_folder_candidates(root: Path, split: str) -> list[Path]:
    return [root / f"cars_{split}" / f"cars_{split}", root / f"cars_{split}",
            root / "car_data" / "car_data" / split, root / "car_data" / split, root / split]


def open_csv(root: Path) -> Dataset:
    """Open layout 3; annotation rows without a photo are counted, never fatal."""
    class_names = read_names_csv(root / "names.csv")
    splits, summaries, notes, subfolders = {}, [], [], False
    for split in ("train", "test"):
        annotation_file = root / f"anno_{split}.csv"
        if not annotation_file.is_file():
            notes.append(f"no {split} annotations ({annotation_file.name} absent)")
            continue
        rows = read_annotations_csv(annotation_file)
        folder = first_existing(photo_folder_candidates(root, split))
        if folder is None:
            names = ", ".join(str(p.relative_to(root)) for p in photo_folder_candidates(root, split))
            notes.append(f"no {split} photos folder (looked for {names})")
            folder = root / f"cars_{split}"
        locator = PhotoLocator(folder, class_subfolders=True)
        table, summary = build_table(split, rows, locator, class_names)
        subfolders |= locator.uses_subfolders()
        summaries.append(replace(summary, unannotated=max(locator.photos_on_disk() - summary.found, 0),
                                 photo_folder=str(folder.relative_to(root))))
        splits[split] = folder_split(table)
    layout = "csv (class subfolders)" if subfolders else "csv (flat folders)"
    summary = DatasetSummary("stanford-folder", layout, str(root), len(class_names), tuple(summaries),
                             tuple(notes))
    return Dataset(summary, class_names, splits)
