"""Small file helpers every writer and reader of results, checkpoints and metadata shares."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["write_atomically", "read_json_object"]


def write_atomically(path: str | Path, data: str | bytes) -> None:
    """Replace ``path`` in one step (temporary file beside it, then rename): readers see the old
    content or the new, never a partial file — a run killed at any moment leaves whole files only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, str):
            temporary.write_text(data)
        else:
            temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_json_object(path: str | Path) -> dict:
    """The JSON object in ``path`` ({} when the file does not exist); ValueError naming the file when
    it is not valid JSON or not an object."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path.name} is not valid JSON ({error}); fix or delete it") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} must hold a JSON object; fix or delete it")
    return data
