"""Run the network only when the photo, model, layer, class or recipe changed; keep raw maps per session.

Slow (per-channel) methods show a progress bar and a Stop button. Streamlit stops a running script when
any widget is used, at its next call into Streamlit: the progress callback is such a call, so Stop ends
the computation between two chunks, and the flag its click sets keeps the next run from starting it
again until the user asks.

While a person looks at one photo, the photo they will most likely open next can be explained ahead
(``explain_ahead``): one background worker for the whole server, so five tabs cannot pile up work on two
cores; each session keeps only its own latest request, and only one-pass methods are done ahead (slow
ones keep their progress bar and Stop button).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import streamlit as st

from core.cam import RawExplanation, RunOptions, Target
from core.methods import METHODS
from ui.controls import ExplainChoice
from ui.models import LoadedModel

_CACHE_KEY = "raw_explanations"
_STOPPED_KEY = "stopped_slow_methods"
_AHEAD_KEY = "explanations_ahead"
_CACHE_SIZE = 32
_AHEAD_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explain-ahead")
# The work ahead waits this long after the page asked for it: the page's images are still travelling and
# being drawn then, and on two cores the network would take the CPU they need (it has a person's look,
# about a second, to finish).
_AHEAD_GRACE_S = 0.25


def _stop(key) -> None:
    st.session_state[_STOPPED_KEY] = key


def _resume() -> None:
    st.session_state.pop(_STOPPED_KEY, None)


def _progress_options(slow: tuple[str, ...], choice: ExplainChoice, key) -> RunOptions:
    """A progress bar per request and a Stop button; the bar's updates are where a Stop lands."""
    bar = st.progress(0.0, text=f"{', '.join(METHODS[m].label for m in slow)}: starting…")
    st.button("Stop", key=f"stop_{hash(key)}", on_click=_stop, args=(key,),
              help="Stops the slow methods; the others are shown at once.")
    started = time.perf_counter()

    def report(method: str, done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - started, 1e-6)
        bar.progress(done / max(total, 1), text=f"{METHODS[method].label}: {done}/{total} {METHODS[method].progress_unit} · "
                                                 f"{rate:.0f}/s")

    return RunOptions(eigen_smooth=choice.eigen_smooth, progress=report)


def _cache_key(loaded: LoadedModel, photo_id: str, choice: ExplainChoice, target: Target, methods=None):
    return (loaded.key, photo_id, choice.methods if methods is None else methods, choice.layer, target,
            choice.variant, choice.pipeline.recipe, choice.eigen_smooth)


def _remember(key, raw: RawExplanation, seconds: float) -> None:
    cache: OrderedDict = st.session_state.setdefault(_CACHE_KEY, OrderedDict())
    cache[key] = (raw, seconds)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


@dataclass(frozen=True)
class Ahead:
    """A photo loaded and explained in the background, with what it was explained as."""

    photo: object  # whatever ``load`` returned (a dataset record)
    photo_id: str
    target: Target
    raw: RawExplanation
    seconds: float


def explain_ahead(loaded: LoadedModel, ahead_key, load: Callable[[], object],
                  describe: Callable[[object], tuple[str, np.ndarray, Target]], choice: ExplainChoice) -> None:
    """Load and explain a photo in the background; ``take_ahead(loaded, ahead_key, choice)`` collects it.

    ``load`` runs in the worker (reading and decoding the photo is part of the wait it saves);
    ``describe(photo)`` gives the (photo id, image, target) that ``raw_explanation`` will be asked for.
    A newer request of this session replaces an older one that has not started.
    """
    if not choice.methods or any(not METHODS[m].one_pass for m in choice.methods):
        return
    ahead: dict = st.session_state.setdefault(_AHEAD_KEY, {})
    key = (loaded.key, ahead_key, choice)
    if key in ahead:
        return
    for future in ahead.values():
        future.cancel()
    ahead.clear()
    explainer = loaded.explainer_for(choice.pipeline)
    options = RunOptions(eigen_smooth=choice.eigen_smooth)

    submitted = time.monotonic()

    def work() -> Ahead:
        time.sleep(max(0.0, submitted + _AHEAD_GRACE_S - time.monotonic()))  # queued work does not wait twice
        photo = load()
        photo_id, image, target = describe(photo)
        started = time.perf_counter()
        raw = explainer.explain([image], methods=choice.methods, layer=choice.layer, target=target,
                                variant=choice.variant, options=options)[0]
        return Ahead(photo, photo_id, target, raw, time.perf_counter() - started)

    ahead[key] = _AHEAD_WORKER.submit(work)


def take_ahead(loaded: LoadedModel, ahead_key, choice: ExplainChoice) -> object | None:
    """The photo loaded ahead (waiting for it if it is running already), or None.

    Its raw maps go into this session's cache, so ``raw_explanation`` finds them. A failure in the
    background (an unreadable photo) returns None: the page's own path then shows the message.
    """
    future: Future | None = st.session_state.get(_AHEAD_KEY, {}).pop((loaded.key, ahead_key, choice), None)
    if future is None or future.cancel():  # still queued behind other tabs' work: doing it now is quicker
        return None
    try:
        result = future.result()
    except Exception:  # cancelled, or the photo failed: the foreground path reports the real error
        return None
    _remember(_cache_key(loaded, result.photo_id, choice, result.target), result.raw, result.seconds)
    return result.photo


def raw_explanation(loaded: LoadedModel, photo_id: str, photo: np.ndarray, choice: ExplainChoice,
                    target: Target) -> tuple[RawExplanation, float, bool]:
    """(raw maps, seconds the network took, whether it came from this session's cache)."""
    cache: OrderedDict = st.session_state.setdefault(_CACHE_KEY, OrderedDict())
    methods = choice.methods
    key = _cache_key(loaded, photo_id, choice, target)
    slow = tuple(m for m in methods if not METHODS[m].one_pass)
    if slow and st.session_state.get(_STOPPED_KEY) == key:
        st.info(f"Stopped: {', '.join(METHODS[m].label for m in slow)} not computed for this photo.")
        st.button("Compute them", key=f"resume_{hash(key)}", on_click=_resume)
        methods = tuple(m for m in methods if METHODS[m].one_pass)
        key = key[:2] + (methods,) + key[3:]
        slow = ()
    if key in cache:
        cache.move_to_end(key)
        raw, seconds = cache[key]
        return raw, seconds, True
    if not methods:
        st.stop()
    holder = st.empty()
    with holder.container():
        options = _progress_options(slow, choice, key) if slow else RunOptions(eigen_smooth=choice.eigen_smooth)
    started = time.perf_counter()
    explainer = loaded.explainer_for(choice.pipeline)
    raw = explainer.explain([photo], methods=methods, layer=choice.layer, target=target,
                            variant=choice.variant, options=options)[0]
    seconds = time.perf_counter() - started
    holder.empty()
    _remember(key, raw, seconds)
    return raw, seconds, False
