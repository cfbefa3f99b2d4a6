"""Cars196 from TensorFlow Datasets, only when already prepared (or prepared from files the user placed).

``tfds.load("cars196")`` cannot download anywhere: its Stanford URLs return 404 since 2023
(tensorflow/datasets #5053, #5656) and offline it retries for minutes. So nothing is downloaded here:
unprepared data fails at once with what to do, and ``download=True`` only prepares from the four original
archives placed in ``<data_dir>/downloads/manual/`` (refused at once when any is missing).

Records: tfds stores boxes normalised ``(ymin, xmin, ymax, xmax)``; they are converted to pixels with
:func:`core.boxes.from_tfds` when the photo (hence its size) is loaded, so the cheap annotation table holds
labels and ids but NaN boxes. A box that is not a valid normalised box (NaN, outside [0, 1], min >= max —
``tfds.testing.mock_data`` makes many with ymin > ymax) keeps its record with ``box=None`` and is counted
in the summary's ``bad_boxes``. Photos are decoded by tfds (validated when the data was prepared).

Known difference: the tfds cars196 builder divides the devkit's 1-based inclusive pixels by the photo size
without subtracting 1, so its boxes start up to 1 px right of / below what the folder sources give
(``from_devkit``). It is left as tfds stored it, not silently corrected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from core.boxes import from_tfds
from core.data.dataset import Dataset, DatasetSummary, Split
from core.data.errors import DatasetError, DatasetNotFoundError
from core.data.records import UNKNOWN_LABEL, AnnotationTable, Record, SplitSummary
from core.images import ImageDecodeError

__all__ = ["TFDS_NAME", "MANUAL_FILES", "open_tfds", "valid_tfds_box"]

TFDS_NAME = "cars196"
MANUAL_FILES = ("cars_train.tgz", "cars_test.tgz", "car_devkit.tgz", "cars_test_annos_withlabels.mat")
"""What tfds needs in ``<data_dir>/downloads/manual/`` to prepare cars196 without the dead URLs."""
SPLITS = ("train", "test")
_MAX_ERRORS_IN_A_ROW = 50


def valid_tfds_box(bbox) -> bool:
    """True for a normalised ``(ymin, xmin, ymax, xmax)`` inside [0, 1] with min < max on both axes."""
    b = np.asarray(bbox, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.isfinite(b).all():
        return False
    return bool(((b >= 0) & (b <= 1)).all() and b[0] < b[2] and b[1] < b[3])


def _text(value) -> str:
    value = value.item() if isinstance(value, np.ndarray) else value
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _record(example: dict, split: str, class_names: tuple[str, ...]) -> Record:
    """One tfds example → a record; the single place tfds boxes are converted."""
    image = np.asarray(example["image"])
    if image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ImageDecodeError(f"tfds:{split}/{_text(example.get('id', '?'))}: unexpected image "
                               f"{image.shape} {image.dtype}; prepare the tfds data again")
    label = int(np.asarray(example["label"]))
    box = None
    if valid_tfds_box(example["bbox"]):
        box = tuple(float(v) for v in from_tfds(example["bbox"], image.shape[0], image.shape[1]))
    return Record(id=f"tfds:{split}/{_text(example['id'])}", image=image,
                  label=label if 0 <= label < len(class_names) else None,
                  class_name=class_names[label] if 0 <= label < len(class_names) else None,
                  box=box, split=split)


def _not_prepared(data_dir: str) -> DatasetNotFoundError:
    manual = Path(data_dir) / "downloads" / "manual"
    return DatasetNotFoundError(
        f"tfds {TFDS_NAME} is not prepared in {data_dir}, and tfds cannot download it (its Stanford URLs "
        "return 404, tensorflow/datasets #5053). Either point CARS196_DIR (or the dataset field) at a "
        "Stanford Cars folder from a mirror — check it with `python -m core.data FOLDER` — or put "
        f"{', '.join(MANUAL_FILES)} in {manual} and open it with download=True (CLI: --prepare) to "
        "prepare it from them."
    )


def _prepare(builder, data_dir: str) -> None:
    """Prepare from the manually placed archives only; refuse before tfds would try the dead URLs."""
    import tensorflow_datasets as tfds

    manual = Path(data_dir) / "downloads" / "manual"
    missing = [name for name in MANUAL_FILES if not (manual / name).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"cannot prepare tfds {TFDS_NAME}: {', '.join(missing)} missing from {manual} "
            "(tfds would otherwise try Stanford URLs that are gone). Put the original files there, "
            "or use a Stanford Cars folder instead (CARS196_DIR)."
        )
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    except Exception as err:  # noqa: BLE001 - tfds raises many types (checksums, extraction, I/O)
        raise DatasetError(f"preparing tfds {TFDS_NAME} from {manual} failed: {err}") from err


def _annotation_pass(builder, split: str, class_names: tuple[str, ...]) -> tuple[AnnotationTable, int]:
    """Ids and labels of a split without decoding photos; also counts invalid boxes."""
    import tensorflow_datasets as tfds

    only_annotations = tfds.decode.PartialDecoding({"id": True, "label": True, "bbox": True})
    try:
        ds = builder.as_dataset(split=split, decoders=only_annotations, shuffle_files=False)
    except AssertionError as err:  # tfds's way of saying "not prepared"
        raise _not_prepared(str(Path(builder.data_dir).parents[1])) from err
    ids, labels, bad_boxes = [], [], 0
    for example in tfds.as_numpy(ds):
        ids.append(f"tfds:{split}/{_text(example['id'])}")
        label = int(example["label"])
        labels.append(label if 0 <= label < len(class_names) else UNKNOWN_LABEL)
        bad_boxes += not valid_tfds_box(example["bbox"])
    n = len(ids)
    table = AnnotationTable(split, tuple(ids), np.asarray(labels, dtype=np.int64).reshape(n),
                            np.full((n, 4), np.nan), (None,) * n, class_names)
    return table, bad_boxes


def _random_access(builder, split: str):
    """``i → example``: a tfds data source when the files allow it (array_record), else split slicing."""
    import tensorflow_datasets as tfds

    try:
        source = builder.as_data_source(split=split)
        return lambda i: source[i]
    except NotImplementedError:  # TFRECORD files: read the one example through a sliced split
        def by_slice(i: int) -> dict:
            ds = builder.as_dataset(split=f"{split}[{i}:{i + 1}]", shuffle_files=False)
            return next(iter(tfds.as_numpy(ds)))
        return by_slice


def _loader(read, split: str, class_names: tuple[str, ...], table: AnnotationTable):
    def load(i: int) -> Record:
        try:
            example = read(i)
        except Exception as err:  # noqa: BLE001 - tf.errors.* on a corrupt example
            raise ImageDecodeError(f"{table.ids[i]}: cannot be read from the tfds files ({err}); "
                                   "prepare the tfds data again") from err
        return _record(example, split, class_names)
    return load


def _sequential(builder, split: str, class_names: tuple[str, ...]):
    """Read a whole split in order; an undecodable example is yielded as an error and reading goes on."""
    def read_all() -> Iterator[Record | ImageDecodeError]:
        import tensorflow as tf

        # The tf.data iterator itself, not tfds.as_numpy: a Python generator ends at its first exception,
        # while a tf.data iterator can carry on after a failed element.
        iterator = iter(builder.as_dataset(split=split, shuffle_files=False))
        errors_in_a_row = 0
        while True:
            try:
                example = tf.nest.map_structure(lambda t: t.numpy(), next(iterator))
            except StopIteration:
                return
            except tf.errors.OpError as err:
                errors_in_a_row += 1
                if errors_in_a_row > _MAX_ERRORS_IN_A_ROW:
                    raise DatasetError(f"tfds {TFDS_NAME} {split}: too many unreadable examples in a row; "
                                       "prepare it again") from err
                yield ImageDecodeError(f"tfds:{split}: an example could not be decoded ({err.message})")
                continue
            errors_in_a_row = 0
            try:
                yield _record(example, split, class_names)
            except ImageDecodeError as err:
                yield err
    return read_all


def open_tfds(data_dir: str | os.PathLike | None = None, *, download: bool = False) -> Dataset:
    """Open prepared tfds ``cars196`` from ``data_dir`` (default: ``TFDS_DATA_DIR``, then tfds's default).

    Raises :class:`DatasetNotFoundError` at once when it is not prepared; ``download=True`` prepares it
    from the archives in ``<data_dir>/downloads/manual/`` (see :data:`MANUAL_FILES`), never from the web.
    """
    import tensorflow_datasets as tfds

    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    try:
        builder = tfds.builder(TFDS_NAME, data_dir=None if data_dir is None else str(data_dir))
    except Exception as err:  # noqa: BLE001 - registry/metadata errors from tfds
        raise DatasetError(f"tfds cannot create the {TFDS_NAME} builder: {err}") from err
    root = str(Path(builder.data_dir).parents[1])
    if download:
        _prepare(builder, root)
    class_names = tuple(builder.info.features["label"].names)
    splits, summaries = {}, []
    for split in SPLITS:
        table, bad_boxes = _annotation_pass(builder, split, class_names)
        load = _loader(_random_access(builder, split), split, class_names, table)
        splits[split] = Split(table, load, sequential=_sequential(builder, split, class_names))
        summaries.append(SplitSummary(split, annotated=len(table), found=len(table), bad_boxes=bad_boxes,
                                      bad_labels=int((table.labels == UNKNOWN_LABEL).sum())))
    summary = DatasetSummary("tfds", f"tfds {TFDS_NAME} {builder.info.version}", root, len(class_names),
                             tuple(summaries))
    return Dataset(summary, class_names, splits)
