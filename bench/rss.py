"""Peak resident memory of this process while a block runs, for the benchmarks (psutil, no TensorFlow or
torch import, so the torch subprocess and the TensorFlow side share it)."""

from __future__ import annotations

import threading

import psutil


class PeakRss:
    """Resident memory (MB) before a block and its peak while the block runs (psutil, sampled every 5 ms)."""

    def __init__(self):
        self._process = psutil.Process()
        self.before = self.peak = self._process.memory_info().rss / 2**20
        self._done = threading.Event()

    def _sample(self):
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss / 2**20)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss / 2**20)

    def as_dict(self) -> dict:
        return {"before": round(self.before), "peak": round(self.peak), "increase": round(self.peak - self.before)}
