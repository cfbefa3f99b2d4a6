"""NumPy's BLAS leaves the cores to TensorFlow (core/threads.py), unless the user chose a thread count."""

import ast
import os
import subprocess
import sys

from threadpoolctl import threadpool_info

import core  # noqa: F401  (importing core applies the limit)
from core.threads import BLAS_THREADS


def test_importing_core_limits_every_loaded_blas_to_one_thread():
    import scipy.linalg  # noqa: F401  (SciPy's own OpenBLAS, loaded after core)

    blas = [entry for entry in threadpool_info() if entry["user_api"] == "blas"]
    assert blas, "NumPy should have loaded a BLAS library"
    assert {entry["num_threads"] for entry in blas} == {BLAS_THREADS}


def _blas_threads_in_child(environment: dict) -> set:
    code = ("import numpy, core; from threadpoolctl import threadpool_info; "
            "print(sorted({e['num_threads'] for e in threadpool_info() if e['user_api'] == 'blas'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), check=True)
    return set(ast.literal_eval(done.stdout.strip().splitlines()[-1]))


def test_a_thread_count_the_user_set_is_kept():
    base = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    assert _blas_threads_in_child({**base, "OPENBLAS_NUM_THREADS": "2"}) == {2}
    assert _blas_threads_in_child(base) == {BLAS_THREADS}
