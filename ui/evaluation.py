"""What the Evaluate page draws: a results folder's headline, tables, plots and downloads, and — before
any run on this machine — the results the project ships with its calibration."""

from __future__ import annotations

import streamlit as st

from core.calibration import SHIPPED_CALIBRATION, calibration_rows, shipped_calibrations
from core.evaluate.cli_format import formatted_rows, speed_text
from core.methods import METHODS
from core.paths import PROJECT_ROOT


def _number(value, pattern: str, missing: str) -> str:
    """``pattern`` filled with ``value``, or ``missing`` when the run did not measure it (None)."""
    return missing if value is None else pattern.format(value)


def headline(summary: dict) -> str:
    """Model, data, pipeline and speed of a run, in one markdown line (speed may be unknown)."""
    speed = "speed " + speed_text(summary.get("photos_per_second"))
    return (f"**{summary['model']}** on `{summary['data']}` [{summary['split']}] · {summary['n']} photos "
            f"with a box · pipeline: {summary['pipeline_label']} · {speed}")


def details(summary: dict) -> str:
    """Where τ came from and the classification accuracy, which is undefined when the model's classes
    are not the dataset's."""
    accuracy = _number(summary.get("classification_accuracy"), "accuracy {:.3f}",
                       "accuracy not defined: the model's classes are not the dataset's")
    first = summary["pipeline"]["methods"][0]
    return f"τ: {summary[first]['tau_source']} · classification: {summary['correct_rule']} ({accuracy})"


def show_results(results) -> None:
    """A results folder (``core.evaluate.load_results``): headline, metrics table, plots, tables, files."""
    summary = results.summary
    st.markdown(headline(summary))
    st.caption(details(summary))
    st.dataframe(formatted_rows(summary), hide_index=True, width="stretch")
    for name, figure in results.figures.items():
        st.plotly_chart(figure, width="stretch", key=f"figure_{name}")
    with st.expander(f"Per class ({len(results.per_class)} classes)"):
        st.dataframe(results.per_class, hide_index=True, width="stretch")
    with st.expander(f"Per photo ({len(results.per_photo)} photos)"):
        st.dataframe(results.per_photo, hide_index=True, width="stretch")
    for column, name in zip(st.columns(3), ("per_photo.csv", "per_class.csv", "summary.json")):
        path = results.folder / name
        if path.is_file():
            column.download_button(name, path.read_bytes(), name, on_click="ignore", key=f"download_{name}")


def _shipped_table(rows: list[dict]) -> list[dict]:
    def cell(value, digits=3):
        return "" if value is None else f"{value:.{digits}f}"

    return [{"method": METHODS[r["method"]].label if r["method"] in METHODS else r["method"],
             "τ (best mean IoU)": cell(r["tau"], 2), "held-out mean IoU": cell(r["heldout_mean_iou"]),
             "held-out BoxAcc@0.5": cell(r["heldout_boxacc_0.5"]), "τ (best BoxAcc@0.5)": cell(r["tau_boxacc_0.5"], 2)}
            for r in rows]


def has_shipped_results() -> bool:
    try:
        return bool(shipped_calibrations())
    except ValueError:
        return False


def show_shipped(model_name: str) -> None:
    """The shipped calibration's results, labelled as shipped (not computed here): per pipeline, each
    method's τ and its k-fold held-out scores, and what it was calibrated on."""
    try:
        shipped = shipped_calibrations()
    except ValueError as error:
        st.error(f"The shipped calibration cannot be read: {error}")
        return
    where = SHIPPED_CALIBRATION.relative_to(PROJECT_ROOT)
    st.subheader("Shipped results", help=f"From `{where}`, which the project ships; not computed on this machine.")
    if not shipped:
        st.info(f"The project ships no calibration (`{where}` is missing or empty).")
        return
    if model_name not in shipped:
        st.info(f"No shipped results for **{model_name}**; the project ships them for: {', '.join(shipped)}.")
    for name, entry in sorted(shipped.items(), key=lambda item: item[0] != model_name):
        calibration = entry.get("calibration") or {}
        st.markdown(f"**{name}** · shipped with the project (`{where}`), calibrated "
                    f"{calibration.get('date', 'on an unrecorded date')}")
        st.caption(f"Calibrated on {calibration.get('calibrated_on') or entry.get('threshold_source', 'unrecorded photos')}"
                   f" · objective: {calibration.get('objective', 'mean IoU')} · held-out scores: each photo scored "
                   f"with τ chosen on the other folds of a {_folds(calibration)}-fold split.")
        rows = calibration_rows(entry)
        for pipeline in dict.fromkeys(r["pipeline"] for r in rows):
            st.markdown(f"*Pipeline:* {pipeline}")
            st.dataframe(_shipped_table([r for r in rows if r["pipeline"] == pipeline]), hide_index=True,
                         width="stretch")


def _folds(calibration: dict) -> str:
    folds = {v.get("folds") for v in (calibration.get("kfold_heldout") or {}).values() if isinstance(v, dict)}
    return str(folds.pop()) if len(folds) == 1 else "k"
