"""Bad dataset input: unknown folders, unreadable annotations, missing photos, unsafe names, bad classes.

Small synthetic devkit folders are written here with ``scipy.io.savemat`` (3 classes, photos made with
Pillow), so each expected count is known by construction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from core.data import (
    AnnotationError, DatasetError, DatasetNotFoundError, UnknownLayoutError, open_dataset, open_folder,
)
from core.images import ImageDecodeError

CLASSES = ("Alpha Coupe 2012", "Beta Sedan 2010", "Gamma SUV 2007")


def write_annos(path: Path, rows: list[tuple], with_class: bool = True) -> None:
    """rows: (fname, x1, y1, x2, y2, class) in devkit convention (1-based inclusive, 1-based class)."""
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"] + (["class"] if with_class else []) + ["fname"]
    table = np.empty((1, len(rows)), dtype=[(f, "O") for f in fields])
    for i, (fname, x1, y1, x2, y2, cls) in enumerate(rows):
        values = [x1, y1, x2, y2] + ([cls] if with_class else []) + [fname]
        table[0, i] = tuple(values)
    scipy.io.savemat(path, {"annotations": table})


def make_devkit(root: Path, train_rows: list[tuple], photos: dict[str, tuple[int, int]]) -> Path:
    """A layout-1 folder: devkit mats for ``train_rows`` and solid-colour JPEGs of (width, height)."""
    (root / "devkit").mkdir(parents=True)
    scipy.io.savemat(root / "devkit" / "cars_meta.mat",
                     {"class_names": np.array(CLASSES, dtype=object).reshape(1, -1)})
    write_annos(root / "devkit" / "cars_train_annos.mat", train_rows)
    (root / "cars_train").mkdir()
    for name, size in photos.items():
        Image.new("RGB", size, (200, 30, 30)).save(root / "cars_train" / name, "JPEG")
    return root


def test_rows_with_missing_unsafe_or_bad_fields_are_counted(tmp_path):
    root = tmp_path / "cars"
    secret = tmp_path / "outside.jpg"  # exists, but outside the dataset folder: must never be read
    Image.new("RGB", (10, 10)).save(secret, "JPEG")
    rows = [
        ("00001.jpg", 1, 1, 10, 20, 1),          # fine → box (0, 0, 10, 20), label 0
        ("00002.jpg", 5, 5, 8, 8, 4),            # class 4 of 3 → kept without label
        ("00003.jpg", 5, 5, 8, 8, 0),            # class 0 (labels are 1-based) → kept without label
        ("00004.jpg", 30, 5, 10, 8, 2),          # x1 > x2 → kept without box
        ("00005.jpg", 1, 1, 4, 4, 3),            # photo absent → skipped
        ("../outside.jpg", 1, 1, 4, 4, 1),       # escapes the folder → skipped
        (str(secret), 1, 1, 4, 4, 1),            # absolute path → skipped
        ("sub/../../outside.jpg", 1, 1, 4, 4, 1),
    ]
    photos = {f"0000{i}.jpg": (40, 30) for i in range(1, 5)}
    make_devkit(root, rows, photos)
    Image.new("RGB", (5, 5)).save(root / "cars_train" / "extra.png")  # a photo nobody annotated
    ds = open_folder(root)
    train = ds.summary.splits[0]
    assert (train.annotated, train.found, train.missing, train.unsafe) == (8, 4, 1, 3)
    assert (train.bad_labels, train.bad_boxes, train.unannotated) == (2, 1, 1)
    split = ds["train"]
    records = [split[i] for i in range(len(split))]
    assert [r.id for r in records] == [f"stanford:train/0000{i}.jpg" for i in range(1, 5)]
    assert [r.label for r in records] == [0, None, None, 1]
    assert [r.class_name for r in records] == [CLASSES[0], None, None, CLASSES[1]]
    assert records[0].box == (0.0, 0.0, 10.0, 20.0) and records[3].box is None
    assert all(p.parent == root / "cars_train" for p in split.annotations.paths)
    text = ds.describe()
    assert "1 annotated photos missing (skipped)" in text
    assert "3 rows with a file name outside the folder (skipped)" in text
    assert "2 rows with a class outside the class list (kept without label)" in text


def test_corrupt_photo_fails_only_when_loaded_with_a_clear_message(tmp_path):
    root = make_devkit(tmp_path / "cars", [("00001.jpg", 1, 1, 5, 5, 1), ("00002.jpg", 1, 1, 5, 5, 2)],
                       {"00001.jpg": (8, 8)})
    (root / "cars_train" / "00002.jpg").write_bytes(b"<html>403 Forbidden</html>")
    split = open_folder(root)["train"]
    assert len(split) == 2 and split[0].image.shape == (8, 8, 3)
    with pytest.raises(ImageDecodeError, match=r"00002\.jpg: is an HTML page"):
        split[1]
    with pytest.raises(IndexError, match="index 2 out of range for the 'train' split of 2 photos"):
        split[2]
    assert split[-2].id == "stanford:train/00001.jpg"


def test_folder_in_no_known_layout(tmp_path):
    (tmp_path / "holiday.jpg").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnknownLayoutError) as info:
        open_folder(tmp_path)
    message = str(info.value)
    assert "not a Stanford Cars folder in any known layout" in message
    assert "holiday.jpg, notes.txt" in message and "devkit/cars_meta.mat" in message


def test_unknown_layout_points_one_level_down(tmp_path):
    make_devkit(tmp_path / "stanford_cars", [("00001.jpg", 1, 1, 5, 5, 1)], {"00001.jpg": (8, 8)})
    with pytest.raises(UnknownLayoutError, match="one level down: .*stanford_cars"):
        open_folder(tmp_path)


def test_csv_annotations_without_names_csv_say_so(tmp_path):
    (tmp_path / "anno_train.csv").write_text("00001.jpg,1,1,5,5,1\n")
    with pytest.raises(UnknownLayoutError, match="names.csv .* is missing"):
        open_folder(tmp_path)


def test_missing_folder_file_and_unset_environment(tmp_path, monkeypatch):
    with pytest.raises(DatasetNotFoundError, match=r"nowhere: no such folder\. Download Stanford Cars"):
        open_dataset(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DatasetNotFoundError, match="is a file, not a folder"):
        open_dataset(tmp_path / "file.txt")
    monkeypatch.delenv("CARS196_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match="no dataset given and CARS196_DIR is not set"):
        open_dataset(None)
    with pytest.raises(DatasetError, match="only tfds:cars196 is supported"):
        open_dataset("tfds:mnist")


def test_environment_variable_is_used_when_no_spec(tmp_path, monkeypatch):
    root = make_devkit(tmp_path / "cars", [("00001.jpg", 1, 1, 5, 5, 1)], {"00001.jpg": (8, 8)})
    monkeypatch.setenv("CARS196_DIR", str(root))
    assert open_dataset().summary.location == str(root)
    assert open_dataset("  ").summary.photos == 1  # an empty UI field means "use CARS196_DIR"


def test_garbage_mat_file_does_not_parse(tmp_path):
    root = make_devkit(tmp_path / "cars", [("00001.jpg", 1, 1, 5, 5, 1)], {"00001.jpg": (8, 8)})
    (root / "devkit" / "cars_meta.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00\xff" * 100)
    with pytest.raises(AnnotationError, match=r"cars_meta\.mat: not a readable MATLAB annotation file"):
        open_folder(root)


def test_mat_file_without_the_expected_variables(tmp_path):
    root = make_devkit(tmp_path / "cars", [("00001.jpg", 1, 1, 5, 5, 1)], {"00001.jpg": (8, 8)})
    scipy.io.savemat(root / "devkit" / "cars_train_annos.mat", {"boxes": np.zeros((2, 4))})
    with pytest.raises(AnnotationError, match=r"has no 'annotations' variable \(found \['boxes'\]\)"):
        open_folder(root)
    table = np.empty((1, 1), dtype=[("bbox_x1", "O"), ("fname", "O")])
    table[0, 0] = (1, "00001.jpg")
    scipy.io.savemat(root / "devkit" / "cars_train_annos.mat", {"annotations": table})
    missing = r"lacks the fields \['bbox_y1', 'bbox_x2', 'bbox_y2', 'class'\]"
    with pytest.raises(AnnotationError, match=missing):
        open_folder(root)


def _csv_folder(root: Path, anno: str, names: str = "1,A\n2,B\n") -> Path:
    root.mkdir()
    (root / "anno_train.csv").write_text(anno)
    (root / "names.csv").write_text(names)
    return root


def test_csv_with_wrong_columns_or_text_does_not_parse(tmp_path):
    root = _csv_folder(tmp_path / "a", "00001.jpg,1,1,5,5,1\n00002.jpg,1,1,5\n")
    with pytest.raises(AnnotationError, match=r"anno_train\.csv, line 2: expected 6 columns .* got 4"):
        open_folder(root)
    root = _csv_folder(tmp_path / "b", "00001.jpg,1,1,5,5,1\n00002.jpg,1,one,5,5,1\n")
    with pytest.raises(AnnotationError, match=r"line 2: box and class must be numbers"):
        open_folder(root)


def test_csv_class_ids_must_be_one_based(tmp_path):
    root = _csv_folder(tmp_path / "c", "00001.jpg,1,1,5,5,1\n", names="0,A\n1,B\n")
    with pytest.raises(AnnotationError, match=r"class ids must be 1\.\.2 \(1-based\), got 0\.\.1"):
        open_folder(root)


def test_csv_class_index_out_of_range_keeps_the_photo_without_label(tmp_path):
    root = _csv_folder(tmp_path / "d", "00001.jpg,1,1,5,5,3\n00002.jpg,1,1,5,5,2\n00003.jpg,1,1,5,5,0\n")
    (root / "cars_train").mkdir()
    for name in ("00001.jpg", "00002.jpg", "00003.jpg"):
        Image.new("RGB", (6, 6)).save(root / "cars_train" / name, "JPEG")
    ds = open_folder(root)
    assert ds.summary.splits[0].bad_labels == 2
    assert ds["train"].annotations.labels.tolist() == [-1, 1, -1]
    assert ds["train"][1].class_name == "B" and ds["train"][0].label is None


def test_binary_csv_does_not_parse(tmp_path):
    root = _csv_folder(tmp_path / "e", "")
    (root / "anno_train.csv").write_bytes(b"\xff\xfe\x00garbage\x80\x81")
    with pytest.raises(AnnotationError, match=r"anno_train\.csv: not a readable CSV file"):
        open_folder(root)
