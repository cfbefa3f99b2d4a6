"""The tfds cars196 source, offline: unprepared data fails at once, mock data, and a tiny real preparation."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from core.data import DatasetNotFoundError, StreamStats, open_dataset, stream_records
from core.data.tfds_source import MANUAL_FILES, valid_tfds_box
from tests.conftest import SHARED_CARS, require_shared


def test_unprepared_tfds_fails_at_once_with_what_to_do(tmp_path):
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as info:
        open_dataset("tfds:cars196", data_dir=tmp_path)
    assert time.perf_counter() - start < 10  # tfds.load would retry dead URLs for ~200 s
    message = str(info.value)
    assert f"tfds cars196 is not prepared in {tmp_path}" in message
    assert "CARS196_DIR" in message and str(tmp_path / "downloads" / "manual") in message


def test_tfds_data_dir_environment_variable_is_honoured(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds-home"))
    with pytest.raises(DatasetNotFoundError, match=f"not prepared in {tmp_path / 'tfds-home'}"):
        open_dataset("TFDS:cars196")


def test_preparing_without_the_manual_files_is_refused_before_any_download(tmp_path):
    (tmp_path / "downloads" / "manual").mkdir(parents=True)
    (tmp_path / "downloads" / "manual" / "car_devkit.tgz").write_bytes(b"placeholder")
    with pytest.raises(DatasetNotFoundError) as info:
        open_dataset("tfds:cars196", data_dir=tmp_path, download=True)
    missing = [name for name in MANUAL_FILES if name != "car_devkit.tgz"]
    assert f"{', '.join(missing)} missing from {tmp_path / 'downloads' / 'manual'}" in str(info.value)


@pytest.mark.parametrize(
    ("bbox", "valid"),
    [([0.1, 0.2, 0.5, 0.6], True), ([0.0, 0.0, 1.0, 1.0], True), ([0.6, 0.2, 0.1, 0.5], False),
     ([0.1, 0.2, 0.1, 0.6], False), ([np.nan, 0.2, 0.5, 0.6], False), ([0.1, 0.2, 1.5, 0.6], False)],
)
def test_valid_tfds_box(bbox, valid):
    assert valid_tfds_box(bbox) is valid


def test_mock_data_noise_images_and_invalid_boxes():
    """tfds's own mock: noise images, random labels and random boxes that are often inverted."""
    with tfds.testing.mock_data(num_examples=5):
        ds = open_dataset("tfds:cars196")
        split = ds["train"]
        assert ds.summary.source == "tfds" and ds.summary.num_classes == 196
        assert len(split) == 5 and len(ds["test"]) == 5
        # invalid boxes are kept as records without a box and counted (the mock's seed makes several);
        # pixel boxes need the photo's size, so the cheap tfds table leaves them NaN
        assert ds.summary.splits[0].bad_boxes > 0 and "invalid box" in ds.describe()
        assert np.isnan(split.annotations.boxes).all()
        record = split[3]
        assert record.image.dtype == np.uint8 and record.image.ndim == 3 and record.image.shape[2] == 3
        assert record.id.startswith("tfds:train/") and record.class_name == ds.class_names[record.label]
        stats = StreamStats()
        streamed = list(stream_records(split, stats=stats))
    assert (stats.delivered, stats.skipped) == (5, 0)
    assert any(r.box is None for r in streamed)
    for r in streamed:
        if r.box is not None:
            h, w = r.image.shape[:2]
            assert 0 <= r.box[0] < r.box[2] <= w and 0 <= r.box[1] < r.box[3] <= h


# Hand-made examples: 16×32 (H×W) photos; tfds boxes are (ymin, xmin, ymax, xmax) in [0, 1], here in
# binary fractions so float32 storage is exact: (0.125, 0.25, 0.5, 0.75) → x 0.25·32=8 … y 0.5·16=8.
_BOXES = np.array([[0.125, 0.25, 0.5, 0.75], [0.75, 0.25, 0.125, 0.5], [np.nan, 0, 1, 1], [0, 0, 1, 1]],
                  dtype=np.float32)
_EXPECTED_PIXEL_BOXES = [(8.0, 2.0, 24.0, 8.0), None, None, (0.0, 0.0, 32.0, 16.0)]


def _examples() -> dict:
    images = np.zeros((4, 16, 32, 3), dtype=np.uint8)
    images[:, :, :, 0] = np.arange(4, dtype=np.uint8)[:, None, None] * 50
    return {"image": images, "label": np.array([0, 195, 7, 12], dtype=np.int64), "bbox": _BOXES,
            "id": np.array([b"00001", b"00002", b"00003", b"00004"])}


def _as_dataset(self, split, decoders=None, read_config=None, **kwargs):
    return tf.data.Dataset.from_tensor_slices(_examples())


def _as_data_source(self, split, decoders=None, **kwargs):
    columns = _examples()
    return [{key: value[i] for key, value in columns.items()} for i in range(4)]


def test_mock_data_with_known_examples_converts_and_counts_boxes():
    with tfds.testing.mock_data(num_examples=4, as_dataset_fn=_as_dataset, as_data_source_fn=_as_data_source):
        ds = open_dataset("tfds:cars196")
        split = ds["test"]
        assert split.annotations.ids == tuple(f"tfds:test/0000{i}" for i in range(1, 5))
        assert split.annotations.labels.tolist() == [0, 195, 7, 12]
        assert ds.summary.splits[1].bad_boxes == 2
        records = [split[i] for i in range(4)]
        streamed = list(stream_records(split))
    for got in (records, streamed):
        assert [r.box for r in got] == _EXPECTED_PIXEL_BOXES
        assert [r.image[0, 0, 0] for r in got] == [0, 50, 100, 150]
        assert got[1].class_name == "smart fortwo Convertible 2012" and got[1].label == 195


class _TinyCars196(tfds.image_classification.Cars196, skip_registration=True):
    """cars196 prepared from 4 real shared photos, boxes normalised exactly as the tfds builder does."""

    name = "cars196"  # written where tfds.builder("cars196") looks

    def _split_generators(self, dl_manager):
        from core.data.matfiles import read_annotations

        rows, _ = read_annotations(SHARED_CARS / "devkit" / "cars_train_annos.mat", require_class=True)
        wanted = ["00028.jpg", "00036.jpg", "00081.jpg", "04141.jpg"]
        picked = [rows.fnames.index(name) for name in wanted]
        return {"train": self._examples(rows, picked[:3]), "test": self._examples(rows, picked[3:])}

    def _examples(self, rows, picked):
        from PIL import Image

        for i in picked:
            path = SHARED_CARS / "cars_train" / rows.fnames[i]
            with Image.open(path) as photo:
                width, height = photo.size
            x1, y1, x2, y2 = rows.boxes[i]
            yield rows.fnames[i], {
                "image": str(path), "label": int(rows.classes[i]) - 1, "id": Path(rows.fnames[i]).stem,
                "bbox": tfds.features.BBox(y1 / height, x1 / width, y2 / height, x2 / width),
            }


def test_prepared_tfds_from_real_photos(tmp_path):
    require_shared(SHARED_CARS)
    _TinyCars196(data_dir=str(tmp_path)).download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    ds = open_dataset("tfds:cars196", data_dir=tmp_path)
    assert [s.found for s in ds.summary.splits] == [3, 1]
    train = ds["train"]
    assert sorted(train.annotations.ids) == ["tfds:train/00028", "tfds:train/00036", "tfds:train/00081"]
    dodge = train[train.annotations.ids.index("tfds:train/00028")]  # read through a sliced split
    assert dodge.image.shape == (412, 620, 3) and dodge.label == 85
    # the tfds builder divides the devkit's 1-based numbers by the size: from_tfds gives them back
    assert np.allclose(dodge.box, (45, 115, 585, 382), atol=1e-3)
    suzuki = ds["test"][0]
    assert suzuki.id == "tfds:test/04141" and np.allclose(suzuki.box, (5, 1, 701, 350), atol=1e-3)
    streamed = {r.id: r for r in stream_records(train)}
    assert set(streamed) == set(train.annotations.ids)
    assert np.array_equal(streamed["tfds:train/00028"].image, dodge.image)
