"""Where the project keeps things on disk, configurable through environment variables."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = PROJECT_ROOT / "assets"


def cache_dir() -> Path:
    """Folder for converted weights and other rebuildable files (``CAM_EXPLORER_CACHE``)."""
    path = Path(os.environ.get("CAM_EXPLORER_CACHE", Path.home() / ".cache" / "cam-explorer"))
    path.mkdir(parents=True, exist_ok=True)
    return path


METADATA_SUFFIX = ".meta.json"


def sidecar_path(model_path: str | Path) -> Path:
    """The metadata file saved beside a ``.keras`` model (class names, preprocessing, calibration)."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + METADATA_SUFFIX)


def models_dir() -> Path:
    """Folder scanned for fine-tuned ``.keras`` models (``CAM_EXPLORER_MODELS``)."""
    return Path(os.environ.get("CAM_EXPLORER_MODELS", PROJECT_ROOT / "models"))
