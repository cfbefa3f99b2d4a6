"""Every chosen method on one photo: running them (one shared run for the one-pass methods, one run per
slow method with progress and Stop), and the grid of overlays with IoU, time and leaderboard rank."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import streamlit as st

from core.cam import RawExplanation, RunOptions, Target
from core.explanation import DisplaySettings, MethodView, render_views
from core.methods import METHODS, Stopped
from ui.controls import ExplainChoice
from ui.explain import raw_explanation
from ui.photos import Photo

SORT_ORDERS = ("IoU (best first)", "name", "time (fastest first)")
_SLOW_KEY = "compare_slow_runs"
_WARM_KEY = "compare_warm_ms"
_STOPPED_KEY = "compare_stopped"
_PER_ROW = 4
_SLOW_KEEP = 16  # slow runs kept per session (a raw map is small; a run costs seconds to minutes)


def method_ranks(model_name: str, metric: str = "mean_iou") -> Mapping[str, int] | None:
    """Method key → its rank (mean IoU) on the shipped leaderboard of ``model_name``; None when the project
    ships no board for that model."""
    from ui.leaderboard import shipped_board_for

    board = shipped_board_for(model_name)
    if board is None:
        return None
    return {row["method"]: row[metric]["rank"] for row in board["rows"] if row[metric]["rank"] is not None}


@dataclass(frozen=True)
class MethodResult:
    """One grid cell: a method's view on the photo and the wall time of the run that made its map.
    ``shared``: the map came from the one pass every one-pass method shares (the time is that pass's)."""

    view: MethodView
    milliseconds: float
    shared: bool
    first_run: bool = False  # the time includes compiling the method's function (its first run here)


def _stop(key) -> None:
    st.session_state[_STOPPED_KEY] = key


def _resume() -> None:
    st.session_state.pop(_STOPPED_KEY, None)


def _fast_results(loaded, photo: Photo, choice: ExplainChoice, target: Target,
                  methods) -> tuple[RawExplanation, float]:
    """The one-pass methods in one engine call (cached per session, as every page); its time measured warm,
    i.e. without the one-off compilation of a new combination of methods."""
    fast = replace(choice, methods=tuple(methods))
    raw, seconds, cached = raw_explanation(loaded, photo.key, photo.image, fast, target)
    warm = st.session_state.setdefault(_WARM_KEY, {})
    key = (loaded.key, photo.key, fast.methods, fast.layer, target, fast.variant)
    if key not in warm:
        if cached:
            warm[key] = seconds * 1000
        else:
            started = time.perf_counter()
            loaded.explainer.explain([photo.image], methods=fast.methods, layer=fast.layer, target=target,
                                     variant=fast.variant)
            warm[key] = (time.perf_counter() - started) * 1000
    return raw, warm[key]


def _slow_results(loaded, photo: Photo, choice: ExplainChoice, target: Target, methods) -> dict:
    """method → (raw, ms, first run) for the slow methods, each in its own run, one after another, with a
    progress bar and a Stop button; the ones finished before a Stop are kept."""
    runs = st.session_state.setdefault(_SLOW_KEY, {})
    base = (loaded.key, photo.key, choice.layer, target, choice.variant)
    todo = [m for m in methods if base + (m,) not in runs]
    if todo and st.session_state.get(_STOPPED_KEY) == base:
        st.info(f"Stopped: {', '.join(METHODS[m].label for m in todo)} not computed for this photo.")
        st.button("Compute them", key="compare_resume", on_click=_resume)
        todo = []
    if todo:
        holder = st.empty()
        with holder.container():
            bar = st.progress(0.0, text="Slow methods: starting…")
            st.button("Stop", key="compare_stop", on_click=_stop, args=(base,),
                      help="Stops the slow methods; the finished ones and the one-pass methods are shown.")
        compiled = st.session_state.setdefault("compare_compiled", set())
        for n, key in enumerate(todo):
            label = f"{METHODS[key].label} ({n + 1} of {len(todo)})"
            unit = METHODS[key].progress_unit
            options = RunOptions(progress=lambda _, done, total, label=label, unit=unit: bar.progress(
                done / max(total, 1), text=f"{label}: {done}/{total} {unit}"))
            started = time.perf_counter()
            try:
                raw = loaded.explainer.explain([photo.image], methods=(key,), layer=choice.layer,
                                               target=target, variant=choice.variant, options=options)[0]
            except Stopped:
                break
            except ValueError as error:  # e.g. Ablation-CAM on a layer that is no cut of the network
                st.warning(f"{METHODS[key].label} cannot run here: {error}")
                continue
            signature = (loaded.key, key, choice.layer, choice.variant)
            runs[base + (key,)] = (raw, (time.perf_counter() - started) * 1000, signature not in compiled)
            compiled.add(signature)
            while len(runs) > _SLOW_KEEP:
                runs.pop(next(iter(runs)))
        holder.empty()
    return {m: runs[base + (m,)] for m in methods if base + (m,) in runs}


def run_methods(loaded, photo: Photo, choice: ExplainChoice, target: Target,
                display: DisplaySettings) -> list[MethodResult]:
    """Every chosen method's view on ``photo`` with its time; redraws (τ, α) reuse the stored maps."""
    fast = [m for m in choice.methods if METHODS[m].one_pass]
    slow = [m for m in choice.methods if not METHODS[m].one_pass]
    results = []
    if fast:
        raw, ms = _fast_results(loaded, photo, choice, target, fast)
        results += [MethodResult(view, ms, shared=len(fast) > 1)
                    for view in render_views(photo.image, raw, display, photo.ground_truth)]
    for raw, ms, first in _slow_results(loaded, photo, choice, target, slow).values():
        results += [MethodResult(view, ms, shared=False, first_run=first)
                    for view in render_views(photo.image, raw, display, photo.ground_truth)]
    return results


def sort_results(results: list[MethodResult], order: str) -> list[MethodResult]:
    """By IoU (best first; no IoU last), by method name, or by time (fastest first)."""
    if order == SORT_ORDERS[0]:
        return sorted(results, key=lambda r: (r.view.localized.iou is None, -(r.view.localized.iou or 0.0)))
    if order == SORT_ORDERS[1]:
        return sorted(results, key=lambda r: METHODS[r.view.method].label.lower())
    return sorted(results, key=lambda r: r.milliseconds)


def _time_text(result: MethodResult) -> str:
    if result.shared:
        return "shared run"
    return f"{result.milliseconds:,.0f} ms" + (" (first run: includes compiling)" if result.first_run else "")


def shared_pass_note(results: list[MethodResult]) -> str | None:
    """One sentence for the time every one-pass method shares, or None when no map came from it."""
    shared = [r for r in results if r.shared]
    if not shared:
        return None
    at_input = [r.view.method for r in shared if METHODS[r.view.method].kind == "input"]
    at_layer = len(shared) - len(at_input)
    if not at_input:
        passes = "one shared forward and backward pass"
    elif not at_layer:
        passes = "one shared pass back to the input"
    else:
        labels = " and ".join(METHODS[m].label for m in at_input)
        passes = (f"one request: one shared forward and backward pass for the {at_layer} at the layer, "
                  f"and one pass back to the input for {labels}")
    return (f"The {len(shared)} one-pass methods come from {passes}: "
            f"{shared[0].milliseconds:,.0f} ms for all of them (measured after compiling).")


def compare_grid(results: list[MethodResult], ranks: Mapping[str, int] | None = None) -> None:
    """One cell per method: its overlay with the box, IoU, time and, when the leaderboard has one, its
    rank."""
    note = shared_pass_note(results)
    if note:
        st.caption(note)
    for row in range(0, len(results), _PER_ROW):
        for column, result in zip(st.columns(_PER_ROW), results[row:row + _PER_ROW]):
            view = result.view
            entry = METHODS[view.method]
            with column.container(border=True):
                st.markdown(f"**{entry.label}**", help=f"{entry.paper}. {entry.doc.strip()}")
                st.image(view.overlay, width="stretch", output_format="JPEG")
                iou_text = "no ground truth" if view.localized.iou is None else f"{view.localized.iou:.3f}"
                rank = None if ranks is None else ranks.get(view.method)
                st.caption(f"IoU **{iou_text}** · {_time_text(result)}"
                           + (f" · leaderboard rank {rank}" if rank is not None else ""))
                if view.localized.main_box is None:
                    st.caption("no region above τ: no box")
                if view.heatmap.status:
                    st.caption(f"⚠ {view.heatmap.status}")


def iou_table(results: list[MethodResult]) -> dict:
    """The grid's numbers as columns, for a sortable table under it."""
    return {"method": [METHODS[r.view.method].label for r in results],
            "IoU": [np.nan if r.view.localized.iou is None else round(r.view.localized.iou, 3)
                    for r in results],
            "time (ms)": [round(r.milliseconds) for r in results]}
