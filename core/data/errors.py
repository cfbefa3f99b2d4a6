"""Why a dataset could not be opened. All are ``ValueError`` so a UI can catch one type and show the text."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset that cannot be opened; the message says what was looked at and what to do."""


class DatasetNotFoundError(DatasetError):
    """No dataset at the given place (missing folder, unset ``CARS196_DIR``, unprepared tfds data)."""


class UnknownLayoutError(DatasetError):
    """A folder that exists but matches none of the known Stanford Cars layouts."""


class AnnotationError(DatasetError):
    """An annotation file (``.mat`` or ``.csv``) that cannot be parsed or lacks required fields."""
