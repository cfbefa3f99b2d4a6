"""Drawing a method's stages (``core.stages``): one row per stage, a picture on the left, one plain
sentence and the formula on the right. Nothing here computes a map; it only shows the arrays."""

from __future__ import annotations

import re
from collections import OrderedDict

import cv2
import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.cam import RunOptions, Target
from core.explanation import GROUND_TRUTH_COLOR, PREDICTED_COLOR
from core.methods import METHODS, Stopped
from core.overlay import blend, draw_boxes
from core.stages import CHANNEL_RULES, NetworkStages, Stages, network_stages

_CACHE_KEY = "stage_networks"
_CACHE_SIZE = 8
_STOPPED_KEY = "stages_stopped"
_BARS = 40  # channels in the weights chart: the largest, enough to see how fast weights fall off

# How each method weights the channels, for the "weights" stage; a method missing here shows its docstring.
WEIGHT_FORMULAS = {
    "cam": r"\alpha_k = \sum_c \pi_c\, W_{k,c}",
    "gradcam": r"\alpha_k = \frac{1}{Z}\sum_{i,j} \frac{\partial y}{\partial A^k_{ij}}",
    "finercam": r"\alpha_k = \frac{1}{Z}\sum_{i,j} \frac{\partial}{\partial A^k_{ij}}"
                r"\frac{\sum_j p_j (z_c - z_j)}{\sum_j p_j}",
    "gradcampp": r"\alpha_k = \sum_{i,j} a^k_{ij}\,\mathrm{ReLU}(g^k_{ij}),\quad "
                 r"a^k_{ij} = \frac{(g^k_{ij})^2}{2 (g^k_{ij})^2 + \sum_{a,b} A^k_{ab}\,(g^k_{ij})^3}",
    "xgradcam": r"\alpha_k = \sum_{i,j} \frac{A^k_{ij}}{\sum_{a,b} A^k_{ab}}\, g^k_{ij}",
    "hirescam": r"W^k_{ij} = g^k_{ij} \quad(\text{a weight per position})",
    "gradcam_elementwise": r"(W \odot A)^k_{ij} = \mathrm{ReLU}(g^k_{ij} A^k_{ij})",
    "layercam": r"W^k_{ij} = \mathrm{ReLU}(g^k_{ij}) \quad(\text{a weight per position})",
    "scorecam": r"\alpha_k = \mathrm{softmax}_k\; s\big(X \odot \mathrm{up}(A^k)\big)",
    "fastscorecam": r"\alpha_k = \mathrm{softmax}_k\; s\big(X \odot \mathrm{up}(A^k)\big)"
                    r"\ \text{(64 most varied channels)}",
    "ablationcam": r"\alpha_k = \frac{s - s_{A^k = 0}}{s}",
    "sscam": r"\alpha_k = \mathrm{softmax}_k\; \frac{1}{N}\sum_{i=1}^{N} s\big(X \odot (\mathrm{up}(A^k) + \delta_i)\big),"
             r"\quad \delta_i \sim \mathcal{N}(0, \sigma^2)",
    "iscam": r"\alpha_k = \mathrm{softmax}_k\; \frac{1}{N}\sum_{i=1}^{N} s\big(c_i\, X \odot \mathrm{up}(A^k)\big),"
             r"\quad c_i = \sum_{j \le i} \tfrac{j}{N}",
    "smoothgradcampp": r"\alpha_k = \sum_{i,j} \frac{D_2}{2 D_2 + \sum_{a,b} A^k_{ab} D_3}\,\mathrm{ReLU}(D_1),\quad "
                       r"D_p = \frac{1}{n}\sum_{m=1}^{n} \big(g^k_{ij}(X + \varepsilon_m)\big)^p",
}
SUM_FORMULAS = {
    "weights": r"M = \sum_k \alpha_k A^k",
    "perturbation": r"M = \sum_k \alpha_k A^k",
    "weighted": r"M_{ij} = \sum_k (W \odot A)^k_{ij}",
    "map": r"M = (A - \bar A)\, v_1 \quad (v_1:\ \text{first principal direction})",
    "input": r"M = \psi(|x \odot \nabla_x y|) + \sum_l \psi(|b_l \odot \nabla_{z_l} y|),\quad "
             r"\psi(T) = \sum_c \mathrm{resize}(\mathrm{minmax}(T_c))",
}
MAP_FORMULAS = {  # "map" methods whose map is not Eigen-CAM's projection of A
    "eigengradcam": r"M = (g \odot A - \overline{g \odot A})\, v_1",
    "kpcacam": r"M = \sqrt{\lambda_1}\, u_1,\quad u_1:\ \text{top eigenvector of the centred } "
               r"K_{pq} = \tanh(\langle a_p, a_q \rangle / K + 1)",
}


def _stage(title: str, sentence: str, formula: str | None = None, ratio=(3, 2)):
    """A stage's header and its text column; returns the picture column."""
    st.subheader(title, divider="gray")
    picture, text = st.columns(ratio)
    with text:
        st.markdown(sentence)
        if formula:
            st.latex(_stacked(formula))
    return picture


def _stacked(formula: str) -> str:
    """The formula's clauses (joined by ``,\\quad`` or ``,\\qquad``) one per line: KaTeX never wraps, and
    FullGrad's or Grad-CAM++'s formula on one line ran past the text column's right edge."""
    clauses = re.split(r",\s*\\q?quad\s*", formula)
    if len(clauses) == 1:
        return formula
    return r"\begin{gathered}" + r",\\[0.4em] ".join(clauses) + r"\end{gathered}"


def _term_title(name: str) -> str:
    """A FullGrad term's name on two short lines ("block_16<br>depthwise_BN"): six long layer names in one
    row overlapped."""
    layer = name.replace(" bias × gradient", "").replace(" × gradient", "")
    parts = layer.split("_")
    return "_".join(parts[:2]) + ("<br>" + "_".join(parts[2:]) if len(parts) > 2 else "")


def _small_multiples(maps: np.ndarray, titles: list[str], colorscale: str, centred: bool) -> go.Figure:
    """(h, w, k) maps as k heatmaps in a row, values on hover; ``centred`` puts 0 at the scale's middle."""
    count = maps.shape[-1]
    figure = make_subplots(1, count, subplot_titles=titles, horizontal_spacing=0.02)
    figure.update_annotations(font_size=10)
    limit = float(np.abs(maps).max()) or 1.0
    for i in range(count):
        figure.add_trace(go.Heatmap(
            z=maps[..., i], colorscale=colorscale, showscale=i == count - 1,
            zmin=-limit if centred else None, zmax=limit if centred else None, zmid=0 if centred else None,
            hovertemplate="row %{y}, col %{x}<br>%{z:.4g}<extra></extra>"), 1, i + 1)
        figure.update_yaxes(autorange="reversed", scaleanchor=f"x{i + 1 if i else ''}", showticklabels=False,
                            row=1, col=i + 1)
        figure.update_xaxes(showticklabels=False, row=1, col=i + 1)
    wrapped = any("<br>" in t for t in titles)
    figure.update_layout(height=190 if wrapped else 170, margin=dict(l=0, r=0, t=40 if wrapped else 24, b=0))
    return figure


def _map_figure(values: np.ndarray, centred: bool = False, height: int = 340) -> go.Figure:
    limit = float(np.abs(values).max()) or 1.0
    figure = go.Figure(go.Heatmap(
        z=values, colorscale="RdBu_r" if centred else "Jet", zmid=0 if centred else None,
        zmin=-limit if centred else None, zmax=limit if centred else None,
        hovertemplate="row %{y}, col %{x}<br>value %{z:.4g}<extra></extra>"))
    figure.update_yaxes(autorange="reversed", scaleanchor="x")
    figure.update_layout(height=height, margin=dict(l=0, r=0, t=10, b=0))
    return figure


def _weights_chart(weights: np.ndarray, shown: np.ndarray, label: str, names=()) -> go.Figure:
    order = np.argsort(-weights, kind="stable")[:_BARS]
    colours = ["#d62728" if k in set(shown.tolist()) else "#7f7f7f" for k in order]
    what = "term" if names else "channel"
    figure = go.Figure(go.Bar(x=[names[k] if names else f"#{k}" for k in order], y=weights[order],
                              marker_color=colours,
                              hovertemplate=what + " %{x}<br>" + label + " %{y:.4g}<extra></extra>"))
    figure.update_layout(height=300, margin=dict(l=0, r=0, t=10, b=0), xaxis_title=f"{what} (largest first)",
                         yaxis_title=label, xaxis_type="category")
    return figure


def _region_colours(photo: np.ndarray, labels: np.ndarray, main_box) -> np.ndarray:
    """Each connected region in its own colour over the dimmed photo."""
    dimmed = (photo * 0.35).astype(np.uint8)
    count = int(labels.max())
    if count == 0:
        return dimmed
    hues = (np.arange(count + 1) * 47) % 180  # well-separated hues, stable per label
    palette = cv2.cvtColor(np.stack([hues, np.full_like(hues, 200), np.full_like(hues, 255)], axis=1)
                           .astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0]
    image = np.where(labels[..., None] > 0, (0.3 * photo + 0.7 * palette[labels]).astype(np.uint8), dimmed)
    if main_box is not None:
        image = draw_boxes(image, [main_box], color=PREDICTED_COLOR, labels=["box"])
    return image


def render_stages(stages: Stages, photo: np.ndarray, ground_truth, alpha: float, colormap: str) -> None:
    """Every stage of ``stages`` for ``photo`` (RGB, the photo's own size), top to bottom."""
    net = stages.network
    entry = METHODS[net.method]
    height, width = net.raw.shape
    in_h, in_w = net.photo_input.shape[:2]

    with _stage("1 · The photo at the network's input size",
                f"The photo ({photo.shape[1]}×{photo.shape[0]}) is resized to the {in_w}×{in_h} pixels the "
                "network takes, then preprocessed as it was trained.", r"X = \mathrm{resize}(I,\ "
                f"{in_w}" r"\times " f"{in_h})"):
        st.image(net.photo_input, width=min(int(1.5 * in_w), 336))

    k_text = f"{len(net.channels)} of {net.channel_count}"
    if net.kind == "input":
        with _stage("2 · The terms that matter most",
                    f"{entry.label} ignores the layer: it adds |input × gradient| and, for each of the "
                    f"{net.channel_count - 1} layers with a bias, |bias × gradient|, every channel scaled to "
                    f"0…1, resized to the {width}×{height} input and summed. Shown: {k_text} terms, those "
                    f"with {CHANNEL_RULES[net.kind]}.", SUM_FORMULAS["input"]):
            titles = [_term_title(net.channel_names[k]) for k in net.channels]
            st.plotly_chart(_small_multiples(net.activations, titles, "Viridis", False), width="stretch",
                            key="stage_activations")
    else:
        with _stage("2 · The feature maps that matter most",
                    f"Layer `{net.layer}` turns the photo into feature maps of {height}×{width} cells, one per "
                    f"channel. Shown: {k_text} channels, those with {CHANNEL_RULES[net.kind]}.",
                    r"A^k \in \mathbb{R}^{" f"{height}" r"\times " f"{width}" r"},\quad k = 1,\dots,K"):
            st.plotly_chart(_small_multiples(net.activations, [f"#{k}" for k in net.channels], "Viridis",
                                             False), width="stretch", key="stage_activations")

    if net.gradients is not None:
        flat = np.ptp(net.gradients, axis=(0, 1)).max() <= 1e-6 * (np.abs(net.gradients).max() or 1.0)
        with _stage("2b · The gradients",
                    "How much the class score y would rise if a cell of a feature map grew: red raises it, "
                    "blue lowers it (same channels as above)."
                    + (" Here every cell of a channel has the same gradient: after this layer the network "
                       "only averages the maps (global pooling) and weighs the averages."
                       if flat else ""),
                    r"g^k_{ij} = \frac{\partial y}{\partial A^k_{ij}}"):
            st.plotly_chart(_small_multiples(net.gradients, [f"#{k}" for k in net.channels], "RdBu_r", True),
                            width="stretch", key="stage_gradients")
    else:
        st.caption(f"No gradient stage: {net.not_applicable['gradients']}")

    weight_label = {"weighted": "contribution", "input": "share"}.get(net.kind, "weight α")
    picture = _stage("3 · Their weights",
                     f"{entry.label} gives no weights to channels." if net.weights is None else
                     f"{entry.label} weighs no channel: every term counts once. The bars show each term's "
                     "share of the map. Red bars are the terms shown above." if net.kind == "input" else
                     f"{entry.label} gives each channel a weight: how much that feature map counts for the "
                     "class. " + ("Its weights differ per position, so the bars show each channel's total "
                                  "contribution. " if net.kind == "weighted" else "")
                     + "Red bars are the channels shown above.",
                     WEIGHT_FORMULAS.get(net.method))
    with picture:
        if net.weights is None:
            st.info(net.not_applicable["weights"])
        else:
            st.plotly_chart(_weights_chart(net.weights, net.channels, weight_label, net.channel_names),
                            width="stretch", key="stage_weights")
            if net.method not in WEIGHT_FORMULAS:
                st.caption(entry.doc)

    sum_title = {"map": "4 · The method's own map", "input": "4 · The sum of the terms"}.get(
        net.kind, "4 · The weighted sum")
    sum_text = {"map": f"{entry.label} does not weight channels: it projects every cell's activations on "
                       "their main direction of variation (a principal component).",
                "input": "Adding the terms gives the raw map, already at the input's resolution."}.get(
        net.kind, "Adding the feature maps, each times its weight, gives the raw map: low resolution, any sign.")
    sum_formula = MAP_FORMULAS.get(net.method, SUM_FORMULAS[net.kind])
    with _stage(sum_title, sum_text + f" ({height}×{width}, hover for the values.)", sum_formula):
        st.plotly_chart(_map_figure(net.raw, centred=True), width="stretch", key="stage_raw")

    normalized = stages.normalized
    relu_formula = r"M^+ = \max(M, 0)" if normalized.relu else r"M^+ = M \ \text{(no ReLU)}"
    scale_formula = (r"\hat M = \frac{M^+ - \min M^+}{\max M^+ - \min M^+}" if normalized.mode == "minmax"
                     else r"\hat M = \frac{M^+}{\max M^+}")
    with _stage("5 · ReLU and normalisation",
                ("Negative evidence is dropped (ReLU), " if normalized.relu else
                 f"{entry.label} keeps negative values (no ReLU, as its paper or the chosen recipe says), ")
                + "then the map is scaled to 0…1 so one threshold fits every photo.",
                relu_formula + r",\qquad " + scale_formula):
        left, right = st.columns(2)
        left.caption("after ReLU" if normalized.relu else "kept as it is (no ReLU)")
        right.caption("normalised to 0…1")
        left.plotly_chart(_map_figure(stages.after_relu, centred=True, height=260), width="stretch",
                          key="stage_relu")
        right.plotly_chart(_map_figure(normalized.values, height=260), width="stretch",
                           key="stage_normalized")
    if normalized.status:
        st.warning(normalized.status)

    with _stage("6 · Upsampling to the photo",
                f"The {height}×{width} map is stretched smoothly (bilinear) to the photo's "
                f"{photo.shape[1]}×{photo.shape[0]} pixels and laid over it.",
                r"H = \mathrm{bilinear}(\hat M)\ \in [0, 1]^{"
                f"{photo.shape[0]}" r"\times " f"{photo.shape[1]}" "}"):
        st.image(blend(photo, stages.upsampled.values, alpha, colormap), width="stretch")

    share = float(stages.mask.mean())
    with _stage(f"7 · The threshold τ = {stages.threshold:.2f}",
                f"Pixels at least τ times the map's peak are kept: {share:.1%} of the photo.",
                r"B_{xy} = \big[\, H_{xy} \ge \tau \cdot \max H \,\big]"):
        shown = (photo * (0.25 + 0.75 * stages.mask[..., None])).astype(np.uint8)
        st.image(shown, width="stretch", caption="kept pixels bright, the rest dimmed")

    with _stage("8 · Connected regions",
                f"Touching kept pixels (8 neighbours) form regions: {stages.region_count} here, each in its "
                "own colour (OpenCV connectedComponents).",
                r"R_1, \dots, R_n:\ \text{8-connected components of } B"):
        st.image(_region_colours(photo, stages.labels, stages.box), width="stretch")

    box = stages.box
    with _stage("9 · The box",
                "The largest region's bounding rectangle is the box (more regions: most pixels first)."
                if box is not None else "No pixel reaches τ: there is no region and no box. Lower τ.",
                r"(x_1, y_1, x_2, y_2) = \mathrm{bbox}(R_{\max})"):
        if box is not None:
            st.image(draw_boxes(photo, [box], color=PREDICTED_COLOR, labels=["box"]), width="stretch")
            st.caption(f"Box (x1, y1, x2, y2) = ({box[0]:.0f}, {box[1]:.0f}, {box[2]:.0f}, {box[3]:.0f})")

    with _stage("10 · IoU with the ground truth",
                "How well the box matches the annotated car: the overlap divided by the area the two cover."
                if ground_truth is not None else "This photo has no ground-truth box, so no IoU: pick the "
                "sample drawing or a photo on the Explore page.",
                r"\mathrm{IoU} = \frac{|B \cap G|}{|B \cup G|}"):
        if ground_truth is not None:
            image = draw_boxes(photo, [np.asarray(ground_truth, float)], color=GROUND_TRUTH_COLOR,
                               labels=["truth"])
            if box is not None:
                image = draw_boxes(image, [box], color=PREDICTED_COLOR, labels=[f"IoU {stages.iou:.2f}"])
            st.image(image, width="stretch")
            st.metric("IoU with the ground truth", f"{stages.iou:.3f}")


def _stop(key) -> None:
    st.session_state[_STOPPED_KEY] = key


def _resume() -> None:
    st.session_state.pop(_STOPPED_KEY, None)


def cached_network_stages(loaded, photo, method: str, layer: str, target: Target,
                          variant: str) -> NetworkStages | None:
    """The network half of the stages, once per (model, photo, method, layer, class, recipe) in this
    session: moving τ, α or the colormap re-uses it. Slow methods show progress and a Stop button; a
    stopped or impossible request shows why and returns None."""
    cache: OrderedDict = st.session_state.setdefault(_CACHE_KEY, OrderedDict())
    key = (loaded.key, photo.key, method, layer, target, variant)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    entry = METHODS[method]
    if st.session_state.get(_STOPPED_KEY) == key:
        st.info(f"Stopped: {entry.label} was not computed for this photo.")
        st.button(f"Compute {entry.label}", key="stages_resume", on_click=_resume)
        return None
    holder = st.empty()
    options = RunOptions()
    if not entry.one_pass:
        with holder.container():
            bar = st.progress(0.0, text=f"{entry.label}: starting…")
            st.button("Stop", key="stages_stop", on_click=_stop, args=(key,))
        options = RunOptions(progress=lambda _, done, total: bar.progress(
            done / max(total, 1), text=f"{entry.label}: {done}/{total} {entry.progress_unit}"))
    try:
        network = network_stages(loaded.explainer, photo.image, method, layer, target, variant,
                                 options=options)
    except Stopped:
        holder.empty()
        return None
    except ValueError as error:  # includes ModelStructureError: a method or layer this model cannot do
        holder.empty()
        st.error(f"{entry.label} cannot be taken apart here: {error}")
        st.info("Pick another method or layer in the sidebar.")
        return None
    holder.empty()
    cache[key] = network
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return network
