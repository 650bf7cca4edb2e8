"""Plotly figures of the Guidance tab (no torch): the step view and the adherence/diversity curve."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from demos.guidance import compute
from playground import plots

COLUMNS = ("predicted clean image x̂₀", "ε_uncond (ch. 1-3)", "ε_cond (ch. 1-3)", "‖ε_cond − ε_uncond‖ per pixel")


def upscale(image: np.ndarray, size: int = 64) -> np.ndarray:
    """Nearest-neighbour upscaling of an (h, w, 3) image to about ``size`` pixels wide."""
    factor = max(1, size // image.shape[1])
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def step_view(records: list[dict], mode: str) -> go.Figure:
    """One row per recorded step: x0_hat, eps_uncond, eps_cond and where they differ."""
    if not records:
        return plots.message_figure("No steps recorded.", height=200)
    rows = len(records)
    fig = plots.make_subplots(rows=rows, cols=4, horizontal_spacing=0.03, vertical_spacing=0.06 / max(rows, 1),
                              column_titles=[plots.wrap_title(t, 12) for t in _columns(mode)],
                              row_titles=[f"step {r['step']} (t={r['t']})" for r in records])
    limit = max(float(compute.magnitude(r["direction"]).max()) for r in records) or 1.0
    for row, record in enumerate(records, start=1):
        fig.add_trace(go.Image(z=record["x0_image"], hoverinfo="skip"), row=row, col=1)
        for col, key in ((2, "eps_uncond"), (3, "eps_cond")):
            fig.add_trace(go.Image(z=upscale(compute.latent_to_rgb(record[key])), hoverinfo="skip"), row=row, col=col)
        fig.add_trace(go.Heatmap(z=compute.magnitude(record["direction"])[::-1], zmin=0, zmax=limit,
                                 colorscale="Magma", showscale=row == 1, colorbar={"len": 0.5, "y": 0.75},
                                 hovertemplate="‖d‖ = %{z:.2f}<extra></extra>"), row=row, col=4)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    for row in range(1, rows + 1):
        fig.update_yaxes(scaleanchor=f"x{4 * row}", row=row, col=4)  # square heatmap cells
    fig.update_layout(height=150 * rows + 70, margin={"l": 10, "r": 80, "t": 50, "b": 10},
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)", font={"size": 11})
    fig.update_annotations(font_size=11)
    return fig


def _columns(mode: str) -> tuple[str, ...]:
    if mode == "classifier":
        return (COLUMNS[0], "ε_uncond (ch. 1-3)", "ε_uncond + d (s = 1)", "‖d‖ = ‖√(1−ᾱ) ∇ log p(y|z)‖")
    if mode == "none":
        return (COLUMNS[0], "ε_cond (ch. 1-3)", "ε_cond (ch. 1-3)", "no guidance: d = 0")
    return COLUMNS


def curve(data: dict | None) -> go.Figure:
    """Prompt adherence and diversity against the scale s, as measured on the embedded model."""
    if not data:
        return plots.message_figure("No measured curve yet: run `python -m benchmarks.guidance --write-curve`.",
                                    height=200)
    fig = plots.make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                              subplot_titles=[plots.wrap_title(t, 18) for t in
                                              ("prompt adherence (checker)", "diversity (mean pairwise RMS distance)")])
    for i, (mode, series) in enumerate(data["modes"].items()):
        color = plots.COLORS[i]
        name = compute.MODE_LABELS.get(mode, mode)
        fig.add_trace(go.Scatter(x=series["scales"], y=[100 * a for a in series["adherence"]], name=name,
                                 mode="lines+markers", line={"color": color}, legendgroup=mode), row=1, col=1)
        fig.add_trace(go.Scatter(x=series["scales"], y=series["diversity"], name=name, showlegend=False,
                                 mode="lines+markers", line={"color": color}, legendgroup=mode), row=1, col=2)
    fig.add_vline(x=1, line_dash="dot", line_color="gray", annotation_text="s = 1", row=1, col=1)
    fig.update_xaxes(title_text="guidance scale s")
    fig.update_yaxes(title_text="% right (colour and shape)", range=[0, 105], row=1, col=1)
    fig.update_yaxes(title_text="RMS pixel distance (0-1)", row=1, col=2)
    fig.update_layout(height=360, margin={"l": 60, "r": 20, "t": 60, "b": 45},
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(127,127,127,0.06)",
                      legend={"orientation": "h", "y": -0.25, "x": 0.5, "xanchor": "center"})
    return fig
