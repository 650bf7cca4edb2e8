"""Plotly figures for the Flows tab (formatting only: the numbers come from ``compute``)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from demos.flows.compute import FlowResult
from playground.plots import COLORS, equal_axes, figure, heatmap_trace

HEIGHT = 380
FLOW_NAMES = {"realnvp": "RealNVP", "planar": "planar", "flow_matching": "flow matching"}


def stage_name(result: FlowResult, k: int) -> str:
    """'layer 3 of 8' or, for the continuous flow, 't = 0.375'."""
    n_layers = result.n_stages - 1
    if result.params.flow == "flow_matching" and result.trained:
        return f"t = {k / n_layers:.3g}"
    return f"after {k} of {n_layers} layers" if result.trained else "base Gaussian (untrained)"


def legend_below(fig: go.Figure) -> go.Figure:
    """A one-line legend under the x-axis title, clear of the figure's title."""
    fig.update_layout(legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": -0.2, "yanchor": "top"},
                      margin={"b": 75})
    return fig


def framed(fig: go.Figure, result: FlowResult) -> go.Figure:
    """Data-space axes fixed to the view grid, same scale on x and y."""
    fig.update_xaxes(range=[result.view_x[0], result.view_x[-1]], constrain="domain")
    fig.update_yaxes(range=[result.view_y[0], result.view_y[-1]], constrain="domain")
    return equal_axes(fig)


# SVG traces, not WebGL: scrubbing re-creates every plot, and a page that has made too many
# WebGL contexts starts dropping the oldest (blank plots). A few thousand points draw fast in SVG.
def points_trace(points: np.ndarray, name: str, color: str, size: int = 3, opacity: float = 0.6) -> go.Scatter:
    return go.Scatter(x=points[:, 0], y=points[:, 1], mode="markers", name=name, hoverinfo="skip",
                      marker={"size": size, "color": color, "opacity": opacity})


def lines_trace(lines: np.ndarray, name: str, color: str, width: float = 1) -> go.Scatter:
    """Many polylines (L, P, 2) as one trace, NaN-separated (fast to draw and to send)."""
    gap = np.full((lines.shape[0], 1, 2), np.nan)
    flat = np.concatenate([lines, gap], 1).reshape(-1, 2)
    return go.Scatter(x=flat[:, 0], y=flat[:, 1], mode="lines", name=name, hoverinfo="skip",
                      line={"color": color, "width": width}, connectgaps=False)


def grid_figure(result: FlowResult, k: int) -> go.Figure:
    """The base grid and base samples pushed through the first k layers, over the data."""
    fig = figure(f"Base grid and samples, {stage_name(result, k)}", "x₁", "x₂", HEIGHT)
    lines = result.stage_lines[k]  # (2L, P, 2)
    half = len(lines) // 2
    fig.add_trace(points_trace(result.train_points, "data", "#9ca3af", size=3, opacity=0.35))
    fig.add_trace(lines_trace(lines[:half], "z₁ = const", COLORS[0]))
    fig.add_trace(lines_trace(lines[half:], "z₂ = const", COLORS[3]))
    fig.add_trace(points_trace(result.stage_samples[k], "samples", COLORS[1], size=3, opacity=0.5))
    return legend_below(framed(fig, result))


def density_heatmap(result: FlowResult, log_p: np.ndarray, title: str) -> go.Figure:
    fig = figure(title, "x₁", "x₂", HEIGHT)
    fig.add_trace(heatmap_trace(result.view_x, result.view_y, np.exp(log_p), name="p(x)"))
    fig.update_traces(zsmooth="best", colorbar={"title": {"text": "p"}, "thickness": 12})
    return framed(fig, result)


def density_figure(result: FlowResult, k: int) -> go.Figure:
    """p_k(x) = N(z) |det dz/dx_k|, on the view grid."""
    return density_heatmap(result, result.stage_log_density[k],
                           f"Learned density p(x), {stage_name(result, k)}")


def log_det_figure(result: FlowResult, k: int) -> go.Figure:
    """log|det dz/dx_k|: red where the flow squeezes volume (density piles up), blue where it
    stretches. Colours clipped to the 2nd-98th percentile range, centred on 0."""
    log_det = result.stage_log_det[k]
    bound = max(float(np.percentile(np.abs(log_det), 98)), 0.5)
    fig = figure(f"log|det ∂z/∂x|, {stage_name(result, k)}", "x₁", "x₂", HEIGHT)
    fig.add_trace(heatmap_trace(result.view_x, result.view_y, log_det, name="log|det|",
                                colorscale="RdBu_r", zmin=-bound, zmax=bound))
    fig.update_traces(zsmooth="best", colorbar={"title": {"text": "nats"}, "thickness": 12})
    if np.ptp(log_det) < 1e-6:  # layer 0: x = mu + sigma z only rescales
        fig.add_annotation(text=f"constant: −Σ log σ = {log_det.flat[0]:.2f}<br>(the base Gaussian only rescales)",
                           showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 13})
    return framed(fig, result)


def target_figure(result: FlowResult) -> go.Figure:
    """The true density when it is known, else a histogram of the data (the empirical density)."""
    if result.true_view_log_density is not None:
        return density_heatmap(result, result.true_view_log_density,
                               f"True density p(x) ({result.params.data})")
    points = np.concatenate([result.train_points, result.heldout_points])
    edges_x = np.linspace(result.view_x[0], result.view_x[-1], 49)
    edges_y = np.linspace(result.view_y[0], result.view_y[-1], 49)
    hist, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=[edges_x, edges_y], density=True)
    fig = figure(f"Data histogram ({len(points)} points; no closed-form density)", "x₁", "x₂", HEIGHT)
    fig.add_trace(heatmap_trace((edges_x[1:] + edges_x[:-1]) / 2, (edges_y[1:] + edges_y[:-1]) / 2,
                                hist.T, name="histogram"))
    fig.update_traces(colorbar={"title": {"text": "p"}, "thickness": 12})
    return framed(fig, result)


def samples_figure(result: FlowResult) -> go.Figure:
    """Final samples x = f(z) against the data; ODE paths for the continuous flow."""
    fig = figure("Samples x = f(z) against the data", "x₁", "x₂", HEIGHT)
    fig.add_trace(points_trace(result.train_points, "data", "#6b7280", size=3, opacity=0.5))
    if result.trained:
        fig.add_trace(points_trace(result.stage_samples[-1], "flow samples", COLORS[1], size=3, opacity=0.6))
    if result.paths is not None:
        fig.add_trace(lines_trace(result.paths.transpose(1, 0, 2), "ODE paths z → x", COLORS[2], 1.5))
    return legend_below(framed(fig, result))


def loss_figure(history, flow: str) -> go.Figure:
    """Training loss and held-out mean log-likelihood (the best step marked)."""
    fig = figure("Training", "step", "training loss", HEIGHT)
    if history is None or not history.eval_steps:
        fig.add_annotation(text="Press Train to fit the flow", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper", font={"size": 14})
        return fig
    loss_name = "flow-matching loss |v − (x − z)|²" if flow == "flow_matching" else "−log p(x), batch"
    fig.add_trace(go.Scatter(x=history.loss_steps, y=history.loss, mode="lines", name=loss_name,
                             line={"color": COLORS[0]}))
    fig.add_trace(go.Scatter(x=history.eval_steps, y=history.heldout_ll, mode="lines+markers",
                             name="held-out mean log p(x)", yaxis="y2", line={"color": COLORS[2]},
                             marker={"size": 4}))
    fig.update_layout(yaxis2={"title": "held-out log-likelihood", "overlaying": "y", "side": "right",
                              "showgrid": False}, margin={"r": 60})
    if history.best_step in history.eval_steps:
        fig.add_vline(x=history.best_step, line={"dash": "dot", "color": COLORS[2]},
                      annotation_text="best", annotation_position="top left")
    return legend_below(fig)
