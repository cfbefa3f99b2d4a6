"""The training parts with exact answers: augmentation, settings and presets, learning-rate schedule,
precision choice, float32 copies, history files and durations. No training runs here."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from core.model_sources import WeightsUnavailableError
from core.train import devices
from core.train.augment import Augmentation, flip_horizontal, jitter_colour, random_crop_box, resize_to
from core.train.backbones import build_backbone, with_float32_layers
from core.train.config import TrainConfig, make_config
from core.train.devices import choose_precision, precision_policy
from core.train.progress import current_learning_rate, format_duration
from core.train.run import make_optimizer, steps_per_epoch
from core.train.state import read_history_csv, write_history_csv

# -- augmentation -----------------------------------------------------------------------------------------


def test_flip_mirrors_columns():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(flip_horizontal(image), image[:, ::-1])
    assert flip_horizontal(image)[0, 0].tolist() == [6, 7, 8]


def test_colour_jitter_known_values():
    pixel = np.array([[[100, 50, 200]]], np.uint8)
    assert jitter_colour(pixel).tolist() == pixel.tolist()  # all factors 1: unchanged
    assert jitter_colour(pixel, brightness=0.5).tolist() == [[[50, 25, 100]]]
    grey = 0.299 * 100 + 0.587 * 50 + 0.114 * 200  # 82.05 → 82
    assert jitter_colour(pixel, saturation=0.0).tolist() == [[[82, 82, 82]]], grey
    assert jitter_colour(pixel, brightness=3.0).tolist() == [[[255, 150, 255]]]  # clipped
    two = np.array([[[0, 0, 0], [100, 100, 100]]], np.uint8)  # mean grey 50
    assert jitter_colour(two, contrast=0.5).tolist() == [[[25, 25, 25], [75, 75, 75]]]


def test_random_crop_stays_inside_and_covers_the_asked_area():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x1, y1, x2, y2 = random_crop_box(480, 640, rng, scale=(0.5, 1.0))
        assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
        assert 0.45 <= (x2 - x1) * (y2 - y1) / (480 * 640) <= 1.0
    assert random_crop_box(10, 10, rng, scale=(2.0, 3.0)) == (0, 0, 10, 10)  # impossible: whole photo


def test_resize_squashes_the_whole_photo_and_refuses_non_rgb():
    assert resize_to(np.zeros((480, 640, 3), np.uint8), 224).shape == (224, 224, 3)
    assert resize_to(np.full((5, 7, 3), 9, np.uint8), 32)[31, 31].tolist() == [9, 9, 9]
    with pytest.raises(ValueError, match="expected an RGB uint8 photo"):
        resize_to(np.zeros((4, 4), np.uint8), 8)


def test_augmentation_is_reproducible_from_its_seed():
    photo = np.random.default_rng(1).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    first = Augmentation()(photo, np.random.default_rng([0, 3]), 32)
    again = Augmentation()(photo, np.random.default_rng([0, 3]), 32)
    other = Augmentation()(photo, np.random.default_rng([0, 4]), 32)
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


# -- settings -----------------------------------------------------------------------------------------------


def test_original_preset_is_the_studys_recipe():
    config = make_config("data", "out", "original")
    assert (config.learning_rate, config.batch_size, config.epochs, config.momentum) == (0.01, 16, 15, 0.0)
    assert (config.preprocessing, config.augment, config.patience, config.schedule) == ("unit", False, None,
                                                                                         "constant")
    assert make_config("data", "out", "original", epochs=3).epochs == 3  # overrides win
    assert make_config("data", "out").preprocessing is None  # recommended: the backbone's own


@pytest.mark.parametrize("changes, message", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"backbone": "vgg"}, "backbone must be one of"),
    ({"preprocessing": "imagenet"}, "preprocessing must be one of"),
    ({"learning_rate": -1.0}, "learning_rate must be > 0"),
    ({"warmup_epochs": 31.0}, "warmup_epochs must be in \\[0, epochs=30\\]"),
    ({"image_size": 16}, "too small"),
    ({"patience": 0}, "patience must be a positive number"),
])
def test_bad_settings_are_refused_with_the_value(changes, message):
    with pytest.raises(ValueError, match=message):
        make_config("data", "out", **changes)
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        make_config("data", "out", "fast")


def test_settings_round_trip_through_json():
    config = make_config("data", "out", "original", backbone="tiny")
    assert TrainConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="unknown keys \\['colour'\\]"):
        TrainConfig.from_json({**config.to_json(), "colour": "red"})


def test_steps_per_epoch_cover_every_photo_once():
    config = make_config("data", "out", batch_size=16)
    assert steps_per_epoch(config, 8144) == 509  # ceil(8144 / 16)
    assert steps_per_epoch(config.replace(steps_per_epoch=7), 8144) == 7


# -- learning rate ----------------------------------------------------------------------------------------


def _rate_at(optimizer, step: int) -> float:
    optimizer.iterations.assign(step)
    return current_learning_rate(optimizer)


def test_warm_up_then_cosine_decay():
    config = make_config("data", "out", learning_rate=0.01, epochs=5, warmup_epochs=1.0)
    optimizer = make_optimizer(config, steps=10)  # 10 warm-up steps, then 40 of cosine decay
    optimizer.build([keras.Variable(np.zeros(1, np.float32))])
    assert _rate_at(optimizer, 0) == pytest.approx(0.0)
    assert _rate_at(optimizer, 5) == pytest.approx(0.005)
    assert _rate_at(optimizer, 10) == pytest.approx(0.01)
    assert _rate_at(optimizer, 30) == pytest.approx(0.005, rel=1e-4)  # half way down the cosine
    assert _rate_at(optimizer, 50) == pytest.approx(0.0, abs=1e-9)
    assert optimizer.momentum == 0.9 and optimizer.nesterov


def test_original_rate_is_constant_without_momentum():
    optimizer = make_optimizer(make_config("data", "out", "original"), steps=509)
    optimizer.build([keras.Variable(np.zeros(1, np.float32))])
    assert _rate_at(optimizer, 0) == _rate_at(optimizer, 5000) == pytest.approx(0.01)
    assert optimizer.momentum == 0.0 and not optimizer.nesterov


# -- devices and precision -------------------------------------------------------------------------------


def test_auto_precision_is_mixed_only_on_tensor_core_gpus(monkeypatch):
    assert choose_precision("auto", []) == "float32"
    monkeypatch.setattr(devices, "_gpu_capabilities", lambda gpus: [(8, 0), (7, 5)])
    assert choose_precision("auto", ["gpu0", "gpu1"]) == "mixed_float16"
    monkeypatch.setattr(devices, "_gpu_capabilities", lambda gpus: [(8, 0), (6, 1)])
    assert choose_precision("auto", ["gpu0", "gpu1"]) == "float32"
    assert choose_precision("mixed_bfloat16", []) == "mixed_bfloat16"


def test_under_mixed_precision_the_classifier_is_float32_and_the_saved_copy_all_float32():
    with precision_policy("mixed_float16"):
        model = build_backbone("tiny", 3, 32, "none").model
    assert keras.config.dtype_policy().name == "float32"  # put back
    assert model.get_layer("features").compute_dtype == "float16"
    assert model.get_layer("predictions").compute_dtype == "float32"
    copy = with_float32_layers(model)  # what the run saves: the dashboard runs it in float32 on CPU
    assert {layer.compute_dtype for layer in copy.layers} == {"float32"}
    for a, b in zip(model.get_weights(), copy.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    assert copy(x).dtype == "float32"
    np.testing.assert_allclose(np.asarray(copy(x)), np.asarray(model(x)), atol=2e-3)


# -- logs ------------------------------------------------------------------------------------------------


def test_history_csv_round_trip_with_new_columns_later(tmp_path):
    path = tmp_path / "logs" / "history.csv"
    write_history_csv(path, [{"epoch": 1, "loss": 2.5}, {"epoch": 2, "loss": 1.25, "val_loss": 1.5}])
    assert path.read_text() == "epoch,loss,val_loss\n1,2.5,\n2,1.25,1.5\n"
    assert read_history_csv(path)[1] == {"epoch": "2", "loss": "1.25", "val_loss": "1.5"}


@pytest.mark.parametrize("seconds, text", [(8.24, "8.2 s"), (95, "1 min 35 s"), (3725, "1 h 02 min"),
                                           (36 * 3600, "36 h 00 min")])
def test_durations_read_naturally(seconds, text):
    assert format_duration(seconds) == text


def test_resnet50_built_by_the_study_function_gets_a_float32_classifier_under_mixed_precision():
    with precision_policy("mixed_float16"):
        backbone = build_backbone("resnet50", 5, 32, "none")
    model = backbone.model
    assert model.get_layer("conv5_block3_out").compute_dtype == "float16"
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert (backbone.cam_layer, backbone.preprocessing) == ("conv5_block3_out", "caffe")


# -- which backbone, offline ----------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and no cached Keras weights, whatever this machine has."""
    monkeypatch.setenv("CAM_EXPLORER_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


def test_resnet50_imagenet_offline_says_how_to_train_anyway(offline):
    with pytest.raises(WeightsUnavailableError, match="--backbone mobilenetv2 \\(real ImageNet weights"):
        build_backbone("resnet50", 196, 224, "imagenet")


def test_auto_backbone_offline_falls_back_to_the_offline_mobilenetv2_and_says_so(offline, offline_bundle):
    backbone = build_backbone("auto", 196, 224, "imagenet")
    assert backbone.key == "mobilenetv2" and backbone.preprocessing == "torch"
    assert "cannot be downloaded" in backbone.note and "offline MobileNetV2 is used instead" in backbone.note
    assert backbone.model.output_shape == (None, 196) and backbone.cam_layer == "out_relu"
    with pytest.raises(ValueError, match="converted for 224×224 inputs; use --image-size 224"):
        build_backbone("mobilenetv2", 196, 160, "imagenet")
