"""Choosing one photo for pages that study a single photo: the sample drawing or an upload."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import streamlit as st

from core.images import ImageDecodeError, decode_image
from core.paths import ASSETS_DIR

SAMPLE = ASSETS_DIR / "sample_car.jpg"
ACCEPTED_TYPES = ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"]


@dataclass(frozen=True)
class Photo:
    key: str  # stable id for caching raw explanations
    name: str
    image: np.ndarray
    ground_truth: np.ndarray | None = None
    label: int | None = None


_DECODED_KEY = "decoded_photos"
_DECODED_KEEP = 16


def decode_upload(name: str, data: bytes) -> Photo | None:
    """Decode in memory; a bad file shows its message and returns None (nothing is written anywhere).

    Decoded photos are kept per session, so a slider redraw does not decode the upload again.
    """
    key = hashlib.sha1(data).hexdigest()[:16]
    decoded: OrderedDict = st.session_state.setdefault(_DECODED_KEY, OrderedDict())
    if (key, name) not in decoded:
        try:
            decoded[(key, name)] = decode_image(data, name)
        except ImageDecodeError as error:
            decoded[(key, name)] = error
        while len(decoded) > _DECODED_KEEP:
            decoded.popitem(last=False)
    result = decoded[(key, name)]
    if isinstance(result, ImageDecodeError):
        st.error(str(result))
        return None
    return Photo(key, name, result)


def pick_single_photo(key: str) -> Photo | None:
    """The sample drawing or one uploaded photo."""
    source = st.radio("Photo", ("Sample drawing", "Upload a photo"), horizontal=True, key=f"{key}_source")
    if source == "Sample drawing":
        return decode_upload(SAMPLE.name, SAMPLE.read_bytes())
    file = st.file_uploader("Car photo", type=ACCEPTED_TYPES, key=f"{key}_upload")
    return decode_upload(file.name, file.getvalue()) if file else None
