"""Plotly figures of the "inside the model" section (no torch): word maps, latents per step, round trip."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from playground import plots


def _bare(fig: go.Figure, height: int) -> go.Figure:
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed")
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 60, "b": 10}, paper_bgcolor="rgba(0,0,0,0)",
                      plot_bgcolor="rgba(0,0,0,0)", font={"size": 11, "color": plots.FONT_COLOR})
    fig.update_annotations(font_size=11, font_color=plots.FONT_COLOR)  # readable in light and dark themes
    return fig


COLS = 4  # panels per row: wide enough at 1280 px, still legible on a 412 px phone


def _at(i: int) -> dict:
    """Row and column (1-based) of panel ``i`` (0-based) in a ``COLS``-wide grid."""
    return {"row": i // COLS + 1, "col": i % COLS + 1}


def _rows(n: int) -> int:
    return -(-n // COLS)


def _square(fig: go.Figure, rows: int, cols: int) -> None:
    for i in range(1, rows * cols + 1):
        fig.update_yaxes(scaleanchor=f"x{'' if i == 1 else i}", row=(i - 1) // cols + 1, col=(i - 1) % cols + 1)


def word_maps(image: np.ndarray, labels: list[str], maps: list[np.ndarray], shares: list[float],
              caption: str) -> go.Figure:
    """The image, then one heat map (S, S) per token label, each scaled from its own minimum (0) to
    its maximum (1); ``shares``: each token's share of the attention."""
    if not maps:
        return message("No words to show.")
    n = 1 + len(maps)
    rows = _rows(n)
    titles = ["image"] + [f"“{label}”<br>{100 * share:.0f}%" for label, share in zip(labels, shares)]
    fig = plots.make_subplots(rows=rows, cols=COLS, horizontal_spacing=0.02, vertical_spacing=0.12 / rows,
                              subplot_titles=titles)
    fig.add_trace(go.Image(z=image, hoverinfo="skip"), **_at(0))
    for i, (label, heat) in enumerate(zip(labels, maps), start=1):
        low, high = float(heat.min()), float(heat.max())
        scaled = (heat - low) / ((high - low) or 1.0)
        fig.add_trace(go.Heatmap(z=scaled, zmin=0, zmax=1, colorscale="Inferno", showscale=i == 1,
                                 colorbar={"title": {"text": "min→max"}, "len": 0.6, "thickness": 10},
                                 customdata=heat, hovertemplate=f"{label}: %{{customdata:.3g}}<extra></extra>"),
                      **_at(i))
    _square(fig, rows, COLS)
    fig.update_layout(title={"text": caption, "font": {"size": 12}, "x": 0.01, "y": 0.99})
    return _bare(fig, 210 * rows + 70)


def latent_steps(latent: np.ndarray, latent_image: np.ndarray, x0_image: np.ndarray, step: int,
                 total: int) -> go.Figure:
    """At one step: the latent z_t's channels, D(z_t) and D(x0_hat)."""
    channels = latent.shape[0]
    titles = ["D(z_t)", "D(x̂₀)", "", ""][: COLS] + [f"z_t channel {c + 1}" for c in range(channels)]
    rows = 1 + _rows(channels)
    fig = plots.make_subplots(rows=rows, cols=COLS, horizontal_spacing=0.02, vertical_spacing=0.12 / rows,
                              subplot_titles=titles)
    fig.add_trace(go.Image(z=latent_image, hoverinfo="skip"), **_at(0))
    fig.add_trace(go.Image(z=x0_image, hoverinfo="skip"), **_at(1))
    limit = float(np.abs(latent).max()) or 1.0
    for c in range(channels):
        fig.add_trace(go.Heatmap(z=latent[c], zmin=-limit, zmax=limit, colorscale="RdBu", showscale=c == 0,
                                 colorbar={"len": 0.45, "y": 0.25, "thickness": 10},
                                 hovertemplate="z = %{z:.2f}<extra></extra>"), **_at(COLS + c))
    _square(fig, rows, COLS)
    fig.update_layout(title={"text": f"step {step} of {total}: latent z_t {tuple(latent.shape)}",
                             "font": {"size": 12}, "x": 0.01, "y": 0.99})
    return _bare(fig, 190 * rows + 70)


def round_trip(trip) -> go.Figure:
    """x, the latent channels E(x), D(E(x)) and the error |x - D(E(x))|."""
    channels = trip.latent.shape[0]
    titles = ["input x", "decoded D(z)", "error |x − D(z)|", ""][: COLS] + [f"z channel {c + 1}" for c in range(channels)]
    rows = 1 + _rows(channels)
    fig = plots.make_subplots(rows=rows, cols=COLS, horizontal_spacing=0.02, vertical_spacing=0.12 / rows,
                              subplot_titles=titles)
    fig.add_trace(go.Image(z=trip.image, hoverinfo="skip"), **_at(0))
    fig.add_trace(go.Image(z=trip.reconstruction, hoverinfo="skip"), **_at(1))
    fig.add_trace(go.Heatmap(z=trip.error, zmin=0, zmax=max(float(trip.error.max()), 1e-3), colorscale="Magma",
                             colorbar={"len": 0.45, "y": 0.78, "thickness": 10},
                             hovertemplate="|error| = %{z:.3f}<extra></extra>"), **_at(2))
    limit = float(np.abs(trip.latent).max()) or 1.0
    for c in range(channels):
        fig.add_trace(go.Heatmap(z=trip.latent[c], zmin=-limit, zmax=limit, colorscale="RdBu", showscale=False,
                                 hovertemplate="z = %{z:.2f}<extra></extra>"), **_at(COLS + c))
    _square(fig, rows, COLS)
    h, w = trip.image.shape[:2]
    fig.update_layout(title={"text": f"{h}×{w}×3 = {trip.image.size:,} numbers → latent {tuple(trip.latent.shape)} "
                                     f"= {trip.latent.size:,} ({trip.compression:g}× fewer); PSNR {trip.psnr_db:.1f} dB",
                             "font": {"size": 12}, "x": 0.01, "y": 0.99})
    return _bare(fig, 190 * rows + 70)


def message(text: str) -> go.Figure:
    """The shell's ``message_figure`` at this section's height."""
    return plots.message_figure(text, height=160)


