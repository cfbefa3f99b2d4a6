"""The leaderboard on the dashboard: the sortable table, the ranking chart, the deletion/insertion curves,
and a method's standing wherever a method is chosen."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from core.evaluate.cli_format import leaderboard_frame_rows
from core.evaluate.leaderboard import shipped_leaderboards, standing
from core.methods import METHODS


def _label(method: str) -> str:
    return METHODS[method].label if method in METHODS else method


def numeric_rows(board: dict) -> list[dict]:
    """One row per method with each metric's mean as a number (the table sorts by clicking a header)."""
    rows = []
    for row in board["rows"]:
        entry = {"Method": _label(row["method"])}
        for column in board["metrics"]:
            entry[column["label"] + (" ↑" if column["higher_is_better"] else " ↓")] = row[column["key"]]["mean"]
        rows.append(entry)
    return rows


def ranking_figure(board: dict, key: str) -> go.Figure:
    """Methods ranked on one metric, best first, with the bootstrap interval as error bars."""
    column = next(c for c in board["metrics"] if c["key"] == key)
    cells = [(r["method"], r[key]) for r in board["rows"] if r[key]["mean"] is not None]
    cells.sort(key=lambda item: item[1]["mean"], reverse=column["higher_is_better"])
    names = [_label(m) for m, _ in cells]
    means = [c["mean"] for _, c in cells]
    figure = go.Figure(go.Bar(
        x=means, y=names, orientation="h",
        error_x={"type": "data", "symmetric": False, "array": [c["high"] - c["mean"] for _, c in cells],
                 "arrayminus": [c["mean"] - c["low"] for _, c in cells]},
        hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    direction = "higher is better" if column["higher_is_better"] else "lower is better"
    figure.update_layout(title=f"{column['label']} ({direction}; {int(board['level'] * 100)} % intervals)",
                         yaxis={"autorange": "reversed"}, height=60 + 28 * len(names),
                         margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return figure


def curves_figure(board: dict, key: str) -> go.Figure | None:
    """Mean deletion or insertion curve of every method (score against the share of pixels perturbed)."""
    curves = (board.get("curves") or {}).get(key)
    if not curves:
        return None
    column = next(c for c in board["metrics"] if c["key"] == key)
    fractions = board["curve_fractions"]
    figure = go.Figure([go.Scatter(x=fractions, y=values, mode="lines", name=_label(method))
                        for method, values in curves.items()])
    figure.update_layout(title=f"{column['label']}: mean curve", xaxis_title="share of pixels perturbed",
                         yaxis_title="target score", height=360, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return figure


def show_board(board: dict, key_prefix: str) -> None:
    """Table (sortable), ranking chart of a chosen metric and the curves, for one leaderboard."""
    st.dataframe(numeric_rows(board), hide_index=True, width="stretch",
                 column_config={name: st.column_config.NumberColumn(format="%.3f")
                                for name in numeric_rows(board)[0] if name != "Method"})
    with st.expander("With 95 % bootstrap intervals and photo counts"):
        st.dataframe(leaderboard_frame_rows(board), hide_index=True, width="stretch")
        counts = {c["label"]: board["rows"][0][c["key"]]["n"] for c in board["metrics"]}
        st.caption("Photos per metric: " + " · ".join(f"{k} {v}" for k, v in counts.items()))
    labels = {c["key"]: c["label"] for c in board["metrics"]}
    chosen = st.selectbox("Rank the methods by", list(labels), format_func=labels.get,
                          key=f"{key_prefix}_rank_metric")
    st.plotly_chart(ranking_figure(board, chosen), width="stretch", key=f"{key_prefix}_ranking")
    curve_keys = [k for k in ("deletion", "insertion", "deletion_blur", "insertion_zero")
                  if (board.get("curves") or {}).get(k)]
    columns = st.columns(2) if curve_keys else []
    for index, key in enumerate(curve_keys):
        figure = curves_figure(board, key)
        columns[index % 2].plotly_chart(figure, width="stretch", key=f"{key_prefix}_curve_{key}")
    cost = board.get("cost")
    if cost:
        ms = " · ".join(f"{family} {value:.0f} ms" for family, value in cost["ms_per_photo_per_method"].items()
                        if value)
        st.caption(f"Measured cost per photo and method at {cost['input']}: {ms}.")


def shipped_boards_for(model_name: str) -> list[dict]:
    """Every shipped board of ``model_name`` (main first); [] when there is none or the file is unreadable."""
    try:
        return [b for b in shipped_leaderboards() if b.get("model") == model_name]
    except ValueError:
        return []


def shipped_board_for(model_name: str | None = None) -> dict | None:
    """The first shipped board (of ``model_name`` when given); None when there is none or it is unreadable."""
    try:
        boards = shipped_leaderboards()
    except ValueError:
        return None
    return next((b for b in boards if model_name is None or b.get("model") == model_name), None)


def standing_caption(methods, model_name: str | None = None, board: dict | None = None) -> str | None:
    """"Grad-CAM++: #1/11 Mean IoU, …" for the chosen methods on the shipped board of the model."""
    board = board or shipped_board_for(model_name)
    if not board:
        return None
    parts = []
    for method in methods:
        places = standing(board, method)
        if places:
            best = sorted(places, key=lambda p: p["rank"])[:3]
            parts.append(f"{_label(method)}: " + ", ".join(f"#{p['rank']}/{p['of']} {p['label']}" for p in best))
    if not parts:
        return None
    return "On the shipped leaderboard (" + board.get("title", "") + "): " + " · ".join(parts)


def _open_in_explore(data: str, split: str, position: int) -> None:
    """Point Explore at this photo (dataset, split, all classes, dataset order) before switching."""
    st.session_state.update({"dataset_path": data, "explore_split": split, "explore_class": -1,
                             "explore_order": "dataset order", "explore_position": position})


def _worst_overlay(results, row: dict, method: str, split):
    """The photo with the evaluated map, the evaluated box (red) and the truth (green), or None."""
    import numpy as np

    from core.evaluate.outputs import stored_map
    from core.explanation import normalization_for
    from core.heatmaps import normalize_map, upsample
    from core.overlay import blend, draw_boxes

    raw = stored_map(results.folder, row["id"], method)
    if raw is None:
        return None
    record = split[split.annotations.ids.index(row["id"])]
    relu, mode = normalization_for(method, results.summary["pipeline"].get("variant", "paper"))
    heat = normalize_map(raw, relu=relu, mode=mode).values
    height, width = record.image.shape[:2]
    image = blend(record.image, np.clip(upsample(heat, height, width), 0, 1), 0.45, "jet")
    if record.box is not None:
        image = draw_boxes(image, [np.asarray(record.box, float)], color=(40, 220, 60), labels=["truth"])
    box = [row.get(f"{method}_{s}") for s in ("x1", "y1", "x2", "y2")]
    if all(v not in (None, "") for v in box):
        image = draw_boxes(image, [np.array([float(v) for v in box])], color=(255, 40, 40),
                           labels=[f"IoU {float(row[f'{method}_iou']):.2f}"])
    return image


def worst_photos(results, count: int = 4) -> None:
    """A chosen method's worst photos by IoU, drawn from the evaluated maps, each one click from Explore."""
    from core.data import DatasetError, open_dataset
    from ui.navigation import PAGE_FILES

    summary = results.summary
    methods = summary["pipeline"]["methods"]
    method = st.selectbox("Worst photos of", methods, format_func=_label, key="eval_worst_method")
    scored = [r for r in results.per_photo if r.get(f"{method}_iou") not in (None, "")]
    scored.sort(key=lambda r: float(r[f"{method}_iou"]))
    if not scored:
        st.info("No photo of this run has a ground-truth box to rank.")
        return
    try:
        split = open_dataset(summary["data"])[summary["split"]]
    except (DatasetError, OSError, KeyError) as error:
        st.info(f"The photos are not readable here ({error}); worst by IoU: "
                + ", ".join(f"{r['id']} ({float(r[f'{method}_iou']):.2f})" for r in scored[:count]))
        return
    explore = next(script for script, title, _ in PAGE_FILES if title == "Explore")
    for column, row in zip(st.columns(count), scored[:count]):
        image = _worst_overlay(results, row, method, split)
        if image is None:
            column.caption(f"{row['id']}: its map is no longer stored")
        else:
            column.image(image, caption=f"{row['id']} · IoU {float(row[f'{method}_iou']):.2f}")
        position = split.annotations.ids.index(row["id"]) + 1
        if column.button("Open in Explore", key=f"eval_worst_{method}_{row['id']}",
                         on_click=_open_in_explore, args=(summary["data"], summary["split"], position)):
            st.switch_page(explore)
