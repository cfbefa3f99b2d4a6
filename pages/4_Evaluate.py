"""Evaluate: dataset-level localisation results (tables and plots), and starting a run with progress."""

import os
from pathlib import Path

import streamlit as st

from core.data import DatasetError
from core.evaluate import EvalRequest, load_results, run_evaluation
from core.evaluate.cli_format import duration, formatted_rows
from core.paths import PROJECT_ROOT
from ui.page import start_page

DEFAULT_OUT = PROJECT_ROOT / "out" / "evaluation"

loaded = start_page("Evaluate localisation")
if loaded is None:
    st.stop()

with st.expander("Run an evaluation", expanded=not (DEFAULT_OUT / "summary.json").exists()):
    data = st.text_input("Dataset folder (or tfds:cars196)", key="eval_data",
                         value=st.session_state.get("dataset_path") or os.environ.get("CARS196_DIR", ""))
    left, middle, right = st.columns(3)
    split = left.selectbox("Split", ("test", "train"), key="eval_split")
    limit = middle.number_input("At most this many photos (0 = all)", 0, 100_000, 0, key="eval_limit")
    folds = right.number_input("k-fold τ (0 = use the model's calibrated τ)", 0, 20, 0, key="eval_folds",
                               help="With k ≥ 2 every photo is scored with a τ chosen on the other folds.")
    out_text = st.text_input("Results folder", str(DEFAULT_OUT), key="eval_out",
                             help="An interrupted run resumes from what this folder already holds.")
    start = st.button("Run", type="primary", disabled=not data.strip())

if start:
    bar = st.progress(0.0, text="Starting…")

    def show(progress) -> None:
        eta = duration(progress.eta) if progress.eta is not None else "…"
        bar.progress(progress.done / max(progress.total, 1),
                     text=f"{progress.stage}: {progress.done}/{progress.total} photos · "
                          f"{progress.rate:.1f}/s · {eta} left")

    try:
        request = EvalRequest(data.strip(), split, model=loaded.key, limit=int(limit) or None,
                              folds=int(folds) or None)
        run_evaluation(request, Path(out_text), progress=show)
        bar.empty()
        st.success(f"Evaluation written to {out_text}")
    except (DatasetError, ValueError, FileNotFoundError, OSError) as error:
        bar.empty()
        st.error(f"The evaluation could not run: {error}")

folder = Path(st.session_state.get("eval_out") or DEFAULT_OUT)
try:
    results = load_results(folder)
except FileNotFoundError as error:
    st.info(f"No results yet. {error}")
    st.stop()
except ValueError as error:
    st.error(f"{folder} cannot be read: {error}")
    st.stop()

summary = results.summary
st.markdown(f"**{summary['model']}** on `{summary['data']}` [{summary['split']}] · {summary['n']} photos "
            f"with a box · pipeline: {summary['pipeline_label']} · {summary['photos_per_second']:.1f} photos/s")
st.caption(f"τ: {summary[summary['pipeline']['methods'][0]]['tau_source']} · classification: "
           f"{summary['correct_rule']} (accuracy {summary['classification_accuracy']:.3f})")
st.dataframe(formatted_rows(summary), hide_index=True, width="stretch")
for name, figure in results.figures.items():
    st.plotly_chart(figure, width="stretch", key=f"figure_{name}")
with st.expander(f"Per class ({len(results.per_class)} classes)"):
    st.dataframe(results.per_class, hide_index=True, width="stretch")
with st.expander(f"Per photo ({len(results.per_photo)} photos)"):
    st.dataframe(results.per_photo, hide_index=True, width="stretch")
columns = st.columns(3)
for column, name in zip(columns, ("per_photo.csv", "per_class.csv", "summary.json")):
    path = folder / name
    if path.is_file():
        column.download_button(name, path.read_bytes(), name, on_click="ignore", key=f"download_{name}")
