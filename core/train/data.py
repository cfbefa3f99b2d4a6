"""Which photos train and validate, and how they stream into Keras without loading the dataset in memory.

Photos are decoded by the project's pipeline (:func:`core.data.stream_records`: threads decoding ahead,
undecodable photos counted and skipped) and fed to Keras through ``tf.data.Dataset.from_generator``.

* Training: one generator over all remaining epochs. Epoch ``e`` visits the training photos in the order
  of a permutation seeded by ``(seed, e)`` (sources that can only be read in order, such as tfds, go
  through a seeded shuffle buffer instead) and yields exactly ``steps × batch`` photos, topping up from a
  next permutation when photos were skipped or the last batch is short — so epochs always line up with
  ``steps_per_epoch`` and a resumed run sees the photos an uninterrupted one would have.
* Validation: the labelled photos of the test split when there are any; otherwise a seeded part of the
  training photos is held out (and the run says so); with under 5 labelled photos, none.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from core.data import Dataset, Record, Split, StreamStats, stream_records
from core.data.records import UNKNOWN_LABEL
from core.preprocessing import preprocess
from core.train.augment import Augmentation, resize_to

__all__ = ["TrainingDataError", "PhotoSet", "TrainingData", "select_photos", "training_dataset",
           "validation_dataset", "MIN_PHOTOS_FOR_HOLDOUT"]

MIN_PHOTOS_FOR_HOLDOUT = 5
SHUFFLE_BUFFER = 256  # decoded photos held to shuffle sources that are read in order only (tfds)


class TrainingDataError(ValueError):
    """The dataset cannot train a classifier (no labels, one class, no photos); the message says why."""


@dataclass(frozen=True)
class PhotoSet:
    """Rows of one split used for training or validation."""

    split: Split
    indices: np.ndarray
    description: str

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def labels(self) -> np.ndarray:
        return self.split.annotations.labels[self.indices]


@dataclass(frozen=True)
class TrainingData:
    train: PhotoSet
    validation: PhotoSet | None
    class_names: tuple[str, ...]
    notes: tuple[str, ...] = ()


@dataclass
class GeneratorFailure:
    """An error raised inside a generator, kept so it can be re-raised as itself (tf.data wraps it)."""

    error: BaseException | None = None


def _labelled(split: Split) -> np.ndarray:
    return np.flatnonzero(split.annotations.labels != UNKNOWN_LABEL)


def _subset(indices: np.ndarray, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    if limit is None or len(indices) <= limit:
        return indices
    return np.sort(rng.choice(indices, size=limit, replace=False))


def select_photos(dataset: Dataset, *, seed: int = 0, val_fraction: float = 0.1,
                  max_train: int | None = None, max_val: int | None = None) -> TrainingData:
    """Training and validation rows of ``dataset``; raises :class:`TrainingDataError` when it cannot train."""
    where = dataset.summary.location
    names = tuple(dataset.class_names)
    if len(names) < 2:
        raise TrainingDataError(
            f"{where}: the dataset lists {len(names)} class(es); a classifier needs at least 2")
    if "train" not in dataset:
        raise TrainingDataError(f"{where}: no train split; training needs labelled training photos")
    train_split = dataset["train"]
    if len(train_split) == 0:
        summary = next((s for s in dataset.summary.splits if s.name == "train"), None)
        annotated = f" ({summary.annotated} annotated, their photo files are missing)" if summary else ""
        raise TrainingDataError(f"{where}: the train split has no photos{annotated}; "
                                "check the folder with `python -m core.data FOLDER`")
    labelled = _labelled(train_split)
    if len(labelled) == 0:
        raise TrainingDataError(
            f"{where}: none of the {len(train_split)} training photos has a class label; training needs "
            "labels (devkit/cars_train_annos.mat with its class column, or anno_train.csv)")
    classes = np.unique(train_split.annotations.labels[labelled])
    if len(classes) < 2:
        only = names[int(classes[0])] if 0 <= classes[0] < len(names) else classes[0]
        raise TrainingDataError(
            f"{where}: all {len(labelled)} labelled training photos are of one class ({only}); "
            "a classifier needs photos of at least 2 classes")
    rng = np.random.default_rng([seed, 7])
    notes = []
    test_labelled = _labelled(dataset["test"]) if "test" in dataset else np.array([], np.int64)
    validation = None
    if len(test_labelled):
        chosen = _subset(test_labelled, max_val, rng)
        validation = PhotoSet(dataset["test"], chosen, f"{len(chosen)} labelled photos of the test split")
    elif len(labelled) >= MIN_PHOTOS_FOR_HOLDOUT:
        held = min(max(1, int(round(val_fraction * len(labelled)))), len(labelled) - 1)
        held_out = np.sort(rng.choice(labelled, size=held, replace=False))
        labelled = np.setdiff1d(labelled, held_out)
        chosen = _subset(held_out, max_val, rng)
        validation = PhotoSet(train_split, chosen,
                              f"{len(chosen)} photos held out of the train split ({val_fraction:.0%})")
        notes.append(f"the test split has no labelled photos, so validation uses {validation.description}; "
                     "they are not trained on")
    else:
        notes.append(f"no validation: the test split has no labelled photos and only {len(labelled)} "
                     "training photos are labelled; early stopping is off")
    unlabelled = len(train_split) - len(_labelled(train_split))
    if unlabelled:
        notes.append(f"{unlabelled} training photos without a class label are not used")
    train_rows = _subset(labelled, max_train, rng)
    described = f"{len(train_rows)} labelled photos of the train split"
    return TrainingData(PhotoSet(train_split, train_rows, described), validation, names, tuple(notes))


# -- streaming -------------------------------------------------------------------------------------------

def _records_in_order(photos: PhotoSet, order: np.ndarray, workers: int, stats: StreamStats,
                      rng: np.random.Generator) -> Iterator[Record]:
    """``photos`` in ``order`` (random access), or in file order through a shuffle buffer (tfds)."""
    if photos.split.sequential is None:
        yield from stream_records(photos.split, order, workers=workers, stats=stats)
        return
    wanted = set(photos.split.annotations.ids[i] for i in photos.indices)
    buffer: list[Record] = []
    for record in stream_records(photos.split, None, workers=workers, stats=stats):
        if record.id not in wanted:
            continue
        buffer.append(record)
        if len(buffer) >= SHUFFLE_BUFFER:
            yield buffer.pop(int(rng.integers(len(buffer))))
    while buffer:
        yield buffer.pop(int(rng.integers(len(buffer))))


def epoch_records(photos: PhotoSet, epoch: int, count: int, *, seed: int, workers: int,
                  stats: StreamStats) -> Iterator[Record]:
    """Exactly ``count`` records for ``epoch``, passes over seeded permutations; raises when none decode."""
    delivered = 0
    for attempt in itertools.count():
        rng = np.random.default_rng([seed, epoch, attempt])
        before = delivered
        records = _records_in_order(photos, rng.permutation(photos.indices), workers, stats, rng)
        with contextlib.closing(records):
            for record in records:
                yield record
                delivered += 1
                if delivered == count:
                    return
        if delivered == before:
            raise TrainingDataError(
                f"none of the {len(photos)} training photos could be decoded "
                f"(first errors: {'; '.join(stats.errors[:3])})")


def _signature(size: int):
    return (tf.TensorSpec((size, size, 3), tf.uint8), tf.TensorSpec((), tf.int32))


def _batched(examples: tf.data.Dataset, batch_size: int, preprocessing: str, drop_remainder: bool):
    dataset = examples.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(lambda x, y: (preprocess(x, preprocessing), y), num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    # Several GPUs: split each batch between them instead of trying to shard a Python generator by file.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(2)


@dataclass
class StreamReport:
    """Counts shared with the progress callback: photos delivered and skipped, per stream."""

    train: StreamStats = field(default_factory=StreamStats)
    validation: StreamStats = field(default_factory=StreamStats)
    failure: GeneratorFailure = field(default_factory=GeneratorFailure)


def training_dataset(photos: PhotoSet, *, first_epoch: int, steps_per_epoch: int,
                     batch_size: int, image_size: int, preprocessing: str, augmentation: Augmentation | None,
                     seed: int, workers: int, report: StreamReport) -> tf.data.Dataset:
    """Batches of (preprocessed float32 photos, int32 labels), epoch after epoch from ``first_epoch``."""
    count = steps_per_epoch * batch_size

    def generate():
        try:
            for epoch in itertools.count(first_epoch):  # endless: Keras stops after its last epoch
                rng = np.random.default_rng([seed, epoch, 1_000_003])
                for record in epoch_records(photos, epoch, count, seed=seed, workers=workers,
                                            stats=report.train):
                    if augmentation is None:
                        image = resize_to(record.image, image_size)
                    else:
                        image = augmentation(record.image, rng, image_size)
                    yield image, np.int32(record.label)
        except Exception as error:
            report.failure.error = error
            raise

    examples = tf.data.Dataset.from_generator(generate, output_signature=_signature(image_size))
    return _batched(examples, batch_size, preprocessing, drop_remainder=True)


def validation_dataset(photos: PhotoSet, *, batch_size: int, image_size: int, preprocessing: str,
                       workers: int, report: StreamReport) -> tf.data.Dataset:
    """The validation photos once, whole and squashed to the input size, in a fixed order."""

    def generate():
        try:
            records = _records_in_order(photos, photos.indices, workers, report.validation,
                                        np.random.default_rng(0))
            with contextlib.closing(records):
                for record in records:
                    yield resize_to(record.image, image_size), np.int32(record.label)
        except Exception as error:
            report.failure.error = error
            raise

    examples = tf.data.Dataset.from_generator(generate, output_signature=_signature(image_size))
    return _batched(examples, batch_size, preprocessing, drop_remainder=False)
