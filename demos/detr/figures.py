"""Plotly figures of the DETR tab: every query's class probabilities, the cost matrix, the loss."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from demos.detr.compute import DetrResult, Matching
from demos.common.shapes_world import SHAPES
from playground.plots import COLORS, figure, message_figure

NO_OBJECT_COLOUR = "#9ca3af"
MAX_CLASS_BARS = 6  # beyond this many classes (COCO), show best / other classes / no object


def queries_figure(result: DetrResult, threshold: float, selected: int | None = None) -> go.Figure:
    """A stacked bar per query: p(class) for each class and p(no object); shown queries marked."""
    probs, names = result.queries.probs, result.class_names  # (N, K+1)
    n = len(probs)
    x = [f"q{j}" for j in range(n)]
    fig = figure("Every query's prediction: p(class) and p(no object)", "query j", "probability", height=330)
    if len(names) <= MAX_CLASS_BARS:
        for k, name in enumerate(names):
            fig.add_bar(x=x, y=probs[:, k], name=name, marker_color=COLORS[k % len(COLORS)])
    else:
        best = result.queries.scores
        fig.add_bar(x=x, y=best, name="best class", marker_color=COLORS[0],
                    text=[names[c] for c in result.queries.labels], textposition="inside")
        fig.add_bar(x=x, y=1 - best - probs[:, -1], name="other classes", marker_color=COLORS[5])
    fig.add_bar(x=x, y=probs[:, -1], name="no object ∅", marker_color=NO_OBJECT_COLOUR)
    fig.add_hline(y=threshold, line_dash="dash", line_color="#111827", annotation_text=f"τ = {threshold:.2f}")
    shown = result.queries.scores >= threshold
    fig.add_scatter(x=[x[j] for j in np.flatnonzero(shown)], y=[1.04] * int(shown.sum()), mode="markers",
                    marker={"symbol": "triangle-down", "size": 9, "color": "#111827"}, name="shown (p ≥ τ)")
    if selected is not None and 0 <= selected < n:
        fig.add_vrect(x0=selected - 0.5, x1=selected + 0.5, line_width=2, line_color="#22d3ee", fillcolor="rgba(0,0,0,0)")
    fig.update_layout(barmode="stack", bargap=0.15)
    fig.update_yaxes(range=[0, 1.08])
    fig.update_xaxes(tickangle=0 if n <= 20 else -90)
    return fig


def cost_figure(matching: Matching, truth_labels: np.ndarray) -> go.Figure:
    """Heatmap of C (queries x objects) with the optimal assignment circled."""
    total = matching.cost.total  # (N, M)
    n, m = total.shape
    objects = [f"o{i} {SHAPES[int(c)]}" for i, c in enumerate(truth_labels)]
    queries = [f"q{j}" for j in range(n)]
    fig = figure("Matching cost C (rows: queries, columns: objects)", "object i", "query j", height=420)
    hover = np.array([[f"C = {total[j, i]:.2f}<br>class {matching.cost.cls[j, i]:.2f}<br>"
                       f"L1 {matching.cost.l1[j, i]:.2f}<br>GIoU {matching.cost.giou[j, i]:.2f}"
                       for i in range(m)] for j in range(n)])
    fig.add_heatmap(x=objects, y=queries, z=total, colorscale="Viridis_r", text=hover, hoverinfo="text",
                    colorbar={"title": {"text": "C"}})
    fig.add_scatter(x=[objects[i] for i in matching.target_idx], y=[queries[j] for j in matching.query_idx],
                    mode="markers+text", name="optimal assignment σ*",
                    marker={"symbol": "circle-open", "size": 20, "color": "#ef4444", "line": {"width": 3}},
                    text=[f"{total[j, i]:.2f}" for j, i in zip(matching.query_idx, matching.target_idx)],
                    textposition="middle right", textfont={"color": "#ef4444"})
    fig.update_yaxes(autorange="reversed")
    return fig


def loss_figure(loss: dict[str, float]) -> go.Figure:
    """The loss of the optimal assignment split into its weighted terms."""
    terms = ["class", "L1", "GIoU"]
    fig = figure(f"Set loss of σ* = {loss['total']:.3f}", "", "weighted term", height=300)
    fig.add_bar(x=[f"{t} term" for t in terms], y=[loss[t] for t in terms], marker_color=COLORS[:3],
                text=[f"{loss[t]:.3f}" for t in terms], textposition="outside", showlegend=False)
    fig.update_yaxes(range=[0, max(1e-3, max(loss[t] for t in terms)) * 1.25])
    return fig


def empty_figure(message: str, height: int = 300) -> go.Figure:
    """A placeholder with a message (never a blank plot): the shell's ``message_figure``."""
    return message_figure(message, height, font_size=14)
