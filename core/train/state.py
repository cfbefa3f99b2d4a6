"""Checkpoints that survive interruption: weights, optimizer state, epoch, step, best score, history.

Layout of a run folder (``--out DIR``)::

    DIR/model.keras, DIR/model.meta.json      the final model and its sidecar (written last)
    DIR/checkpoints/state.json                run settings, epochs done, step, early-stopping state, history
    DIR/checkpoints/epoch-0003.weights.h5     model weights + optimizer state (momentum, iteration count)
    DIR/checkpoints/best-0002.weights.h5      weights of the best validation epoch so far
    DIR/logs/history.csv, DIR/logs/tensorboard/

Checkpoints are ``.weights.h5``, never ``.keras``, so the dashboard's model picker (which lists
``models/**/*.keras``) shows only finished models. A new epoch's weights are written under a new name,
``state.json`` (which names them) is replaced atomically afterwards and only then are the older files
removed, so a crash at any moment leaves a consistent set.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras

from core.files import write_atomically
from core.paths import sidecar_path

__all__ = ["RunFolder", "TrainingState", "CheckpointCallback", "restore_checkpoint", "best_weights_path",
           "write_history_csv", "read_history_csv"]

STATE_VERSION = 1


@dataclass(frozen=True)
class RunFolder:
    root: Path

    @property
    def model(self) -> Path:
        return self.root / "model.keras"

    @property
    def metadata(self) -> Path:
        return sidecar_path(self.model)

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def state(self) -> Path:
        return self.checkpoints / "state.json"


    @property
    def history_csv(self) -> Path:
        return self.root / "logs" / "history.csv"

    @property
    def tensorboard(self) -> Path:
        return self.root / "logs" / "tensorboard"

    def epoch_weights(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch-{epoch:04d}.weights.h5"

    def best_weights(self, epoch: int) -> Path:
        return self.checkpoints / f"best-{epoch:04d}.weights.h5"


@dataclass
class TrainingState:
    """Everything besides the weights that a resumed run needs; ``epoch`` counts finished epochs."""

    config: dict
    epoch: int = 0
    step: int = 0
    best_value: float | None = None  # of the monitored metric (validation accuracy)
    best_loss: float | None = None  # validation loss at that epoch, breaks ties
    best_epoch: int | None = None  # 1-based, as printed
    epochs_without_improvement: int = 0
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0  # training time over all sessions
    weights_file: str | None = None  # in checkpoints/: the last finished epoch
    best_weights_file: str | None = None  # in checkpoints/: the best epoch's weights
    version: int = STATE_VERSION

    def save(self, path: Path) -> None:
        write_atomically(path, json.dumps(asdict(self), indent=1).encode())

    @classmethod
    def load(cls, path: Path) -> "TrainingState":
        try:
            values = json.loads(path.read_text())
            return cls(**values)
        except (OSError, json.JSONDecodeError, TypeError) as error:
            raise ValueError(f"{path} is not a readable training state ({error}); delete the checkpoints "
                             "folder to start over") from None


def _save_weights_atomically(model: keras.Model, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{os.getpid()}.tmp.{path.name}")
    model.save_weights(temporary)
    os.replace(temporary, path)


def write_history_csv(path: Path, history: list[dict]) -> None:
    """One row per finished epoch (all sessions), rewritten whole so a resumed run never duplicates rows."""
    columns = list(dict.fromkeys(key for row in history for key in row))
    lines = [",".join(columns)]
    for row in history:
        lines.append(",".join(_csv_cell(row.get(key, "")) for key in columns))
    write_atomically(path, ("\n".join(lines) + "\n").encode())


def _csv_cell(value) -> str:
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if any(ch in text for ch in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def read_history_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def best_weights_path(folder: RunFolder, state: TrainingState) -> Path | None:
    """The best validation epoch's weights file, or None (no validation, or none saved yet)."""
    if state.best_weights_file is None:
        return None
    path = folder.checkpoints / state.best_weights_file
    return path if path.is_file() else None


def restore_checkpoint(model: keras.Model, folder: RunFolder) -> TrainingState:
    """Load the last checkpoint's weights and optimizer state into a compiled ``model``."""
    state = TrainingState.load(folder.state)
    if state.weights_file is None:
        raise ValueError(f"{folder.state} names no weights file; delete {folder.checkpoints} to start over")
    weights = folder.checkpoints / state.weights_file
    if not weights.is_file():
        raise ValueError(f"{weights} is missing; delete {folder.checkpoints} to start over")
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(weights)
    restored_step = int(model.optimizer.iterations.numpy())
    if restored_step != state.step:
        raise ValueError(f"{weights} holds step {restored_step} but {folder.state} says {state.step}; "
                         f"delete {folder.checkpoints} to start over")
    return state


class CheckpointCallback(keras.callbacks.Callback):
    """At each epoch's end: record the epoch, keep the best weights, decide early stopping, checkpoint.

    ``monitor`` (e.g. ``val_accuracy``, higher is better) drives "best" and early stopping; without it
    (no validation) the last epoch is the best and training runs all epochs.
    """

    def __init__(self, folder: RunFolder, state: TrainingState, monitor: str | None, patience: int | None,
                 min_delta: float = 1e-4):
        super().__init__()
        self.folder, self.state = folder, state
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta

    def _improves(self, value: float, loss: float) -> bool:
        """Higher ``monitor`` by more than ``min_delta``; on a tie (within it), a lower validation loss."""
        best = self.state
        if best.best_value is None or value > best.best_value + self.min_delta:
            return True
        return value >= best.best_value - self.min_delta and loss < (best.best_loss or math.inf)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        state = self.state
        state.epoch = epoch + 1
        state.step = int(self.model.optimizer.iterations.numpy())
        state.seconds += float(logs.get("epoch_seconds", 0.0))
        state.history.append({"epoch": epoch + 1, **{k: _plain(v) for k, v in logs.items()}})
        previous = (state.weights_file, state.best_weights_file)
        value = logs.get(self.monitor) if self.monitor else None
        if value is not None and math.isfinite(float(value)):
            loss = float(logs.get("val_loss", math.inf))
            if self._improves(float(value), loss):
                state.best_value, state.best_loss, state.best_epoch = float(value), loss, epoch + 1
                state.epochs_without_improvement = 0
                state.best_weights_file = self.folder.best_weights(epoch + 1).name
                _save_weights_atomically(self.model, self.folder.checkpoints / state.best_weights_file)
            else:
                state.epochs_without_improvement += 1
                if self.patience is not None and state.epochs_without_improvement >= self.patience:
                    state.stopped_early = True
                    self.model.stop_training = True
        state.weights_file = self.folder.epoch_weights(epoch + 1).name
        _save_weights_atomically(self.model, self.folder.checkpoints / state.weights_file)
        state.save(self.folder.state)
        for old in previous:
            if old and old not in (state.weights_file, state.best_weights_file):
                (self.folder.checkpoints / old).unlink(missing_ok=True)
        write_history_csv(self.folder.history_csv, state.history)


def _plain(value):
    """Keras log values (numpy scalars, tensors) → JSON numbers."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
