"""Streaming a split for evaluation and training: photos decoded ahead in threads, bad ones skipped.

A photo that cannot be decoded (:class:`core.images.ImageDecodeError`) is counted in :class:`StreamStats`
and skipped, so one broken file never stops an evaluation over thousands; any other exception is a bug
and propagates. Pillow and TensorFlow release the GIL while decoding, so threads overlap decoding with
the consumer's work (e.g. the model).

    stats = StreamStats()
    for batch in iter_batches(ds["test"], 32, transform=prepare, stats=stats):
        ...
    print(stats.delivered, stats.skipped)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from core.data.dataset import Split
from core.data.records import Record
from core.images import ImageDecodeError

__all__ = ["StreamStats", "stream_records", "iter_batches"]

T = TypeVar("T")
MAX_KEPT_ERRORS = 20


@dataclass
class StreamStats:
    """Counts of one stream; ``errors`` keeps the first messages so a UI can show them."""

    delivered: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def skip(self, err: ImageDecodeError) -> None:
        self.skipped += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(str(err))


def _check_positive(name: str, value: int) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _threaded(split: Split, indices: Iterable[int], workers: int,
              prefetch: int) -> Iterator[Record | ImageDecodeError]:
    """``split[i]`` for each index, in order, with up to ``prefetch`` photos decoding ahead."""
    def load(i: int) -> Record | ImageDecodeError:
        try:
            return split[i]
        except ImageDecodeError as err:
            return err

    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="photos") as pool:
        try:
            for i in indices:
                pending.append(pool.submit(load, int(i)))
                if len(pending) >= prefetch:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # consumer stopped early: drop what is queued
            for future in pending:
                future.cancel()


def stream_records(split: Split, indices: Iterable[int] | None = None, *, workers: int = 2,
                   prefetch: int = 16, stats: StreamStats | None = None) -> Iterator[Record]:
    """Yield the split's records in order (all, or those at ``indices``), skipping undecodable photos.

    The whole split of a source with a sequential reader (tfds) is read with it; otherwise ``workers``
    threads decode up to ``prefetch`` photos ahead of the consumer.
    """
    _check_positive("workers", workers)
    _check_positive("prefetch", prefetch)
    stats = StreamStats() if stats is None else stats
    if indices is None and split.sequential is not None:
        source = split.sequential()
    else:
        source = _threaded(split, range(len(split)) if indices is None else indices, workers, prefetch)
    for item in source:
        if isinstance(item, ImageDecodeError):
            stats.skip(item)
            continue
        stats.delivered += 1
        yield item


def iter_batches(split: Split, batch_size: int, *, transform: Callable[[Record], T] | None = None,
                 indices: Iterable[int] | None = None, workers: int = 2, prefetch: int = 16,
                 stats: StreamStats | None = None, drop_last: bool = False) -> Iterator[list]:
    """Lists of ``batch_size`` records (or ``transform(record)`` values); the last may be shorter.

    ``transform`` (e.g. resize to the model's input and scale the box) runs in the consumer's thread,
    after decoding; a photo it rejects with ``ImageDecodeError`` is counted and skipped too.
    """
    _check_positive("batch_size", batch_size)
    stats = StreamStats() if stats is None else stats
    batch: list = []
    for record in stream_records(split, indices, workers=workers, prefetch=prefetch, stats=stats):
        if transform is not None:
            try:
                item = transform(record)
            except ImageDecodeError as err:
                stats.delivered -= 1
                stats.skip(err)
                continue
        else:
            item = record
        batch.append(item)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch and not drop_last:
        yield batch
