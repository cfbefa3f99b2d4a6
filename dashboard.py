"""CAM Explorer — the entry point: the navigation, and the home page (what the tool does, which model
and data are active, where to go next).

Run with ``streamlit run dashboard.py``; the other pages live in ``pages/``.
"""

import os

import streamlit as st

from ui.navigation import app_pages
from ui.page import start_page

INTRO = """
**Where does an image classifier look when it recognises a car?** CAM Explorer shows it as a heatmap, turns
the heatmap into a bounding box and measures that box against the truth (IoU).

* **CAM** (Zhou et al., 2016) weights the last convolutional feature maps by the classifier's weights for a class.
* **Grad-CAM** (Selvaraju et al., 2017) weights any convolutional layer's maps by the gradient of the class score.
* Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM, Eigen-CAM, Score-CAM, Ablation-CAM and more: every method of
  the field on one engine, judged on the leaderboard below.

Pages: **Upload** explains your own photos · **Explore** browses Stanford Cars (Cars196) photos with their
ground-truth boxes · **Layers** compares Grad-CAM across layers · **Evaluate** shows dataset-level results and
the leaderboard · **How it works** takes a method apart stage by stage · **Compare** puts every method side by
side on one photo.
Sidebar controls (threshold, opacity, colormap, box mode) redraw instantly without running the network again.
"""

GETTING_CARS196 = """
`tfds.load('cars196')` can no longer download the dataset: its Stanford URLs have returned 404 since 2023
(tensorflow/datasets issues #5053 and #5656). Get the photos from a mirror instead — the original layout
(`cars_train/`, `cars_test/`, `devkit/`), the Kaggle mirror (nested folders), the CSV form, or `car_ims/` with
`cars_annos.mat` all work — then set `CARS196_DIR` or type the folder on the Explore page.
Check a folder with `python -m core.data PATH`.
"""


def model_summary(loaded) -> None:
    bundle = loaded.bundle
    st.subheader("Model in use")
    st.markdown(
        f"**{bundle.name}** · {bundle.num_classes} classes · input {bundle.input_size[1]}×{bundle.input_size[0]} · "
        f"preprocessing `{bundle.preprocessing}`  \n*Why this one:* {loaded.choice.reason}  \n*Source:* {bundle.source}"
    )
    training = bundle.metadata.get("training", {})
    if training.get("summary"):
        st.markdown(f"*Training:* {training['summary']}")
    if bundle.metadata.get("threshold") is not None:
        st.caption(f"Default box threshold τ = {bundle.metadata['threshold']:.2f}, calibrated on "
                   f"{bundle.metadata.get('threshold_source', 'an unknown split')}.")
    if bundle.cam_head:
        st.caption(f"CAM from `{bundle.cam_head.feature_layer}` through `{bundle.cam_head.pooling_layer}` into "
                   f"`{bundle.cam_head.classifier_layer}`; Grad-CAM on any of {len(bundle.conv_layers)} spatial layers.")
    else:
        st.warning(f"CAM unavailable for this model: {bundle.cam_unavailable_reason}")


def leaderboard_summary(model_name: str) -> None:
    """The shipped leaderboard of this model, compact: which method to trust, before running anything."""
    from ui.leaderboard import numeric_rows, shipped_board_for

    board = shipped_board_for(model_name)
    if board is None:
        return
    st.subheader("Which method should I trust?")
    st.caption(f"Shipped leaderboard: {board.get('title', '')} · {board.get('n_photos')} photos · "
               f"{board.get('pipeline_label')}. Intervals, curves and ranking on **Evaluate**.")
    rows = numeric_rows(board)
    st.dataframe(rows, hide_index=True, width="stretch",
                 column_config={name: st.column_config.NumberColumn(format="%.3f") for name in rows[0] if name != "Method"})


def home() -> None:
    loaded = start_page("CAM Explorer")
    st.markdown(INTRO)
    if loaded is not None:
        model_summary(loaded)
        leaderboard_summary(loaded.bundle.name)
    st.subheader("Getting Cars196 (Stanford Cars)")
    data_dir = os.environ.get("CARS196_DIR")
    where = f"`CARS196_DIR` points to `{data_dir}`.  \n" if data_dir else "`CARS196_DIR` is not set.  \n"
    st.markdown(where + GETTING_CARS196)


st.navigation(app_pages(home)).run()
