"""Opening a dataset once per server process, and ranking a split's photos by IoU on demand."""

from __future__ import annotations

import os

import numpy as np
import streamlit as st

from core.data import DatasetError, open_dataset
from core.data.dataset import Dataset
from core.images import ImageDecodeError


@st.cache_resource(max_entries=4, show_spinner="Reading the annotations…")
def _open(spec: str) -> Dataset:
    return open_dataset(spec)


def dataset_picker() -> Dataset | None:
    """A field for the dataset folder (default ``CARS196_DIR``); errors explained in the page."""
    default = st.session_state.get("dataset_path") or os.environ.get("CARS196_DIR", "")
    st.session_state.setdefault("dataset_path", default)
    spec = st.text_input("Dataset folder (or tfds:cars196)", key="dataset_path",
                         placeholder="/data/stanford_cars",
                         help="A Stanford Cars folder in any common layout; CARS196_DIR sets the default.")
    if not spec.strip():
        st.info("Type the folder that holds Stanford Cars (Cars196), or set CARS196_DIR before starting. "
                "tfds.load('cars196') cannot download it any more (URLs 404 since 2023): use a mirror.")
        return None
    try:
        return _open(spec.strip())
    except (DatasetError, OSError) as error:
        st.error(f"This dataset cannot be opened: {error}")
        return None


def split_ious(loaded, split, indices: np.ndarray, choice, target_for, target_key, display,
               method: str) -> np.ndarray:
    """IoU of ``method``'s main box for every photo in ``indices`` (NaN where a photo cannot be read).

    Raw maps are tiny, so they are computed once per (model, split, method settings) and kept; moving
    the threshold only re-localises.
    """
    from core.explanation import localize, photo_heatmap

    key = ("split_raw", loaded.key, split.name, id(split), choice.methods, choice.layer, target_key,
           choice.variant, choice.pipeline.recipe)
    store = st.session_state.setdefault("split_raw", {})
    if store.get("key") != key:
        store.clear()
        store["key"] = key
    raws = store.setdefault("raws", {})
    todo = [int(i) for i in indices if int(i) not in raws]
    if todo:
        bar = st.progress(0.0, text=f"Explaining {len(todo)} photos…")
        for start in range(0, len(todo), 16):
            chunk = todo[start:start + 16]
            records = []
            for i in chunk:
                try:
                    records.append((i, split[i]))
                except ImageDecodeError:
                    raws[i] = None
            results = loaded.explainer_for(choice.pipeline).explain(
                [r.image for _, r in records], methods=choice.methods, layer=choice.layer,
                target=[target_for(r) for _, r in records], variant=choice.variant)
            for (i, record), raw in zip(records, results):
                raws[i] = (raw, record.image.shape[:2], record.box)
            bar.progress(min(1.0, (start + len(chunk)) / len(todo)), text=f"Explained {start + len(chunk)} "
                                                                          f"of {len(todo)} photos")
        bar.empty()
    values = np.full(len(indices), np.nan)
    for n, i in enumerate(indices):
        entry = raws.get(int(i))
        if entry is None or entry[2] is None:
            continue
        raw, (height, width), box = entry
        layer = next(layer for m, layer in raw.maps if m == method)
        heatmap = photo_heatmap(raw, method, layer, height, width, display.interpolation)
        values[n] = localize(heatmap, display.box_for(method), box).iou
    return values
