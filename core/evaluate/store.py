"""Per-photo results on disk, written batch by batch so an interrupted run keeps its work and resumes.

A run's results live in ``<out>/.partial/<settings hash>/chunk_NNNNNN.npz``, one file per batch, each
written atomically (temporary file + ``os.replace``): a run killed at any moment leaves whole chunks only.
The hash covers everything the stored values depend on (model, data, split, methods, target, input
recipe …) but not τ, so choosing another τ reuses them, and changed settings never mix with old results.

Columns (one row per photo): ``id`` (str), ``index`` (in the split), ``label`` (-1 unknown), ``height``,
``width``, ``truth`` (4 floats, NaN when the photo has no box), ``predicted``, ``score`` and, per method
``m``: ``map__m`` (raw feature-resolution map), ``largest__m`` and ``best__m`` (IoU per τ, NaN without a
truth box), ``boxes__m`` (the largest component's box per τ as fractions of the photo, NaN when none). Each chunk also records the seconds it took, for the throughput.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from core.files import write_atomically

__all__ = ["settings_hash", "ResultStore"]

PARTIAL = ".partial"


def settings_hash(settings: dict) -> str:
    """12 hex digits identifying ``settings`` (a JSON-serialisable dict; key order does not matter)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class ResultStore:
    """The chunks of one settings hash under ``folder``; ``append`` a batch, ``load`` everything so far."""

    def __init__(self, folder: Path, settings: dict):
        self.settings = settings
        self.key = settings_hash(settings)
        self.path = Path(folder) / PARTIAL / self.key
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path / "settings.json", json.dumps(settings, indent=2, sort_keys=True, default=str))

    def _chunks(self) -> list[Path]:
        return sorted(self.path.glob("chunk_*.npz"))

    def append(self, columns: dict[str, np.ndarray], seconds: float) -> None:
        """Store one batch (all columns the same length) as the next chunk."""
        lengths = {name: len(value) for name, value in columns.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"columns of one batch differ in length: {lengths}")
        chunks = self._chunks()
        number = int(chunks[-1].stem.split("_")[1]) + 1 if chunks else 0
        target = self.path / f"chunk_{number:06d}.npz"
        temporary = self.path / f".chunk_{number:06d}.{os.getpid()}.tmp"
        try:
            with open(temporary, "wb") as handle:
                np.savez(handle, seconds=np.array([seconds]), **columns)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def load(self, ids=None) -> dict[str, np.ndarray]:
        """Stored rows in the order they were computed ({} when none); only those in ``ids`` if given."""
        parts: dict[str, list[np.ndarray]] = {}
        for chunk in self._chunks():
            with np.load(chunk, allow_pickle=False) as data:
                for name in data.files:
                    if name != "seconds":
                        parts.setdefault(name, []).append(data[name])
        columns = {name: np.concatenate(values) for name, values in parts.items()}
        if ids is not None and columns:
            keep = np.isin(columns["id"], np.asarray(list(ids)))
            columns = {name: values[keep] for name, values in columns.items()}
        return columns

    def photos_per_second(self) -> float | None:
        """Photos stored per second spent computing them, over every run that added to this store."""
        photos = seconds = 0.0
        for chunk in self._chunks():
            with np.load(chunk, allow_pickle=False) as data:
                photos += len(data["id"])
                seconds += float(data["seconds"].sum())
        return round(photos / seconds, 3) if seconds > 0 else None

    def done_ids(self) -> set[str]:
        ids = set()
        for chunk in self._chunks():
            with np.load(chunk, allow_pickle=False) as data:
                ids.update(data["id"].tolist())
        return ids
