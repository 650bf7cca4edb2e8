"""Plotly figures of the SDE vs ODE tab (formatting only: the numbers come from ``compute``).

Payloads are capped for the browser: WebGL scatters, at most ``compute.MAX_SHOWN`` particles per
cloud and ``ANIM_POINTS`` per animation frame, coordinates rounded to 3 decimals.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from demos.sde_ode import compute
from playground.plots import COLORS, figure, make_subplots, points_trace

ANIM_POINTS = 1000  # particles per cloud per animation frame
PATHS_SHOWN = 5  # paths per sampler in the path views
GRID = 40  # heatmap resolution of p_t
SDE_COLOR, ODE_COLOR, DATA_COLOR = COLORS[1], COLORS[0], "#6b7280"
HEAT = [[0, "rgba(255,255,255,0)"], [1, "rgba(79,70,229,0.55)"]]


def view_box(data: np.ndarray) -> tuple[list[float], list[float]]:
    """Axis ranges: the data with a margin, and at least the VP prior's +-3.5."""
    low, high = data.min(0), data.max(0)
    pad = np.maximum(0.25 * (high - low), 0.5)
    low, high = np.minimum(low - pad, -3.5), np.maximum(high + pad, 3.5)
    return [float(low[0]), float(high[0])], [float(low[1]), float(high[1])]


def _r(a: np.ndarray) -> np.ndarray:
    """float32 (sent as 4-byte typed arrays), rounded to 3 decimals."""
    return np.round(np.asarray(a, dtype=float), 3).astype(np.float32)


def _density(run, t: float, xr, yr):
    xs, ys = np.linspace(*xr, GRID), np.linspace(*yr, GRID)
    z = np.sqrt(compute.marginal_density(run.data, run.sde, t, xs, ys))  # sqrt: more visible tails
    z8 = np.round(255 * z / max(z.max(), 1e-300)).astype(np.uint8)  # 1 byte per cell
    return go.Heatmap(x=_r(xs), y=_r(ys), z=z8, colorscale=HEAT, showscale=False, hoverinfo="skip",
                      zmin=0, zmax=255)


def _cloud(points: np.ndarray, color: str, name: str, show: bool = True) -> go.Scattergl:
    p = _r(points[:ANIM_POINTS])
    return go.Scattergl(x=p[:, 0], y=p[:, 1], mode="markers", name=name, showlegend=show,
                        marker={"size": 3, "color": color, "opacity": 0.75})


def animation(run) -> go.Figure:
    """Both clouds over p_t with a time slider whose steps restyle the traces in the browser.

    Gradio draws plotly figures with ``Plotly.react(data, layout)``, which drops ``frames``, so
    each slider step carries its own data (``restyle``) and Play (``PLAY_JS``) walks the steps.
    """
    xr, yr = view_box(run.data)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.06,
                        subplot_titles=("Reverse-time SDE", "Probability-flow ODE"))
    xs, ys = np.linspace(*xr, GRID), np.linspace(*yr, GRID)
    last = len(run.frame_t) - 1
    for i, trace in enumerate([_density(run, float(run.frame_t[last]), xr, yr),
                               _cloud(run.sde_frames[last], SDE_COLOR, "SDE"),
                               _density(run, float(run.frame_t[last]), xr, yr),
                               _cloud(run.ode_frames[last], ODE_COLOR, "ODE")]):
        fig.add_trace(trace, row=1, col=1 + i // 2)
    steps = [_step(run, f, xs, ys) for f in range(len(run.frame_t))]
    fig.update_layout(
        height=470, margin={"l": 40, "r": 10, "t": 60, "b": 10}, showlegend=False,
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(127,127,127,0.06)",
        sliders=[{"active": last, "steps": steps, "currentvalue": {"prefix": "t = "}, "pad": {"t": 30},
                  "font": {"size": 9}}],
    )
    fig.update_xaxes(range=xr)
    fig.update_yaxes(range=yr, scaleanchor="x")
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    return fig


def _step(run, f: int, xs, ys) -> dict:
    """One slider step: restyle the four traces (density, SDE, density, ODE) to frame ``f``."""
    t = float(run.frame_t[f])
    z = np.sqrt(compute.marginal_density(run.data, run.sde, t, xs, ys))
    z = np.round(255 * z / max(z.max(), 1e-300)).astype(int).tolist()
    sde, ode = (np.round(p[f][:ANIM_POINTS], 3) for p in (run.sde_frames, run.ode_frames))
    grid_x, grid_y = np.round(xs, 3).tolist(), np.round(ys, 3).tolist()
    update = {"x": [grid_x, sde[:, 0].tolist(), grid_x, ode[:, 0].tolist()],
              "y": [grid_y, sde[:, 1].tolist(), grid_y, ode[:, 1].tolist()],
              "z": [z, None, z, None]}
    return {"method": "restyle", "label": f"{t:.2f}", "args": [update, [0, 1, 2, 3]]}


# Play: walk the slider's steps in the browser (used as a gr.Button's js).
PLAY_JS = """() => {
  const gd = document.querySelector('#sde-ode-anim .js-plotly-plot');
  if (!gd || !window.Plotly || !gd.layout.sliders) return;
  const steps = gd.layout.sliders[0].steps;
  let k = 0;
  const tick = () => {
    if (k >= steps.length) return;
    window.Plotly.restyle(gd, steps[k].args[0], steps[k].args[1]);
    window.Plotly.relayout(gd, {'sliders[0].active': k});
    k += 1;
    setTimeout(tick, 150);
  };
  tick();
}"""


def paths(run, extra=None, title: str = "Paths of a few particles from the same x_T") -> go.Figure:
    """SDE paths (jagged) and ODE paths (smooth) from the same starting points, over the data."""
    fig = figure(title, "x", "y", height=430)
    fig.add_trace(points_trace(run.data, "data x_i", DATA_COLOR, size=3, opacity=0.35))
    for name, color, p, width in (("SDE paths", SDE_COLOR, run.sde_paths, 1.0),
                                  ("ODE paths", ODE_COLOR, run.ode_paths, 2.5), *(extra or [])):
        for k in range(min(p.shape[1], PATHS_SHOWN)):
            fig.add_trace(go.Scattergl(x=_r(p[:, k, 0]), y=_r(p[:, k, 1]), mode="lines", name=name,
                                       legendgroup=name, showlegend=k == 0, opacity=0.9,
                                       line={"color": color, "width": width}))
    start = run.sde_paths[0, :PATHS_SHOWN]
    fig.add_trace(go.Scattergl(x=_r(start[:, 0]), y=_r(start[:, 1]), mode="markers", name="x_T (shared)",
                               marker={"size": 9, "color": "#111827", "symbol": "x"}))
    xr, yr = view_box(run.data)
    fig.update_xaxes(range=xr)
    fig.update_yaxes(range=yr, scaleanchor="x")
    return fig


def compare(run, frame: int, numbers: dict) -> go.Figure:
    """At one t: both clouds over p_t, and the x-marginals against the exact one."""
    t = float(run.frame_t[frame])
    xr, yr = view_box(run.data)
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"clouds at t = {t:.3f}", "x-marginal at t"))
    fig.add_trace(_density(run, t, xr, yr), row=1, col=1)
    fig.add_trace(_cloud(run.sde_frames[frame], SDE_COLOR, "SDE"), row=1, col=1)
    fig.add_trace(_cloud(run.ode_frames[frame], ODE_COLOR, "ODE"), row=1, col=1)
    bins = np.linspace(*xr, 50)
    for name, color, pts in (("SDE", SDE_COLOR, run.sde_frames[frame]), ("ODE", ODE_COLOR, run.ode_frames[frame])):
        hist, _ = np.histogram(pts[:, 0], bins=bins, density=True)
        fig.add_trace(go.Scatter(x=_r(bins[:-1]), y=_r(hist), mode="lines", line={"shape": "hv", "color": color},
                                 name=f"{name} histogram", showlegend=False), row=1, col=2)
    xs = np.linspace(*xr, 200)
    m, v = run.sde.mean_coeff(t), run.sde.var(t)
    exact = np.exp(-(xs[None] - m * run.data[:, :1]) ** 2 / (2 * v)).mean(0) / np.sqrt(2 * np.pi * v)
    fig.add_trace(go.Scatter(x=_r(xs), y=np.round(exact, 4), mode="lines", name="exact p_t",
                             line={"color": "#111827", "dash": "dot"}), row=1, col=2)
    fig.update_layout(height=400, margin={"l": 40, "r": 10, "t": 70, "b": 30}, showlegend=True,
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(127,127,127,0.06)",
                      legend={"orientation": "h", "y": -0.12})
    fig.update_xaxes(range=xr, row=1, col=1)
    fig.update_yaxes(range=yr, scaleanchor="x", row=1, col=1)
    return fig


def lambda_cloud(run, result: dict) -> go.Figure:
    lam = result["lam"]
    fig = paths(run, extra=[(f"λ = {lam:g} paths", COLORS[2], result["paths"], 1.5)],
                title=f"λ = {lam:g}: final cloud and paths (sliced W1 to data {result['sw_to_data']:.3f})")
    fig.data = tuple(tr for tr in fig.data if tr.name not in ("SDE paths", "ODE paths"))
    fig.add_trace(points_trace(result["final"][:compute.MAX_SHOWN], f"λ = {lam:g} samples", COLORS[2], size=3, opacity=0.6))
    return fig


def encoding(result: dict) -> go.Figure:
    """Data, its ODE encoding x(1) and the decoded reconstruction."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("data and decode(encode(data))", "encoded: x(1)"))
    fig.add_trace(points_trace(result["data"], "data", DATA_COLOR, size=5, opacity=0.6), row=1, col=1)
    rec = result["reconstruction"]
    fig.add_trace(go.Scattergl(x=_r(rec[:, 0]), y=_r(rec[:, 1]), mode="markers", name="reconstruction",
                               marker={"size": 4, "color": COLORS[0], "symbol": "x"}), row=1, col=1)
    fig.add_trace(points_trace(result["latent"], "latent", COLORS[4], size=4), row=1, col=2)
    fig.update_layout(height=380, margin={"l": 40, "r": 10, "t": 70, "b": 30}, showlegend=True,
                      paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(127,127,127,0.06)",
                      legend={"orientation": "h", "y": -0.12})
    fig.update_yaxes(scaleanchor="x", row=1, col=1)
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    return fig


def canvas_points(points: np.ndarray, size: int, extent: float):
    """A PIL image of the click canvas: a grid over [-extent, extent]^2 and the points so far."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for k in range(-int(extent), int(extent) + 1):
        px = (k + extent) / (2 * extent) * (size - 1)
        color = "#9ca3af" if k == 0 else "#e5e7eb"
        draw.line([(px, 0), (px, size)], fill=color)
        draw.line([(0, px), (size, px)], fill=color)
    for x, y in np.asarray(points).reshape(-1, 2):
        px = (x + extent) / (2 * extent) * (size - 1)
        py = (extent - y) / (2 * extent) * (size - 1)
        draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill="#dc2626")
    return image
