"""Every Stanford Cars layout, built in temporary folders from the real shared copy, loads the same data.

Layout 1 is the shared folder itself; layouts 2, 3 (flat and class subfolders, with and without header
rows) and 4 are built here with symbolic links to the shared photos, so nothing is copied into the repo.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from core.data import UNKNOWN_LABEL, open_dataset, open_folder
from core.data.matfiles import read_annotations, read_class_names
from tests.conftest import SHARED, SHARED_CARS, require_shared

SHARED_CSV = SHARED / "data" / "stanford_cars_csv"
TRAIN_PHOTOS = 164
TRAIN_ROWS, TEST_ROWS = 8144, 8041
# 00028.jpg: devkit row (45, 115, 585, 382), class 86 "Dodge Ram Pickup 3500 Crew Cab 2010", photo 620×412
DODGE_BOX, DODGE_LABEL, DODGE_NAME = (44.0, 114.0, 585.0, 382.0), 85, "Dodge Ram Pickup 3500 Crew Cab 2010"


@pytest.fixture(scope="module")
def layout1() -> Path:
    return require_shared(SHARED_CARS)


@pytest.fixture(scope="module")
def reference(layout1):
    """The layout-1 train table, which every other layout must reproduce."""
    return open_folder(layout1)["train"].annotations


def _link_photos(target: Path, names=None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for photo in sorted((SHARED_CARS / "cars_train").iterdir()):
        if names is None or photo.name in names:
            (target / photo.name).symlink_to(photo)


def _same_rows(table, reference, rename=lambda photo_id: photo_id) -> None:
    """Same photos, labels and boxes (by id) as the reference table."""
    ids = [rename(i) for i in reference.ids]
    assert sorted(table.ids) == sorted(ids)
    order = {photo_id: k for k, photo_id in enumerate(table.ids)}
    take = [order[i] for i in ids]
    assert (table.labels[take] == reference.labels).all()
    assert np.array_equal(table.boxes[take], reference.boxes, equal_nan=True)


# --- layout 1: the shared folder (original / torchvision) ----------------------------------------------

def test_layout1_original_devkit_loads_the_real_partial_copy(layout1):
    ds = open_dataset(layout1)
    summary = ds.summary
    assert (summary.source, summary.layout, summary.num_classes) == (
        "stanford-folder", "devkit (original / torchvision)", 196)
    train, test = summary.splits
    assert (train.annotated, train.found, train.missing, train.unannotated) == (
        TRAIN_ROWS, TRAIN_PHOTOS, TRAIN_ROWS - TRAIN_PHOTOS, 0)
    assert (test.annotated, test.found, test.missing, test.labelled) == (TEST_ROWS, 0, TEST_ROWS, True)
    assert (train.bad_labels, train.bad_boxes, train.unsafe) == (0, 0, 0)
    assert len(ds["train"]) == TRAIN_PHOTOS and len(ds["test"]) == 0
    assert "164 photos ready of 8144 annotated" in ds.describe()


def test_layout1_record_has_converted_box_and_zero_based_label(layout1):
    split = open_folder(layout1)["train"]
    index = split.annotations.ids.index("stanford:train/00028.jpg")
    record = split[index]
    assert record.image.shape == (412, 620, 3) and record.image.dtype == np.uint8
    assert (record.label, record.class_name, record.box, record.split) == (
        DODGE_LABEL, DODGE_NAME, DODGE_BOX, "train")
    row = split.annotations.row(index)
    assert row.path == layout1 / "cars_train" / "00028.jpg" and row.box == DODGE_BOX


def test_box_touching_the_photo_edge_ends_exactly_at_its_width(layout1):
    # 04141.jpg is 701 px wide; devkit box (5, 1, 701, 350) covers up to the last column (inclusive 701)
    split = open_folder(layout1)["train"]
    record = split[split.annotations.ids.index("stanford:train/04141.jpg")]
    assert record.box == (4.0, 0.0, 701.0, 350.0)
    assert record.image.shape[1] == 701 and record.label == 183


def test_annotation_tables_of_the_full_devkit_load_well_under_a_second(layout1):
    open_folder(layout1)  # warm the file system cache and imports
    start = time.perf_counter()
    ds = open_folder(layout1)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"opening 8,144 + 8,041 annotation rows took {elapsed:.2f} s"
    assert ds.summary.splits[0].annotated + ds.summary.splits[1].annotated == TRAIN_ROWS + TEST_ROWS


def test_filter_by_class_without_decoding(layout1, reference):
    indices = reference.indices_of_class(DODGE_LABEL)
    assert reference.ids.index("stanford:train/00028.jpg") in indices.tolist()
    assert all(reference.row(int(i)).class_name == DODGE_NAME for i in indices)
    assert (reference.labels != UNKNOWN_LABEL).all()
    with pytest.raises(ValueError, match="read-only"):
        reference.labels[0] = 5  # cached tables are shared: they cannot be changed by accident


# --- layout 2: Kaggle mirror with nested folders ---------------------------------------------------------

def _make_photo(path: Path, size=(300, 200)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 150)).save(path, "JPEG")


def test_layout2_kaggle_nested_folders(tmp_path, reference):
    root = tmp_path / "stanford-cars-dataset"
    _link_photos(root / "cars_train" / "cars_train")
    devkit = root / "car_devkit" / "devkit"
    devkit.mkdir(parents=True)
    for name in ("cars_meta.mat", "cars_train_annos.mat", "cars_test_annos.mat"):
        (devkit / name).symlink_to(SHARED_CARS / "devkit" / name)
    (root / "cars_test_annos_withlabels (1).mat").symlink_to(SHARED_CARS / "cars_test_annos_withlabels.mat")
    for name in ("00001.jpg", "00002.jpg"):
        _make_photo(root / "cars_test" / "cars_test" / name)
    ds = open_dataset(str(root))
    assert ds.summary.layout == "devkit (Kaggle nested folders)"
    train, test = ds.summary.splits
    assert (train.found, train.missing, test.found, test.missing) == (164, 7980, 2, TEST_ROWS - 2)
    _same_rows(ds["train"].annotations, reference)
    first = ds["test"][0]
    # test 00001.jpg: devkit box (30, 52, 246, 147), class 181
    assert (first.id, first.label, first.box) == ("stanford:test/00001.jpg", 180, (29.0, 51.0, 246.0, 147.0))


def test_devkit_without_labelled_test_file_reads_test_boxes_without_classes(tmp_path):
    root = tmp_path / "cars"
    shutil.copytree(require_shared(SHARED_CARS) / "devkit", root / "devkit")
    _make_photo(root / "cars_test" / "00001.jpg")
    ds = open_folder(root)
    test = ds.summary.splits[1]
    assert (test.found, test.labelled) == (1, False)
    record = ds["test"][0]
    assert (record.label, record.class_name, record.box) == (None, None, (29.0, 51.0, 246.0, 147.0))
    assert any("cars_test_annos_withlabels.mat" in note for note in ds.summary.notes)


# --- layout 3: CSV annotations -----------------------------------------------------------------------

def _write_csv_layout(root: Path, *, header: bool, class_folders: bool, names_only: bool) -> None:
    source = require_shared(SHARED_CSV)
    root.mkdir()
    for split in ("train", "test"):
        lines = (source / f"anno_{split}.csv").read_text().splitlines()
        (root / f"anno_{split}.csv").write_text("\n".join(lines if header else lines[1:]) + "\n")
    names = [line.split(",", 1) for line in (source / "names.csv").read_text().splitlines()[1:]]
    rows = [name for _, name in names] if names_only else [f"{i},{name}" for i, name in names]
    head = ["class_name" if names_only else "class_id,class_name"] if header else []
    (root / "names.csv").write_text("\n".join(head + rows) + "\n")
    if not class_folders:
        _link_photos(root / "cars_train")
        return
    labels = {}
    for line in (source / "anno_train.csv").read_text().splitlines()[1:]:
        fname, *_, label = line.split(",")
        labels[fname] = names[int(label) - 1][1].replace("/", "-")
    for photo in sorted((SHARED_CARS / "cars_train").iterdir()):
        target = root / "car_data" / "car_data" / "train" / labels[photo.name] / photo.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(photo)


@pytest.mark.parametrize("header", [True, False], ids=["header", "no-header"])
@pytest.mark.parametrize("class_folders", [False, True], ids=["flat", "class-folders"])
@pytest.mark.parametrize("names_only", [False, True], ids=["id-name", "names-only"])
def test_layout3_csv(tmp_path, reference, header, class_folders, names_only):
    root = tmp_path / "csv"
    _write_csv_layout(root, header=header, class_folders=class_folders, names_only=names_only)
    ds = open_folder(root)
    assert ds.summary.layout == ("csv (class subfolders)" if class_folders else "csv (flat folders)")
    assert ds.summary.num_classes == 196 and ds.class_names[85] == DODGE_NAME
    train, test = ds.summary.splits
    assert (train.annotated, train.found, train.missing) == (TRAIN_ROWS, 164, 7980)
    assert (test.annotated, test.found) == (TEST_ROWS, 0)
    _same_rows(ds["train"].annotations, reference)
    record = ds["train"][ds["train"].annotations.ids.index("stanford:train/00028.jpg")]
    assert (record.label, record.class_name, record.box) == (DODGE_LABEL, DODGE_NAME, DODGE_BOX)


def test_shared_csv_folder_has_annotations_but_no_photos():
    ds = open_folder(require_shared(SHARED_CSV))
    assert ds.summary.layout == "csv (flat folders)" and ds.summary.photos == 0
    assert [s.missing for s in ds.summary.splits] == [TRAIN_ROWS, TEST_ROWS]
    assert any("no train photos folder" in note for note in ds.summary.notes)


# --- layout 4: car_ims/ + cars_annos.mat -----------------------------------------------------------

def _write_cars_annos(path: Path, test_rows: int = 300) -> None:
    """All train rows (photo n → car_ims/0nnnnn.jpg) and the first test rows (numbered after train)."""
    train, _ = read_annotations(SHARED_CARS / "devkit" / "cars_train_annos.mat", require_class=True)
    test, _ = read_annotations(SHARED_CARS / "cars_test_annos_withlabels.mat", require_class=True)
    n = TRAIN_ROWS + test_rows
    box_fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"]
    columns = ["relative_im_path", *box_fields, "class", "test"]
    table = np.empty((1, n), dtype=[(name, "O") for name in columns])
    table["relative_im_path"][0] = [f"car_ims/{i + 1:06d}.jpg" for i in range(n)]
    boxes = np.vstack([train.boxes, test.boxes[:test_rows]]).astype(np.uint16)
    for k, field in enumerate(box_fields):
        table[field][0] = list(boxes[:, k])
    table["class"][0] = list(np.concatenate([train.classes, test.classes[:test_rows]]).astype(np.uint8))
    table["test"][0] = [np.uint8(0)] * TRAIN_ROWS + [np.uint8(1)] * test_rows
    names = np.array(read_class_names(SHARED_CARS / "devkit" / "cars_meta.mat"), dtype=object)
    scipy.io.savemat(path, {"annotations": table, "class_names": names.reshape(1, -1)})


def test_layout4_car_ims_with_cars_annos_mat(tmp_path, reference):
    root = tmp_path / "car_ims_layout"
    (root / "car_ims").mkdir(parents=True)
    for photo in sorted((require_shared(SHARED_CARS) / "cars_train").iterdir()):
        (root / "car_ims" / f"0{photo.name}").symlink_to(photo)  # 00028.jpg is row 28 → 000028.jpg
    _make_photo(root / "car_ims" / f"{TRAIN_ROWS + 1:06d}.jpg")  # the first test row
    _write_cars_annos(root / "cars_annos.mat")
    ds = open_folder(root)
    assert ds.summary.layout == "car_ims (cars_annos.mat)" and ds.summary.num_classes == 196
    train, test = ds.summary.splits
    assert (train.annotated, train.found, train.missing) == (TRAIN_ROWS, 164, 7980)
    assert (test.annotated, test.found, test.missing) == (300, 1, 299)
    _same_rows(ds["train"].annotations, reference, rename=lambda i: i.replace("train/", "train/0"))
    assert ds["test"][0].id == "stanford:test/008145.jpg" and ds["test"][0].label == 180
