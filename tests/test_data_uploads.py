"""Uploaded photos become records without label or box; bad uploads are refused clearly."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.data import upload_record
from core.images import ImageDecodeError


def _jpeg(colour=(0, 128, 255), size=(12, 6), orientation: int | None = None) -> bytes:
    buf = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.new("RGB", size, colour).save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


def test_upload_record_has_stable_id_and_no_annotations():
    data = _jpeg()
    record = upload_record(data, "my car.jpg")
    assert record.image.shape == (6, 12, 3) and record.image.dtype == np.uint8
    assert (record.label, record.class_name, record.box, record.split) == (None, None, None, None)
    assert record.id.startswith("upload:my car.jpg:") and len(record.id.rsplit(":", 1)[1]) == 12
    assert upload_record(data, "my car.jpg").id == record.id
    assert upload_record(_jpeg(colour=(1, 2, 3)), "my car.jpg").id != record.id


def test_upload_applies_exif_orientation():
    assert upload_record(_jpeg(orientation=6), "phone.jpg").image.shape == (12, 6, 3)


def test_bad_upload_is_refused_with_its_name():
    with pytest.raises(ImageDecodeError, match=r"^scan\.jpg: is a PDF document"):
        upload_record(b"%PDF-1.5\n", "scan.jpg")
