"""Streaming splits: order kept, undecodable photos counted and skipped, batches, early stop."""

from __future__ import annotations

import numpy as np
import pytest

from core.data import StreamStats, iter_batches, open_folder, stream_records
from core.data.dataset import Split
from core.data.records import AnnotationTable, Record
from core.images import ImageDecodeError
from tests.conftest import SHARED_CARS, require_shared
from tests.test_data_errors import make_devkit


@pytest.fixture
def split_with_bad_photos(tmp_path) -> Split:
    """Six annotated photos: 00002 is empty and 00005 is text; photo n is n×10 px wide."""
    rows = [(f"0000{n}.jpg", 1, 1, 5, 5, 1) for n in range(1, 7)]
    root = make_devkit(tmp_path / "cars", rows, {f"0000{n}.jpg": (n * 10, 8) for n in range(1, 7)})
    (root / "cars_train" / "00002.jpg").write_bytes(b"")
    (root / "cars_train" / "00005.jpg").write_text("not a photo")
    return open_folder(root)["train"]


def test_stream_skips_and_counts_undecodable_photos(split_with_bad_photos):
    stats = StreamStats()
    widths = [r.image.shape[1] for r in stream_records(split_with_bad_photos, stats=stats)]
    assert widths == [10, 30, 40, 60]
    assert (stats.delivered, stats.skipped) == (4, 2)
    assert "00002.jpg: is empty (0 bytes)" in stats.errors[0]
    assert "00005.jpg: is text, not a photo" in stats.errors[1]


def test_stream_follows_the_given_indices(split_with_bad_photos):
    ids = [r.id for r in stream_records(split_with_bad_photos, indices=[5, 0, 4, 2], workers=1, prefetch=1)]
    assert ids == ["stanford:train/00006.jpg", "stanford:train/00001.jpg", "stanford:train/00003.jpg"]


def test_batches_with_transform(split_with_bad_photos):
    stats = StreamStats()

    def width_unless_wide(record: Record) -> int:
        if record.image.shape[1] > 50:
            raise ImageDecodeError(f"{record.id}: too wide for this test")
        return record.image.shape[1]

    batches = list(iter_batches(split_with_bad_photos, 2, transform=width_unless_wide, stats=stats))
    assert batches == [[10, 30], [40]]
    assert (stats.delivered, stats.skipped) == (3, 3)
    assert list(map(len, iter_batches(split_with_bad_photos, 3, drop_last=True))) == [3]


def test_consumer_may_stop_early(split_with_bad_photos):
    stream = stream_records(split_with_bad_photos, prefetch=2)
    assert next(stream).id == "stanford:train/00001.jpg"
    stream.close()  # must not hang or raise


def test_bugs_are_not_swallowed():
    table = AnnotationTable("train", ("a",), np.array([0]), np.full((1, 4), np.nan), (None,), ("A",))

    def broken(i):
        raise RuntimeError("loader bug")

    with pytest.raises(RuntimeError, match="loader bug"):
        list(stream_records(Split(table, broken)))


@pytest.mark.parametrize(("name", "value"), [("workers", 0), ("prefetch", -1), ("batch_size", 0)])
def test_sizes_must_be_positive(split_with_bad_photos, name, value):
    options = {"workers": 1, "prefetch": 1, "batch_size": 1, name: value}
    batch_size = options.pop("batch_size")
    with pytest.raises(ValueError, match=f"{name} must be a positive integer, got {value}"):
        next(iter_batches(split_with_bad_photos, batch_size, **options))


def test_stream_real_photos():
    split = open_folder(require_shared(SHARED_CARS))["train"]
    records = list(stream_records(split, indices=range(0, 164, 20)))
    assert len(records) == 9
    for record in records:
        h, w, _ = record.image.shape
        x1, y1, x2, y2 = record.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
