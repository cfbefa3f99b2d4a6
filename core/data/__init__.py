"""Cars196 (Stanford Cars) in every layout users have, tfds when prepared, and uploaded photos.

    from core.data import open_dataset
    ds = open_dataset("/data/stanford_cars")      # or None (→ $CARS196_DIR) or "tfds:cars196"
    print(ds.describe())
    record = ds["train"][0]                        # Record(id, image, label, class_name, box, split)
    ds["train"].annotations.indices_of_class(13)   # filter without decoding photos

Every source yields the same :class:`Record`; boxes are in the project convention (:mod:`core.boxes`),
labels 0-based. ``python -m core.data PATH`` describes a folder. Modules: ``sources`` (open_dataset,
layout detection), ``stanford`` (.mat layouts), ``csv_layout``, ``tfds_source``, ``tables`` (the one
place devkit boxes and classes are converted), ``folders`` (safe paths), ``pipeline`` (streaming),
``uploads``.
"""

from core.data.dataset import Dataset, DatasetSummary, Split
from core.data.errors import AnnotationError, DatasetError, DatasetNotFoundError, UnknownLayoutError
from core.data.pipeline import StreamStats, iter_batches, stream_records
from core.data.records import UNKNOWN_LABEL, Annotation, AnnotationTable, Record, SplitSummary
from core.data.sources import ENV_VAR, detect_layout, open_dataset, open_folder
from core.data.tfds_source import open_tfds
from core.data.uploads import upload_record

__all__ = [
    "open_dataset", "open_folder", "open_tfds", "detect_layout", "upload_record", "ENV_VAR",
    "Dataset", "DatasetSummary", "Split", "SplitSummary", "Record", "Annotation", "AnnotationTable",
    "UNKNOWN_LABEL", "stream_records", "iter_batches", "StreamStats",
    "DatasetError", "DatasetNotFoundError", "UnknownLayoutError", "AnnotationError",
]
