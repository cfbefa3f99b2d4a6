"""Fine-tuning end to end on tiny inputs: loss falls, checkpoints resume exactly, the saved model loads and
explains, bad datasets fail clearly.

Datasets are drawn here (CSV layout: ``names.csv``, ``anno_<split>.csv``, ``cars_<split>/``): three classes,
the project's car drawing (``assets/draw_sample_car.py``), a blue disc and a green bar, 96×64 JPEGs. Runs
use the ``tiny`` test backbone at 32×32 (a few seconds each); one uses the real offline MobileNetV2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from assets.draw_sample_car import draw_sample_car
from core.cam import Explainer
from core.data import StreamStats, open_dataset
from core.model_sources import load_keras_file, trained_models
from core.train import TrainingDataError, make_config, train
from core.train.__main__ import main
from core.train.backbones import build_backbone
from core.train.data import epoch_records, select_photos
from core.train.run import compile_for_training
from core.train.state import RunFolder, TrainingState, read_history_csv, restore_checkpoint
from tests.conftest import PROJECT_ROOT, SHARED_CARS, require_shared

CLASSES = ("red car", "blue disc", "green bar")
SIZE = 32
QUICK = dict(backbone="tiny", image_size=SIZE, batch_size=8, steps_per_epoch=3, learning_rate=0.1,
             schedule="constant", augment=False)


def shape_photo(label: int, rng: np.random.Generator, size=(64, 96)) -> np.ndarray:
    """An RGB photo of class ``label``: 0 the project's car drawing, 1 a blue disc, 2 a green bar."""
    height, width = size
    if label == 0:
        car = draw_sample_car(seed=int(rng.integers(1 << 16)))
        x0, y0 = int(rng.integers(0, 80)), int(rng.integers(120, 200))
        return cv2.resize(car[y0:y0 + 300, x0:x0 + 700], (width, height), interpolation=cv2.INTER_AREA)
    photo = np.full((height, width, 3), (150, 190, 230), np.uint8)
    cx, cy = int(rng.integers(25, width - 25)), int(rng.integers(20, height - 20))
    if label == 1:
        cv2.circle(photo, (cx, cy), int(rng.integers(12, 18)), (40, 60, 200), -1)
    else:
        cv2.rectangle(photo, (cx - 22, cy - 6), (cx + 22, cy + 6), (40, 160, 60), -1)
    return photo


def make_shapes_dataset(root: Path, train_labels, test_labels=(), corrupt_test: int = 0,
                        class_names=CLASSES) -> Path:
    """A CSV-layout dataset; labels are 1-based classes as in the files (a label outside 1..n is "unknown").
    ``corrupt_test`` adds labelled test rows whose file is not an image."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    (root / "names.csv").write_text(
        "class_id,class_name\n" + "".join(f"{i + 1},{name}\n" for i, name in enumerate(class_names)))
    for split, labels, corrupt in (("train", train_labels, 0), ("test", test_labels, corrupt_test)):
        if not labels and not corrupt:
            continue
        folder = root / f"cars_{split}"
        folder.mkdir()
        rows = ["image,x1,y1,x2,y2,class"]
        for k, label in enumerate(labels, 1):
            drawn = shape_photo((label - 1) % len(CLASSES), rng)
            cv2.imwrite(str(folder / f"{k:05d}.jpg"), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
            rows.append(f"{k:05d}.jpg,1,1,96,64,{label}")
        for k in range(len(labels) + 1, len(labels) + 1 + corrupt):
            (folder / f"{k:05d}.jpg").write_bytes(b"this is not a jpeg")
            rows.append(f"{k:05d}.jpg,1,1,96,64,1")
        (root / f"anno_{split}.csv").write_text("\n".join(rows) + "\n")
    return root


def balanced(per_class: int) -> list[int]:
    return [label for label in (1, 2, 3) for _ in range(per_class)]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    """24 training photos, 6 test photos and 1 undecodable test photo."""
    return make_shapes_dataset(tmp_path_factory.mktemp("shapes"), balanced(8), balanced(2), corrupt_test=1)


@pytest.fixture(scope="module")
def tiny_run(shapes, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "tiny-shapes"
    return train(make_config(shapes, out, epochs=5, **QUICK), say=lambda _: None)


def test_tiny_training_on_drawn_shapes_lowers_the_loss(tiny_run):
    losses = [row["loss"] for row in tiny_run.state.history]
    assert len(losses) == 5
    assert losses[-1] < losses[0] - 0.1, losses


def test_run_folder_holds_history_checkpoints_and_tensorboard_but_one_keras_file(tiny_run):
    folder = RunFolder(tiny_run.model_path.parent)
    rows = read_history_csv(folder.history_csv)
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3, 4, 5]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(rows[0])
    assert float(rows[0]["learning_rate"]) == pytest.approx(0.1)
    # The undecodable test photo is skipped once per validation pass, and counted.
    assert [float(row["skipped_photos"]) for row in rows] == [1.0] * 5
    assert tiny_run.metadata["training"]["skipped_photos"] == 5
    state = TrainingState.load(folder.state)
    assert (state.epoch, state.step) == (5, 15)
    events = [path for path in folder.tensorboard.iterdir() if path.name.startswith("events")]
    steps = [event.step for path in events for event in tf.compat.v1.train.summary_iterator(str(path))
             for value in event.summary.value if value.tag == "train/loss"]
    assert steps == [1, 2, 3, 4, 5]
    # Checkpoints are .weights.h5, so the dashboard's picker (models/**/*.keras) sees only the final model.
    assert [p.name for p in folder.root.rglob("*.keras")] == ["model.keras"]
    assert trained_models(folder.root.parent) == [tiny_run.model_path]


def test_saved_model_loads_with_its_metadata_and_explains_a_photo(tiny_run):
    bundle = load_keras_file(tiny_run.model_path)
    sidecar = json.loads(tiny_run.model_path.with_name("model.meta.json").read_text())
    assert bundle.class_names == CLASSES
    assert bundle.preprocessing == sidecar["preprocessing"] == "tf"
    assert bundle.input_size == (SIZE, SIZE) and sidecar["input_size"] == [SIZE, SIZE]
    assert bundle.cam_head.feature_layer == sidecar["cam_layer"] == "features"
    training = sidecar["training"]
    assert training["validation"] == "7 labelled photos of the test split"
    assert (training["train_photos"], training["epochs_run"], training["preset"]) == (24, 5, "recommended")
    assert "5/5 epochs" in training["summary"] and "24 training photos" in training["summary"]
    assert "threshold" not in sidecar  # not calibrated: the engine's default applies
    raw = Explainer(bundle).explain([shape_photo(0, np.random.default_rng(5))], methods=("cam", "gradcam"))[0]
    assert raw.maps[("cam", "features")].shape == (8, 8)  # 32 px, two stride-2 convolutions
    assert np.isfinite(raw.maps[("gradcam", "features")]).all()
    assert raw.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_a_finished_run_is_not_overwritten_without_resume(tiny_run, shapes):
    config = make_config(shapes, tiny_run.model_path.parent, epochs=5, **QUICK)
    with pytest.raises(ValueError, match="already holds a training run"):
        train(config, say=lambda _: None)


class Crash(keras.callbacks.Callback):
    """Records the model and optimizer state, then fails, at the start of epoch ``at`` (0-based)."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at
        self.weights: list[np.ndarray] = []
        self.optimizer: list[np.ndarray] = []

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            self.weights = [np.array(w) for w in self.model.get_weights()]
            self.optimizer = [np.array(v) for v in self.model.optimizer.variables]
            raise RuntimeError("simulated crash")


def test_resume_restores_step_weights_and_optimizer_and_ends_where_an_uninterrupted_run_does(
        shapes, tmp_path):
    config = make_config(shapes, tmp_path / "interrupted", epochs=4, **{**QUICK, "momentum": 0.9})
    crash = Crash(at=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config, callbacks=[crash], say=lambda _: None)
    folder = RunFolder(config.out)
    state = TrainingState.load(folder.state)
    assert (state.epoch, state.step) == (2, 6)

    model = restored_model(config, folder)
    assert int(model.optimizer.iterations.numpy()) == 6
    for saved, now in zip(crash.weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, now)
    for saved, now in zip(crash.optimizer, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(saved, np.array(now))  # momentum and iteration count

    resumed = train(config, resume=True, say=lambda _: None)
    assert [row["epoch"] for row in resumed.state.history] == [1, 2, 3, 4]
    assert resumed.state.step == 12
    train(config.replace(out=tmp_path / "straight"), say=lambda _: None)
    after_resume = restored_model(config, folder).get_weights()
    uninterrupted = restored_model(config, RunFolder(tmp_path / "straight")).get_weights()
    assert not np.array_equal(after_resume[-1], crash.weights[-1])  # epochs 3 and 4 did train
    for a, b in zip(after_resume, uninterrupted, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def restored_model(config, folder: RunFolder) -> keras.Model:
    """A fresh tiny model with the run's last checkpoint (weights and optimizer) loaded."""
    backbone = build_backbone("tiny", len(CLASSES), SIZE, "none")
    compile_for_training(backbone.model, config, 3, len(CLASSES))
    restore_checkpoint(backbone.model, folder)
    return backbone.model


def test_real_offline_mobilenetv2_fine_tunes_a_couple_of_steps(offline_bundle, tmp_path):
    two_photos = make_shapes_dataset(tmp_path / "two", [1, 2])  # too few to validate: training only
    config = make_config(two_photos, tmp_path / "mobilenet", backbone="mobilenetv2", batch_size=2,
                         steps_per_epoch=1, epochs=3, learning_rate=0.01, schedule="constant", augment=False)
    result = train(config, say=lambda _: None)
    losses = [row["loss"] for row in result.state.history]
    assert losses[-1] < losses[0], losses  # the same two photos each step: the ImageNet features fit fast
    assert result.metadata["preprocessing"] == "torch" and result.metadata["cam_layer"] == "out_relu"
    assert "offline" in result.metadata["training"]["start_weights"]
    bundle = load_keras_file(result.model_path)
    raw = Explainer(bundle).explain([shape_photo(0, np.random.default_rng(1))], methods=("cam",))[0]
    assert raw.maps[("cam", "out_relu")].shape == (7, 7)


def test_loss_falls_on_the_shared_real_photos(tmp_path):
    require_shared(SHARED_CARS)
    config = make_config(SHARED_CARS, tmp_path / "real", backbone="tiny", image_size=64, batch_size=4,
                         steps_per_epoch=1, epochs=4, max_train_photos=4, max_val_photos=2,
                         learning_rate=0.05, schedule="constant", augment=False)
    result = train(config, say=lambda _: None)
    losses = [row["loss"] for row in result.state.history]
    assert losses[-1] < losses[0], losses
    assert result.metadata["class_names"][0] == "AM General Hummer SUV 2000"  # the devkit's 196 names
    assert "held out of the train split" in result.metadata["training"]["validation"]


# -- the command line ------------------------------------------------------------------------------------

def test_cli_original_preset_then_resume_with_only_the_folder(shapes, tmp_path, capsys):
    out = tmp_path / "original"
    assert main(["--data", str(shapes), "--out", str(out), "--preset", "original", "--backbone", "tiny",
                 "--image-size", "32", "--epochs", "1", "--steps-per-epoch", "2"]) == 0
    sidecar = json.loads((out / "model.meta.json").read_text())
    assert sidecar["preprocessing"] == "unit"  # the study's /255, kept by its preset
    assert sidecar["training"]["learning"] == "SGD, constant learning rate 0.01"
    assert sidecar["training"]["batch_size"] == 16 and sidecar["training"]["augmentation"] == "none"
    assert main(["--out", str(out), "--resume", "--epochs", "2"]) == 0
    assert [int(r["epoch"]) for r in read_history_csv(out / "logs" / "history.csv")] == [1, 2]
    assert main(["--out", str(out), "--resume", "--batch-size", "4"]) == 2
    assert "batch_size: 16 → 4" in capsys.readouterr().err


@pytest.mark.parametrize("name, train_labels, class_names, message", [
    ("unlabelled", [9, 9, 9, 9], CLASSES, "none of the 4 training photos has a class label"),
    ("one-class", [2, 2, 2, 2], CLASSES, "all 4 labelled training photos are of one class (blue disc)"),
    ("one-name", [1, 1, 1], ("only car",), "lists 1 class(es); a classifier needs at least 2"),
])
def test_cli_refuses_datasets_that_cannot_train_a_classifier(tmp_path, capsys, name, train_labels,
                                                             class_names, message):
    root = make_shapes_dataset(tmp_path / name, train_labels, class_names=class_names)
    assert main(["--data", str(root), "--out", str(tmp_path / "out"), "--backbone", "tiny"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_reports_a_missing_folder(tmp_path, capsys):
    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_train_split_whose_photos_are_all_missing_is_refused(tmp_path):
    root = make_shapes_dataset(tmp_path / "gone", balanced(2))
    for photo in (root / "cars_train").iterdir():
        photo.unlink()
    with pytest.raises(TrainingDataError, match="the train split has no photos \\(6 annotated"):
        select_photos(open_dataset(root))


# -- which photos validate ----------------------------------------------------------------------------------

def test_without_test_photos_a_seeded_tenth_of_train_is_held_out(tmp_path):
    data = select_photos(open_dataset(make_shapes_dataset(tmp_path / "d", balanced(10))), seed=3)
    assert len(data.validation) == 3 and len(data.train) == 27
    assert not set(data.validation.indices) & set(data.train.indices)
    assert "held out of the train split" in data.notes[0]
    again = select_photos(open_dataset(tmp_path / "d"), seed=3)
    assert again.validation.indices.tolist() == data.validation.indices.tolist()


def test_with_labelled_test_photos_the_test_split_validates_and_train_is_whole(shapes):
    data = select_photos(open_dataset(shapes), max_val=4)
    assert data.validation.split.name == "test" and len(data.validation) == 4
    assert len(data.train) == 24 and data.notes == ()


def test_too_few_photos_train_without_validation_and_say_so(tmp_path):
    data = select_photos(open_dataset(make_shapes_dataset(tmp_path / "d", [1, 2, 3, 1])))
    assert data.validation is None and len(data.train) == 4
    assert "no validation" in data.notes[0] and "early stopping is off" in data.notes[0]


def test_tfds_source_trains_through_its_in_order_reader(tmp_path, monkeypatch):
    """tfds reads a split in file order only (random access is one slice per photo): a shuffle buffer.
    A real (tiny) preparation: tfds' mock is not safe across the threads that stream photos."""
    import tensorflow_datasets as tfds

    class DrawnCars196(tfds.image_classification.Cars196, skip_registration=True):
        name = "cars196"  # written where tfds.builder("cars196") looks

        def _split_generators(self, dl_manager):
            return {"train": self._drawn(balanced(2), 0), "test": self._drawn([1, 2, 3], 100)}

        def _drawn(self, labels, first_id):
            rng = np.random.default_rng(first_id)
            for k, label in enumerate(labels, first_id):
                yield k, {"image": shape_photo(label - 1, rng), "label": label - 1, "id": f"{k:05d}",
                          "bbox": tfds.features.BBox(0.0, 0.0, 1.0, 1.0)}

    DrawnCars196(data_dir=str(tmp_path / "tfds")).download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    config = make_config("tfds:cars196", tmp_path / "run", backbone="tiny", image_size=32, batch_size=4,
                         steps_per_epoch=2, epochs=2, augment=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    result = train(config, say=lambda _: None)
    assert result.state.step == 4 and len(result.metadata["class_names"]) == 196
    assert result.metadata["training"]["validation"] == "3 labelled photos of the test split"
    assert result.metadata["training"]["train_photos"] == 6


_MIRRORED_SCRIPT = """
import json, sys
import keras, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from core.train import make_config, run, train
from core.train.devices import Devices
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
run.select_devices = lambda: Devices(strategy, "2 logical CPUs (MirroredStrategy)", 2)
config = make_config(sys.argv[1], sys.argv[2], backbone="tiny", image_size=32, batch_size=8,
                     steps_per_epoch=3, epochs=3)
class Crash(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("simulated crash")
try:
    train(config, callbacks=[Crash()], say=lambda _: None)
except RuntimeError:
    pass
result = train(config, resume=True, say=lambda _: None)
print(json.dumps({"step": result.state.step, "epochs": [row["epoch"] for row in result.state.history],
                  "device": result.metadata["training"]["device"]}))
"""


def test_several_devices_train_and_resume_under_mirrored_strategy(shapes, tmp_path):
    """Two logical CPUs stand in for two GPUs: the same code path as a multi-GPU machine."""
    done = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT, str(shapes), str(tmp_path / "mirrored")],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"step": 9, "epochs": [1, 2, 3], "device": "2 logical CPUs (MirroredStrategy)"}
    assert load_keras_file(tmp_path / "mirrored" / "model.keras").num_classes == 3


def test_training_stream_skips_undecodable_photos_and_still_fills_the_epoch(tmp_path):
    root = make_shapes_dataset(tmp_path / "d", [1, 2, 3, 1])
    (root / "cars_train" / "00002.jpg").write_bytes(b"broken")
    photos = select_photos(open_dataset(root)).train
    stats = StreamStats()
    records = list(epoch_records(photos, epoch=0, count=7, seed=0, workers=1, stats=stats))
    assert len(records) == 7 and all(r.id != "stanford:train/00002.jpg" for r in records)
    assert stats.skipped >= 2 and "00002.jpg" in stats.errors[0]  # 7 photos from 3: three passes
    for photo in (root / "cars_train").iterdir():
        photo.write_bytes(b"broken")
    with pytest.raises(TrainingDataError, match="none of the 4 training photos could be decoded"):
        list(epoch_records(photos, epoch=0, count=7, seed=0, workers=1, stats=StreamStats()))
