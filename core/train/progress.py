"""What a run tells its user each epoch (one line with the ETA) and what it logs for TensorBoard.

``EpochReport`` adds ``learning_rate``, ``epoch_seconds`` and ``skipped_photos`` to the epoch's logs, so
the callbacks after it (checkpoint history, CSV, TensorBoard) record them too; it must come first.
TensorBoard scalars are written with ``tf.summary.write``, which is part of TensorFlow: the
``tensorboard`` package is only needed to view them (``pip install tensorboard``; ``tensorboard --logdir``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from core.train.data import StreamReport

__all__ = ["EpochReport", "TensorBoardScalars", "format_duration"]

_SCALARS = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))


def format_duration(seconds: float) -> str:
    """``3725`` → ``"1 h 02 min"``, ``95`` → ``"1 min 35 s"``, ``8.2`` → ``"8.2 s"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def current_learning_rate(optimizer) -> float:
    """The rate the optimizer uses at its current step (schedules are evaluated at ``iterations``)."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class EpochReport(keras.callbacks.Callback):
    """One line per epoch, e.g. ``epoch 3/15 · loss 2.31 · accuracy 0.412 · val_accuracy 0.398 ·
    lr 0.0087 · 8 min 31 s · ETA 1 h 42 min``."""

    def __init__(self, epochs: int, report: StreamReport, say: Callable[[str], None] = print):
        super().__init__()
        self.epochs, self.report, self.say = epochs, report, say
        self._durations: list[float] = []
        self._started = 0.0
        self._skipped_before = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        self._skipped_before = self.report.train.skipped + self.report.validation.skipped

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        self._learning_rate = current_learning_rate(self.model.optimizer)  # at the epoch's last step
        self._durations.append(seconds)
        skipped = self.report.train.skipped + self.report.validation.skipped - self._skipped_before
        if logs is not None:
            logs["learning_rate"] = self._learning_rate
            logs["epoch_seconds"] = seconds
            logs["skipped_photos"] = skipped
        values = " · ".join(f"{k} {v:.4g}" for k, v in (logs or {}).items()
                            if k not in ("learning_rate", "epoch_seconds", "skipped_photos"))
        remaining = self.epochs - (epoch + 1)
        eta = sum(self._durations) / len(self._durations) * remaining
        line = (f"epoch {epoch + 1}/{self.epochs} · {values} · lr {self._learning_rate:.3g} · "
                f"{format_duration(seconds)}")
        line += f" · ETA {format_duration(eta)}" if remaining else " · last epoch"
        if skipped:
            line += f" · {skipped} undecodable photo(s) skipped"
        self.say(line)


class TensorBoardScalars(keras.callbacks.Callback):
    """Every numeric epoch log as a TensorBoard scalar (``train/…``, ``validation/…``), step = epoch."""

    def __init__(self, log_dir: Path):
        super().__init__()
        self.log_dir = Path(log_dir)
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(str(self.log_dir))

    def on_epoch_end(self, epoch, logs=None):
        with self._writer.as_default():
            for key, value in (logs or {}).items():
                group, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
                tf.summary.write(f"{group}/{name}", tf.constant(float(value)), step=epoch + 1,
                                 metadata=_SCALARS)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
