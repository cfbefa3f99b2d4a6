"""Photos a user uploads: bytes in memory → a record without label or box."""

from __future__ import annotations

import hashlib

from core.data.records import Record
from core.images import decode_image

__all__ = ["upload_record"]


def upload_record(data: bytes, name: str = "upload") -> Record:
    """Decode uploaded bytes (EXIF orientation applied) into a record.

    The id ``"upload:<name>:<12 hex digits of SHA-256>"`` is the same for the same bytes, so results
    cached by id survive a re-upload, and two different files with the same name never share one.
    Raises :class:`core.images.ImageDecodeError` for anything that is not a usable photo.
    """
    image = decode_image(data, name)
    digest = hashlib.sha256(bytes(data)).hexdigest()[:12]
    return Record(id=f"upload:{name}:{digest}", image=image)
