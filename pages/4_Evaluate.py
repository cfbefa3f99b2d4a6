"""Evaluate: dataset-level localisation results (tables and plots), and starting a run with progress.

Sections, top to bottom: run an evaluation · this machine's results (or, before any run, the results
the project ships with its calibration).
"""

import os
from pathlib import Path

import streamlit as st

from core.data import DatasetError
from core.evaluate import EvalRequest, load_results, run_evaluation
from core.evaluate.cli_format import duration
from core.paths import PROJECT_ROOT
from core.evaluate.faithfulness import cost_up_front
from core.faithfulness import METRICS
from ui.evaluation import has_shipped_results, show_results, show_shipped
from ui.leaderboard import shipped_boards_for, show_board, worst_photos
from ui.page import start_page
from ui.state import default

DEFAULT_OUT = PROJECT_ROOT / "out" / "evaluation"


def run_section(loaded) -> None:
    """The form that starts an evaluation, with a progress bar while it runs."""
    with st.expander("Run an evaluation", expanded=not (DEFAULT_OUT / "summary.json").exists()
                     and not has_shipped_results()):
        default("eval_data", st.session_state.get("dataset_path") or os.environ.get("CARS196_DIR", ""))
        data = st.text_input("Dataset folder (or tfds:cars196)", key="eval_data")
        left, middle, right = st.columns(3)
        split = left.selectbox("Split", ("test", "train"), key="eval_split")
        limit = middle.number_input("At most this many photos (0 = all)", 0, 100_000, key="eval_limit")
        folds = right.number_input("k-fold τ (0 = use the model's calibrated τ)", 0, 20, key="eval_folds",
                                   help="With k ≥ 2 every photo is scored with a τ chosen on the other folds.")
        labels = {m.key: m.label for m in METRICS}
        metrics = st.multiselect("Faithfulness metrics (besides the box metrics)", list(labels),
                                 format_func=labels.get, key="eval_metrics",
                                 help="Each perturbs the photo and asks the model again: deletion/insertion "
                                      "41 forward passes per photo and method, ROAD 19 (+ imputation), "
                                      "average drop/increase 2, pointing games none.")
        if metrics:
            passes = cost_up_front(metrics, 1, 224 * 224)
            st.caption("Cost per photo and method at 224×224: " + ", ".join(
                f"{family} {count} forward passes" for family, count in passes.items() if count))
        default("eval_out", str(DEFAULT_OUT))
        out_text = st.text_input("Results folder", key="eval_out",
                                 help="An interrupted run resumes from what this folder already holds.")
        start = st.button("Run", type="primary", disabled=not data.strip())
    if not start:
        return
    bar = st.progress(0.0, text="Starting…")

    def show(progress) -> None:
        eta = duration(progress.eta) if progress.eta is not None else "…"
        bar.progress(progress.done / max(progress.total, 1),
                     text=f"{progress.stage}: {progress.done}/{progress.total} photos · "
                          f"{progress.rate:.1f}/s · {eta} left")

    try:
        request = EvalRequest(data.strip(), split, model=loaded.key, limit=int(limit) or None,
                              folds=int(folds) or None, metrics=tuple(metrics))
        run_evaluation(request, Path(out_text), progress=show)
        bar.empty()
        st.success(f"Evaluation written to {out_text}")
    except (DatasetError, ValueError, FileNotFoundError, OSError) as error:
        bar.empty()
        st.error(f"The evaluation could not run: {error}")


def results_section(loaded) -> None:
    """This machine's results in the chosen folder; the shipped ones when it holds none."""
    folder = Path(st.session_state.get("eval_out") or DEFAULT_OUT)
    try:
        results = load_results(folder)
    except FileNotFoundError as error:
        st.info(f"No results on this machine yet. {error}")
        shipped_leaderboard(loaded.bundle.name)
        show_shipped(loaded.bundle.name)
        return
    except ValueError as error:
        st.error(f"{folder} cannot be read: {error}")
        return
    st.subheader("Results on this machine", help=f"From `{folder}`.")
    show_results(results)
    board = results.summary.get("leaderboard")
    if board and board.get("rows"):
        st.markdown("**Leaderboard** — which method should I trust? Localisation and faithfulness per method.")
        show_board(board, "eval_board")
        worst_photos(results)
    else:
        shipped_leaderboard(loaded.bundle.name)


def shipped_leaderboard(model_name: str) -> None:
    """The leaderboard the project ships for this model (numbers measured on the shared photos)."""
    boards = shipped_boards_for(model_name)
    if not boards:
        return
    st.subheader("Shipped leaderboard", help="Numbers the project ships (assets/leaderboard.json), measured "
                                             "on the shared Stanford Cars photos; no images.")
    for index, board in enumerate(boards):
        st.caption(f"{board.get('title', '')} · {board.get('model')} · {board.get('pipeline_label')} · "
                   f"{board.get('n_photos')} photos · τ: {board.get('tau_source')}")
        show_board(board, f"shipped_board_{index}")


loaded = start_page("Evaluate localisation")
if loaded is None:
    st.stop()
run_section(loaded)
results_section(loaded)
