"""Plotly figures of the RNN vs Transformer tab. Formatting only: every number comes from
``compute`` / ``models`` results or the benchmark's stored evaluation."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from demos.rnn_transformer.compute import MODEL_KINDS, MODEL_TITLES, Sequence
from playground.plots import COLORS, figure, heatmap_trace

MODEL_COLORS = dict(zip(MODEL_KINDS, COLORS))
SALIENCY_FLOOR = 1e-30


def _token_axis(fig: go.Figure, sequence: Sequence) -> None:
    """Positions on x, labelled ``index: token``; the queried value is marked."""
    labels = [f"{t}<br>{i}" for i, t in enumerate(sequence.tokens)]
    step = max(1, -(-len(labels) // 20))  # at most 20 labels
    fig.update_xaxes(tickmode="array", tickvals=list(range(0, len(labels), step)),
                     ticktext=labels[::step], tickangle=0)
    fig.add_vline(x=sequence.value_position, line={"color": COLORS[4], "dash": "dot", "width": 1.5},
                  annotation_text="queried value", annotation_position="top left")


def saliency_figure(sequence: Sequence, models: dict) -> go.Figure:
    """``||d log p(answer)/d e_t||`` per position t for every model, log scale."""
    fig = figure("Saliency per input position",
                 "input position t (token)", "||d log p(answer) / d e_t||  (log scale)", height=380)
    for kind in MODEL_KINDS:
        # a gradient below float32's range is exactly 0: drawn at the floor, 1e-30
        values = np.maximum(np.asarray(models[kind]["saliency"], dtype=float), SALIENCY_FLOOR)
        fig.add_trace(go.Scatter(x=list(range(len(values))), y=values, mode="lines+markers",
                                 name=MODEL_TITLES[kind], line={"color": MODEL_COLORS[kind], "width": 2},
                                 marker={"size": 4}))
    fig.update_yaxes(type="log", exponentformat="power")
    if any(min(models[kind]["saliency"]) == 0 for kind in MODEL_KINDS):
        fig.add_annotation(text="0 (below float32's range) is drawn at 1e-30", showarrow=False, x=1, y=0,
                           xref="paper", yref="paper", xanchor="right", yanchor="bottom", font={"size": 11})
    _token_axis(fig, sequence)
    return fig


def attention_figure(sequence: Sequence, attention: np.ndarray, source: int) -> go.Figure:
    """The Transformer's attention from position ``source`` over the positions, one row per
    layer and head (``attention``: (layers, heads, T, T))."""
    attention = np.asarray(attention, dtype=float)
    L, H = attention.shape[:2]
    rows = [f"layer {layer + 1} head {head + 1}" for layer in range(L) for head in range(H)]
    z = attention[:, :, source, :].reshape(L * H, -1)  # (L*H, T)
    fig = figure(f"Transformer: attention from '{sequence.tokens[source]}' (position {source})",
                 "attended position (token)", "", height=330)
    fig.add_trace(heatmap_trace(range(z.shape[1]), rows, z, colorscale="Blues", zmin=0, zmax=1))
    _token_axis(fig, sequence)
    fig.update_yaxes(autorange="reversed")
    return fig


def states_figure(sequence: Sequence, states: np.ndarray, kind: str, units: int = 48) -> go.Figure:
    """A recurrent model's hidden state h_t over time: the first ``units`` units (rows) x t."""
    states = np.asarray(states, dtype=float)[:, :units].T  # (units, T)
    fig = figure(f"{MODEL_TITLES[kind]}: h_t, first {states.shape[0]} units",
                 "time step t (token)", "unit", height=330)
    fig.add_trace(heatmap_trace(range(states.shape[1]), list(range(states.shape[0])), states,
                                colorscale="RdBu", zmin=-1, zmax=1))
    _token_axis(fig, sequence)
    return fig


def probabilities_figure(models: dict) -> go.Figure:
    """Each model's probability for every value (grouped bars)."""
    fig = figure("p(value) per model", "value", "probability", height=300)
    for kind in MODEL_KINDS:
        probs = models[kind]["probs"]
        fig.add_trace(go.Bar(x=list(probs), y=list(probs.values()), name=MODEL_TITLES[kind],
                             marker_color=MODEL_COLORS[kind]))
    fig.update_yaxes(range=[0, 1])
    fig.update_layout(barmode="group")
    return fig


def accuracy_figure(evaluation: dict, by: str = "distance", live: dict | None = None) -> go.Figure:
    """Held-out accuracy against the distance (or the number of pairs), chance at 1/10; ``live``
    (``{"kind", "x", "accuracy"}``) adds a model trained in the tab."""
    data = evaluation[f"accuracy_by_{by}"]
    x_title = "distance d" if by == "distance" else "number of pairs n"
    fig = figure(f"Held-out accuracy, {data['n_per_point']} per point", x_title, "accuracy", height=360)
    for kind in MODEL_KINDS:
        fig.add_trace(go.Scatter(x=data["x"], y=data["models"][kind], mode="lines+markers",
                                 name=MODEL_TITLES[kind], line={"color": MODEL_COLORS[kind], "width": 2}))
    if live:
        fig.add_trace(go.Scatter(x=live["x"], y=live["accuracy"], mode="lines+markers",
                                 name=f"{MODEL_TITLES[live['kind']]} (trained live)",
                                 line={"color": MODEL_COLORS[live["kind"]], "width": 4, "dash": "dot"}))
    fig.add_hline(y=0.1, line={"color": "#8b93a1", "dash": "dash"}, annotation_text="chance 0.1",
                  annotation_position="bottom right")
    fig.update_yaxes(range=[0, 1.05])
    return fig


def cost_figure(cost: dict) -> go.Figure:
    """Training-step (solid) and forward (dashed) time against sequence length."""
    fig = figure(f"Time per batch of {cost['batch']}, {cost['threads']} thread{'s' if cost['threads'] != 1 else ''}",
                 "sequence length T (tokens)", "milliseconds", height=460)
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0, "xanchor": "left"},
                      margin={"b": 150})
    for kind in MODEL_KINDS:
        row = cost["models"][kind]
        for key, dash, what in (("train_step_s", "solid", "training step"), ("forward_s", "dash", "forward")):
            fig.add_trace(go.Scatter(x=cost["lengths"], y=[1e3 * s for s in row[key]], mode="lines+markers",
                                     name=f"{MODEL_TITLES[kind]} {what}", legendgroup=kind,
                                     line={"color": MODEL_COLORS[kind], "dash": dash, "width": 2}))
    return fig


def learning_curves_figure(logs: dict, live: dict | None = None) -> go.Figure:
    """Validation accuracy against training step: the embedded checkpoints, and a live run."""
    fig = figure("Validation accuracy while training", "training step",
                 "validation accuracy", height=360)
    for kind in MODEL_KINDS:
        log = logs.get(kind, [])
        fig.add_trace(go.Scatter(x=[r["step"] for r in log], y=[r["val_accuracy"] for r in log],
                                 mode="lines", name=f"{MODEL_TITLES[kind]} (embedded)",
                                 line={"color": MODEL_COLORS[kind], "width": 1.5}, opacity=0.6))
    if live and live.get("log"):
        fig.add_trace(go.Scatter(x=[r["step"] for r in live["log"]], y=[r["val_accuracy"] for r in live["log"]],
                                 mode="lines+markers", name=f"{MODEL_TITLES[live['kind']]} (trained live)",
                                 line={"color": MODEL_COLORS[live["kind"]], "width": 3}))
    fig.add_hline(y=0.1, line={"color": "#8b93a1", "dash": "dash"})
    fig.update_yaxes(range=[0, 1.05])
    return fig
