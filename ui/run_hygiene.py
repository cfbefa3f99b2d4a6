"""Streamlit's clean-up after every run, minus the part that undoes our caching.

After each run, fragment re-runs included, Streamlit 1.67 calls ``keras.backend.clear_session()`` for
apps that rebuild a model on each run. This app loads each model once and keeps it (``st.cache_resource``),
so clearing only costs time: a full garbage collection over TensorFlow's millions of objects, a reset of
TensorFlow's kernel cache (the next run's eager ops re-create their kernels), and a race with the
look-ahead thread that is explaining the next photo meanwhile. On these 2 cores that was most of a τ
redraw. ``runner.postScriptGC = false`` in ``.streamlit/config.toml`` drops the second full collection
Streamlit forces after each run; Python's own generational collector still runs.
"""

from __future__ import annotations

import sys

from streamlit.runtime.scriptrunner import script_runner

_ORIGINAL = getattr(script_runner, "_clean_problem_modules", None)


def _clean_up_but_keep_keras() -> None:
    """What Streamlit's clean-up does for matplotlib (close every figure), without clearing Keras."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


def keep_keras_session() -> bool:
    """Stop Streamlit from clearing the Keras session after each run; True once it is stopped.

    False when this Streamlit has no such clean-up hook (a newer release may have renamed it): the app
    still works, only reruns are slower.
    """
    if _ORIGINAL is None:
        return False
    script_runner._clean_problem_modules = _clean_up_but_keep_keras
    return True
