"""TensorFlow owns the cores; NumPy's BLAS runs single-threaded beside it.

OpenBLAS threads busy-wait for a while after each call. When the cores are shared (several dashboard
sessions, a batch run beside other work) they then compete with the TensorFlow call that follows, so a
loop that alternates NumPy and TensorFlow work (Score-CAM building its masks between forward passes, most
of all) slows down: measured here with another TensorFlow process busy, Faster-Score-CAM took 1.23 s with
NumPy's two BLAS threads and 0.63 s with one; on a quiet machine the two are equal (0.42–0.44 s against
0.38–0.47 s). The BLAS work beside TensorFlow is small (upsampling maps, projections of a few thousand
numbers), so one thread costs it nothing measurable.

``OPENBLAS_NUM_THREADS`` covers BLAS libraries loaded later (SciPy's); threadpoolctl limits the ones
already loaded (Streamlit imports NumPy before any of this project's code runs).
"""

from __future__ import annotations

import os

BLAS_THREADS = 1


def leave_cores_to_tensorflow() -> None:
    """Limit every BLAS library of the process to :data:`BLAS_THREADS` (unless the user set a count)."""
    if "OPENBLAS_NUM_THREADS" in os.environ or "OMP_NUM_THREADS" in os.environ:
        return
    os.environ["OPENBLAS_NUM_THREADS"] = str(BLAS_THREADS)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=BLAS_THREADS, user_api="blas")
