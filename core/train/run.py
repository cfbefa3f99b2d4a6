"""One training run, start to finish: data → devices → model → fit with checkpoints → model + sidecar.

    result = train(make_config("/data/stanford_cars", "models/resnet50-cars", backbone="resnet50"))
    result.model_path   # models/resnet50-cars/model.keras, listed by the dashboard's model picker

``train(config, resume=True)`` continues an interrupted run from its last finished epoch: weights,
optimizer state (momentum, step, hence the learning-rate schedule), early-stopping state and history.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from core.data import open_dataset
from core.train.augment import Augmentation
from core.train.backbones import Backbone, build_backbone, with_float32_layers
from core.train.config import TrainConfig
from core.train.data import (StreamReport, TrainingData, select_photos, training_dataset,
                             validation_dataset)
from core.train.devices import choose_precision, precision_policy, select_devices
from core.train.metadata import build_metadata, save_final_model, training_info
from core.train.progress import EpochReport, TensorBoardScalars, format_duration
from core.train.state import (CheckpointCallback, RunFolder, TrainingState, best_weights_path,
                              restore_checkpoint)

__all__ = ["TrainResult", "train", "make_optimizer", "compile_for_training", "steps_per_epoch",
           "RESUMABLE_CHANGES"]

MONITOR = "val_accuracy"
RESUMABLE_CHANGES = ("epochs", "workers", "patience")
"""Settings a resumed run may change; any other change would make it a different run."""


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    metadata: dict
    state: TrainingState


def steps_per_epoch(config: TrainConfig, train_photos: int) -> int:
    """``--steps-per-epoch`` if given, else enough batches to show every training photo once."""
    return config.steps_per_epoch or max(1, math.ceil(train_photos / config.batch_size))


def make_optimizer(config: TrainConfig, steps: int) -> keras.optimizers.Optimizer:
    """SGD (``learning_rate=``, Keras 3's name for the study's ``lr=``), constant or warm-up + cosine."""
    rate = config.learning_rate
    if config.schedule == "cosine":
        total = config.epochs * steps
        warmup = min(int(round(config.warmup_epochs * steps)), total - 1)
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else config.learning_rate, decay_steps=max(1, total - warmup),
            warmup_target=config.learning_rate if warmup else None, warmup_steps=warmup)
    return keras.optimizers.SGD(learning_rate=rate, momentum=config.momentum, nesterov=config.momentum > 0)


def describe_learning(config: TrainConfig) -> str:
    momentum = f", momentum {config.momentum}, Nesterov" if config.momentum else ""
    if config.schedule == "constant":
        return f"SGD, constant learning rate {config.learning_rate}{momentum}"
    return (f"SGD{momentum}, learning rate {config.learning_rate} after {config.warmup_epochs:g} warm-up "
            f"epoch(s), cosine decay to 0 over {config.epochs} epochs")


def compile_for_training(model: keras.Model, config: TrainConfig, steps: int, num_classes: int) -> None:
    """SGD as configured, sparse cross-entropy on the softmax output, accuracy (and top-5 from 6 classes)."""
    metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if num_classes > 5:
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy"))
    model.compile(optimizer=make_optimizer(config, steps), loss="sparse_categorical_crossentropy",
                  metrics=metrics)


def _check_same_run(saved: dict, config: TrainConfig) -> None:
    current = config.to_json()
    if current["backbone"] == "auto":
        current["backbone"] = saved.get("backbone")
    changed = [f"{key}: {saved.get(key)!r} → {current[key]!r}" for key in current
               if key not in (*RESUMABLE_CHANGES, "out") and saved.get(key) != current[key]]
    if changed:
        raise ValueError(f"--resume needs the settings of the interrupted run, but these differ: "
                         f"{'; '.join(changed)}. Use the same options (or none: they are read from "
                         f"the checkpoint), or start a new run in another --out folder.")


def _existing_run(folder: RunFolder, resume: bool, say: Callable[[str], None]) -> dict | None:
    """The saved settings to resume, None to start fresh; refuses to overwrite a run by accident."""
    if folder.state.is_file():
        saved = TrainingState.load(folder.state)
        if not resume:
            raise ValueError(f"{folder.root} already holds a training run ({saved.epoch}/"
                             f"{saved.config['epochs']} epochs done). Continue it with --resume, or choose "
                             "another --out folder.")
        return saved.config
    if folder.model.exists():
        raise ValueError(f"{folder.model} already exists and there is no checkpoint to resume in "
                         f"{folder.checkpoints}; choose another --out folder or delete it.")
    if resume:
        say(f"nothing to resume in {folder.checkpoints}; starting a new run")
    return None


def _build(config: TrainConfig, data: TrainingData, steps: int) -> Backbone:
    backbone = build_backbone(config.backbone, len(data.class_names), config.image_size, config.weights)
    compile_for_training(backbone.model, config, steps, len(data.class_names))
    return backbone


def train(config: TrainConfig, *, resume: bool = False, callbacks: Sequence[keras.callbacks.Callback] = (),
          say: Callable[[str], None] = print, verbose: int = 0) -> TrainResult:
    """Run (or resume) training as ``config`` says; returns where the model went and its metadata.

    Raises ``ValueError`` (dataset, settings, existing run), ``WeightsUnavailableError`` (ResNet50's
    ImageNet weights offline); an interrupted run leaves its last finished epoch resumable.
    """
    folder = RunFolder(Path(config.out))
    saved = _existing_run(folder, resume, say)
    if saved is not None:
        config = _resumed_config(saved, config, say)
    data = select_photos(open_dataset(config.data), seed=config.seed, val_fraction=config.val_fraction,
                         max_train=config.max_train_photos, max_val=config.max_val_photos)
    for note in data.notes:
        say(f"note: {note}")
    devices = select_devices()
    precision = choose_precision(config.precision, tf.config.list_physical_devices("GPU"))
    steps = steps_per_epoch(config, len(data.train))
    with precision_policy(precision):
        keras.utils.set_random_seed(config.seed)
        with devices.strategy.scope():
            backbone = _build(config, data, steps)
            config = config.replace(backbone=backbone.key)  # "auto" resolved, for --resume
            state = restore_checkpoint(backbone.model, folder) if saved else TrainingState(config.to_json())
        state.config = config.to_json()
        run = _Run(config, data, backbone, folder, state, steps, say)
        for line in run.describe():
            say(line)
        say(f"device: {devices.description}, precision {precision}")
        if state.epoch < config.epochs and not state.stopped_early:
            _fit(run, callbacks, verbose)
        else:
            say(f"{folder.root}: training already finished ({state.epoch} epochs); writing the final model")
        best = best_weights_path(folder, state)
        if best is not None:
            backbone.model.load_weights(best)
    return _save(run, devices.description, precision, state.best_epoch if best else state.epoch)


def _resumed_config(saved: dict, config: TrainConfig, say: Callable[[str], None]) -> TrainConfig:
    _check_same_run(saved, config)
    if config.epochs != saved["epochs"] and config.schedule == "cosine":
        say(f"note: {saved['epochs']} → {config.epochs} epochs: the cosine schedule now spans "
            f"{config.epochs} epochs, so the learning rate changes from here on")
    return config.replace(backbone=saved["backbone"])


@dataclass
class _Run:
    """What the fit and the final save share."""

    config: TrainConfig
    data: TrainingData
    backbone: Backbone
    folder: RunFolder
    state: TrainingState
    steps: int
    say: Callable[[str], None]

    @property
    def preprocessing(self) -> str:
        return self.config.preprocessing or self.backbone.preprocessing

    @property
    def augmentation(self) -> Augmentation | None:
        return Augmentation() if self.config.augment else None

    def describe(self) -> list[str]:
        """What the run is about to do, for its first lines of output."""
        validation = self.data.validation.description if self.data.validation else "none"
        lines = [f"model: {self.backbone.label}, start: {self.backbone.start}. {self.backbone.note}".rstrip(),
                 f"data: {self.data.train.description}; validation: {validation}; "
                 f"preprocessing {self.preprocessing!r}",
                 f"recipe: {self.steps} steps of {self.config.batch_size} per epoch, "
                 f"{self.config.epochs} epochs; {describe_learning(self.config)}"]
        if self.state.epoch:
            lines.append(f"resuming after epoch {self.state.epoch} (step {self.state.step}, "
                         f"{format_duration(self.state.seconds)} so far)")
        return lines


def _save(run: _Run, device: str, precision: str, weights_epoch: int) -> TrainResult:
    """The float32, uncompiled copy (what the dashboard runs; no optimizer state) and its sidecar."""
    config, backbone, augmentation = run.config, run.backbone, run.augmentation
    training = training_info(config=config, backbone=backbone, data=run.data, devices_text=device,
                             precision=precision, state=run.state, learning=describe_learning(config),
                             augmentation=augmentation.describe() if augmentation else "none",
                             weights_epoch=weights_epoch)
    metadata = build_metadata(
        name=f"{backbone.label.split(' (')[0]} fine-tuned on Cars196 ({run.folder.root.name})",
        class_names=run.data.class_names, preprocessing=run.preprocessing, input_size=config.image_size,
        cam_layer=backbone.cam_layer, backbone=backbone.key, training=training)
    path = save_final_model(with_float32_layers(backbone.model), metadata, run.folder)
    run.say(f"saved {path} (weights of epoch {training['weights_from_epoch']}): "
            f"{metadata['training']['summary']}")
    return TrainResult(path, metadata, run.state)


def _fit(run: _Run, callbacks: Sequence[keras.callbacks.Callback], verbose: int) -> None:
    config, data, state, folder, say = run.config, run.data, run.state, run.folder, run.say
    report = StreamReport()
    train_data = training_dataset(
        data.train, first_epoch=state.epoch, steps_per_epoch=run.steps, batch_size=config.batch_size,
        image_size=config.image_size, preprocessing=run.preprocessing, augmentation=run.augmentation,
        seed=config.seed, workers=config.workers, report=report)
    validation = None
    if data.validation is not None:
        validation = validation_dataset(data.validation, batch_size=config.batch_size,
                                        image_size=config.image_size, preprocessing=run.preprocessing,
                                        workers=config.workers, report=report)
    monitor = MONITOR if validation is not None else None
    checkpoint = CheckpointCallback(folder, state, monitor, config.patience if monitor else None)
    run_callbacks = [EpochReport(config.epochs, report, say), checkpoint,
                     TensorBoardScalars(folder.tensorboard), *callbacks]
    try:
        with warnings.catch_warnings():
            # Keras counts the validation batches on the first pass and warns that the data "ran out";
            # the training stream is endless by construction, so this warning never concerns it.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            run.backbone.model.fit(train_data, epochs=config.epochs, initial_epoch=state.epoch,
                                   steps_per_epoch=run.steps, validation_data=validation,
                                   callbacks=run_callbacks, shuffle=False, verbose=verbose)
    except tf.errors.OpError as error:
        if report.failure.error is not None:  # a data error, wrapped by tf.data: raise it as itself
            raise report.failure.error from None
        raise error
    except KeyboardInterrupt:
        say(f"interrupted; {state.epoch} finished epoch(s) are saved in {folder.checkpoints}. "
            "Continue with the same command and --resume.")
        raise
    if state.stopped_early:
        say(f"stopped early: no better {MONITOR} for {config.patience} epochs (best {state.best_value:.4f} "
            f"at epoch {state.best_epoch})")
