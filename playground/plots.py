"""Shared plotly helpers: one look for every tab, WebGL traces for big point clouds."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

FONT_COLOR = "#8b93a1"
GRID_COLOR = "rgba(139,147,161,0.25)"
COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"]

# Plot text follows the page's theme (issue 14): a figure is made on the server, once, for light
# and dark pages alike, and Gradio draws it as it is; plotly's default text (#444) vanished on a
# dark page and our mid-grey was 3.2:1 on a light one. The app's CSS (playground/app.py) colours
# the figure's own words (titles, ticks, axis titles, legend, colour bar, annotations) with the
# theme's body text colour; text drawn by traces and hover labels keep theirs. Figures keep a
# transparent paper, so the page's own background is behind every word.
PLOT_TEXT_CSS = (".js-plotly-plot .main-svg text:not(.trace text, .hoverlayer text, .textpoint) "
                 "{fill: var(--body-text-color) !important;}\n")


def figure(title: str = "", x_title: str = "", y_title: str = "", height: int = 420) -> go.Figure:
    """An empty figure in the playground's style (transparent so light and dark themes work)."""
    fig = go.Figure()
    fig.update_layout(
        title={"text": title, "x": 0.02, "font": {"size": 15}}, height=height,
        margin={"l": 50, "r": 20, "t": 50 if title else 20, "b": 45},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(127,127,127,0.06)",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 1, "xanchor": "right"},
        xaxis_title=x_title, yaxis_title=y_title,
        font={"size": 12, "color": FONT_COLOR},  # mid-grey: readable in light and dark themes
    )
    fig.update_xaxes(gridcolor=GRID_COLOR, zerolinecolor=GRID_COLOR)
    fig.update_yaxes(gridcolor=GRID_COLOR, zerolinecolor=GRID_COLOR)
    return fig


def wrap_title(text: str, width: int = 16) -> str:
    """``text`` broken into lines of at most ``width`` characters at spaces (plotly's ``<br>``): a
    subplot title sized for a desk must not run into its neighbour's on a 412 px phone."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def make_subplots(**kwargs) -> go.Figure:
    """``plotly.subplots.make_subplots``, imported on first use: it loads plotly's validators and
    narwhals (0.1 s), which the app's start-up does not need."""
    from plotly.subplots import make_subplots as plotly_make_subplots

    return plotly_make_subplots(**kwargs)


def equal_axes(fig: go.Figure) -> go.Figure:
    """Same scale on x and y (for 2-D data)."""
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def points_trace(points: np.ndarray, name: str, color: str = COLORS[0], size: int = 3,
                 opacity: float = 0.7) -> go.Scattergl:
    """A WebGL scatter of an (N, 2) array: stays smooth for thousands of points."""
    points = np.asarray(points, dtype=float)
    return go.Scattergl(x=points[:, 0], y=points[:, 1], mode="markers", name=name,
                        marker={"size": size, "color": color, "opacity": opacity})


def paths_traces(paths: np.ndarray, name: str, color: str = COLORS[1]) -> list[go.Scattergl]:
    """Lines for a few trajectories, ``paths`` of shape (T, K, 2); one legend entry."""
    traces = []
    for k in range(paths.shape[1]):
        traces.append(go.Scattergl(x=paths[:, k, 0], y=paths[:, k, 1], mode="lines", name=name,
                                   line={"color": color, "width": 1.5}, legendgroup=name,
                                   showlegend=k == 0))
    return traces


def heatmap_trace(x: Sequence[float], y: Sequence[float], z: np.ndarray, name: str = "",
                  colorscale: str = "Viridis", showscale: bool = True, zmin=None, zmax=None) -> go.Heatmap:
    """A heatmap of ``z`` with ``len(y)`` rows and ``len(x)`` columns."""
    return go.Heatmap(x=list(x), y=list(y), z=np.asarray(z).tolist(), name=name, colorscale=colorscale,
                      showscale=showscale, zmin=zmin, zmax=zmax, hoverinfo="x+y+z")


def message_figure(text: str, height: int = 300, font_size: int | None = None) -> go.Figure:
    """An empty figure that says ``text`` (a view that cannot be drawn yet, and why), in the
    figure's font or at ``font_size``."""
    fig = figure(height=height)
    font = {} if font_size is None else {"font": {"size": font_size}}
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", **font)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig
