"""The evaluation's three charts, as Plotly JSON (the dashboard renders it) and as PNG files.

* ``iou_histogram``: per-photo IoU at the chosen τ, one histogram per method;
* ``boxacc_vs_tau``: BoxAcc@δ against τ per method, with the chosen τ marked;
* ``cam_vs_gradcam``: each photo's CAM IoU against its Grad-CAM IoU (when both were evaluated).

The data of each chart is prepared once (:func:`chart_data`); Plotly and matplotlib only draw it. PNGs need
matplotlib (Agg backend, no display); Plotly's own PNG export needs a browser download, which this project
never does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.files import write_atomically
from core.methods import METHODS

__all__ = ["chart_data", "plotly_figures", "write_plots", "LABELS"]

LABELS = {key: entry.label for key, entry in METHODS.items()}
_PALETTE = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39")
COLORS = {key: _PALETTE[i % len(_PALETTE)] for i, key in enumerate(METHODS)}
DASHES = {"0.3": "dot", "0.5": "solid", "0.7": "dash"}
_MPL_DASHES = {"dot": ":", "solid": "-", "dash": "--"}


def _ious(rows, method) -> np.ndarray:
    return np.array([r[f"{method}_iou"] for r in rows if r.get(f"{method}_iou") is not None], dtype=float)


def chart_data(summary: dict, rows: list[dict], methods) -> dict:
    """Everything the charts show, as plain lists (no plotting library needed)."""
    data = {
        "iou_histogram": {m: _ious(rows, m).tolist() for m in methods},
        "boxacc_vs_tau": {
            "thresholds": summary["thresholds"],
            "series": {m: summary[m]["curves"]["boxacc"] for m in methods},
            "chosen": {m: summary[m]["tau"] for m in methods},
        },
    }
    if "cam" in methods and "gradcam" in methods:
        pairs = [(r["cam_iou"], r["gradcam_iou"], r["id"]) for r in rows if r.get("cam_iou") is not None]
        data["cam_vs_gradcam"] = {"cam": [p[0] for p in pairs], "gradcam": [p[1] for p in pairs],
                                  "ids": [p[2] for p in pairs]}
    return data


def _single(value) -> float | None:
    return value if isinstance(value, (int, float)) else None  # k-fold: several τ, none marked


def plotly_figures(data: dict) -> dict:
    """Plotly figures from :func:`chart_data`."""
    import plotly.graph_objects as go

    figures = {}
    hist = go.Figure()
    for method, values in data["iou_histogram"].items():
        hist.add_trace(go.Histogram(x=values, name=LABELS[method], marker_color=COLORS[method], opacity=0.6,
                                    xbins={"start": 0, "end": 1.0001, "size": 0.05}))
    hist.update_layout(barmode="overlay", title="IoU per photo at the chosen τ", xaxis_title="IoU",
                       yaxis_title="photos")
    figures["iou_histogram"] = hist
    curves = go.Figure()
    sweep = data["boxacc_vs_tau"]
    for method, series in sweep["series"].items():
        for delta, values in series.items():
            curves.add_trace(go.Scatter(x=sweep["thresholds"], y=values, mode="lines",
                                        name=f"{LABELS[method]} BoxAcc@{delta}",
                                        line={"color": COLORS[method], "dash": DASHES.get(delta, "solid")}))
        tau = _single(sweep["chosen"][method])
        if tau is not None:
            curves.add_vline(x=tau, line_color=COLORS[method], line_width=1,
                             annotation_text=f"{LABELS[method]} τ={tau:.2f}")
    curves.update_layout(title="BoxAcc against τ (largest component)", xaxis_title="τ (fraction of peak)",
                         yaxis_title="BoxAcc", yaxis_range=[0, 1])
    figures["boxacc_vs_tau"] = curves
    if "cam_vs_gradcam" in data:
        pair = data["cam_vs_gradcam"]
        scatter = go.Figure(go.Scatter(x=pair["cam"], y=pair["gradcam"], mode="markers", text=pair["ids"],
                                       marker={"size": 6, "opacity": 0.6}, name="photos"))
        scatter.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"color": "grey", "dash": "dot"},
                                     name="equal"))
        scatter.update_layout(title="CAM IoU against Grad-CAM IoU, per photo", xaxis_title="CAM IoU",
                              yaxis_title="Grad-CAM IoU", xaxis_range=[0, 1], yaxis_range=[0, 1])
        figures["cam_vs_gradcam"] = scatter
    return figures


def _png_figures(data: dict) -> dict:
    """matplotlib figures with the same content (PNG files for reports)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figures = {}
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    for method, values in data["iou_histogram"].items():
        ax.hist(values, bins=np.linspace(0, 1, 21), alpha=0.6, color=COLORS[method], label=LABELS[method])
    ax.set(title="IoU per photo at the chosen τ", xlabel="IoU", ylabel="photos")
    ax.legend()
    figures["iou_histogram"] = fig
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    sweep = data["boxacc_vs_tau"]
    for method, series in sweep["series"].items():
        for delta, values in series.items():
            ax.plot(sweep["thresholds"], values, color=COLORS[method],
                    linestyle=_MPL_DASHES[DASHES.get(delta, "solid")], label=f"{LABELS[method]} @{delta}")
        tau = _single(sweep["chosen"][method])
        if tau is not None:
            ax.axvline(tau, color=COLORS[method], linewidth=0.8)
    ax.set(title="BoxAcc against τ (largest component)", xlabel="τ (fraction of peak)", ylabel="BoxAcc",
           ylim=(0, 1))
    ax.legend(fontsize=7)
    figures["boxacc_vs_tau"] = fig
    if "cam_vs_gradcam" in data:
        fig = Figure(figsize=(5, 5), dpi=100)
        ax = fig.add_subplot()
        ax.scatter(data["cam_vs_gradcam"]["cam"], data["cam_vs_gradcam"]["gradcam"], s=10, alpha=0.6)
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        ax.set(title="CAM IoU against Grad-CAM IoU", xlabel="CAM IoU", ylabel="Grad-CAM IoU", xlim=(0, 1),
               ylim=(0, 1))
        figures["cam_vs_gradcam"] = fig
    return figures


def write_plots(folder: Path, summary: dict, rows: list[dict], methods) -> dict:
    """Write ``plots/<name>.json`` (Plotly) and ``plots/<name>.png``; returns what was written or why not."""
    folder = Path(folder) / "plots"
    data = chart_data(summary, rows, methods)
    written = {"plotly": [], "png": []}
    for name, figure in plotly_figures(data).items():
        write_atomically(folder / f"{name}.json", figure.to_json())
        written["plotly"].append(f"plots/{name}.json")
    write_atomically(folder / "chart_data.json", json.dumps(data))
    try:
        pngs = _png_figures(data)
    except ImportError:
        written["png_note"] = "PNG charts skipped: matplotlib is not installed (pip install matplotlib)"
        return written
    for name, figure in pngs.items():
        import io

        buffer = io.BytesIO()
        figure.tight_layout()
        figure.savefig(buffer, format="png")
        write_atomically(folder / f"{name}.png", buffer.getvalue())
        written["png"].append(f"plots/{name}.png")
    return written
