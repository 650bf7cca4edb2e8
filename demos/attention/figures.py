"""Plotly figures of the Attention cache tab (formatting only: the numbers come from compute)."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np
import plotly.graph_objects as go

from demos.attention import compute
from playground.plots import COLORS, figure

VARIANT_COLOR = {"MHA": COLORS[1], "GQA": COLORS[0], "MQA": COLORS[4], "MLA": COLORS[2],
                 "MLA (absorbed)": COLORS[3]}
MAX_HEADS_DRAWN = 128
GREY = "rgba(120,120,120,0.8)"


def memory_figure(view: compute.CacheView) -> go.Figure:
    """KV-cache GB against context length for each variant at the model's shape, GPU lines, and
    where the model's own cache meets each GPU's room beside the weights."""
    p, contexts, curves = view.params, view.contexts, view.curves              # contexts: (P,)
    fig = figure(f"KV cache of {p.config.name} (batch {p.batch_size}, {p.dtype})",
                 "context length T (tokens)", "memory (GB = 1e9 bytes)", height=430)
    gpu_x, gpu_y, labels = [], [], []
    for i, (label, size_gb) in enumerate(compute.GPUS):  # dotted lines, labels at alternating ends
        gpu_x += [contexts[0], contexts[-1], None]
        gpu_y += [size_gb, size_gb, None]
        labels.append({"text": f"{size_gb} GB", "x": 0.01 if i % 2 else 0.99, "xref": "paper",
                       "y": np.log10(size_gb), "yanchor": "bottom", "xanchor": "left" if i % 2 else "right",
                       "showarrow": False, "font": {"size": 10, "color": GREY}})
    traces = [go.Scatter(x=gpu_x, y=gpu_y, mode="lines", name="GPU memory", hoverinfo="skip",
                         line={"color": GREY, "width": 1, "dash": "dot"})]
    for attention in compute.ATTENTIONS:
        own = attention == p.config.attention
        traces.append(go.Scatter(
            x=contexts, y=curves[attention] / compute.GB, mode="lines",
            name=f"{attention}{' (this model)' if own else ''}",
            line={"color": VARIANT_COLOR[attention], "width": 3.5 if own else 1.6,
                  "dash": "solid" if own else "dash"},
            hovertemplate=f"{attention}<br>T=%{{x:,}}<br>%{{y:.3g}} GB<extra></extra>"))
    traces += fit_markers(view, contexts[-1])
    fig.add_traces(traces)
    fig.update_layout(xaxis_type="log", yaxis={"type": "log", "exponentformat": "power"},
                      annotations=labels, shapes=[
        {"type": "line", "xref": "x", "yref": "paper", "x0": p.seq_len, "x1": p.seq_len, "y0": 0,
         "y1": 1, "line": {"color": "rgba(100,100,100,0.6)", "width": 1}}])
    return fig


def fit_markers(view: compute.CacheView, x_max: int) -> list:
    """A marker where the model's cache fills what each GPU has left beside the weights."""
    p = view.params
    fits = [row for row in view.fits if 0 < row["max_context"] <= x_max]
    if not fits:
        return []
    return [go.Scatter(
        x=[row["max_context"] for row in fits], y=[row["free_gb"] for row in fits], mode="markers",
        name="longest context beside the weights",
        marker={"symbol": "x", "size": 10, "color": VARIANT_COLOR[p.config.attention]},
        text=[row["gpu"] for row in fits],
        hovertemplate="%{text}: T ≤ %{x:,} beside the weights<extra></extra>")]


class Sketch:
    """Markers, line segments and labels collected first, then drawn as a handful of traces
    (one plotly trace per kind keeps the figure fast to build and to send)."""

    def __init__(self):
        self.marks = {"x": [], "y": [], "color": [], "size": [], "text": []}
        self.lines = {}          # (color, dash) -> ([x...], [y...]) with NaN between segments
        self.labels = []         # (x, y, text) written under a marker

    def boxes(self, x, y: float, color, size: float, hover: list[str]) -> None:
        n = len(x)
        self.marks["x"] += list(x)
        self.marks["y"] += [y] * n
        self.marks["color"] += list(color) if isinstance(color, list) else [color] * n
        self.marks["size"] += [size] * n
        self.marks["text"] += hover

    def connect(self, x0, y0: float, x1, y1: float, color: str, dash: str = "solid") -> None:
        xs, ys = self.lines.setdefault((color, dash), ([], []))
        for a, b in zip(*np.broadcast_arrays(x0, x1)):
            xs += [a, b, np.nan]
            ys += [y0, y1, np.nan]

    def traces(self) -> list:
        """Numpy arrays throughout: plotly validates Python lists element by element (slow)."""
        lines = [go.Scatter(x=np.array(xs, float), y=np.array(ys, float), mode="lines",
                            hoverinfo="skip", line={"color": color, "width": 0.8, "dash": dash})
                 for (color, dash), (xs, ys) in self.lines.items()]
        palette = list(dict.fromkeys(self.marks["color"]))               # colours by first use
        index = np.array([palette.index(c) for c in self.marks["color"]], float)
        scale = [[i / max(len(palette) - 1, 1), c] for i, c in enumerate(palette)]
        marks = go.Scatter(
            x=np.array(self.marks["x"], float), y=np.array(self.marks["y"], float), mode="markers",
            text=np.array(self.marks["text"], object), hovertemplate="%{text}<extra></extra>",
            marker={"symbol": "square", "size": np.array(self.marks["size"], float), "color": index,
                    "colorscale": scale if len(palette) > 1 else [[0, palette[0]], [1, palette[0]]],
                    "cmin": 0, "cmax": max(len(palette) - 1, 1)})
        x, y, text = zip(*self.labels) if self.labels else ((), (), ())
        labels = go.Scatter(x=x, y=y, text=text, mode="text", textposition="bottom center",
                            hoverinfo="skip", textfont={"size": 11})
        return [*lines, marks, labels]


def heads_figure(cfg: compute.AttentionConfig) -> go.Figure:
    """Which query heads read which cached key/value heads, one band per variant.

    The diagram is per layer: it ignores the name, l and N, so those are dropped from the key
    of the cache below (a custom l or N then re-renders without redrawing it).
    """
    return _heads_figure(replace(cfg, name="", n_layers=1, n_params=0.0))


@functools.lru_cache(maxsize=64)
def _heads_figure(cfg: compute.AttentionConfig) -> go.Figure:
    """Cached on the (frozen, hashable) config: a bounded LRU whose bookkeeping is thread-safe.
    The figure is shared between requests: read it, never modify it."""
    sketch, annotations = Sketch(), []
    for band, attention in enumerate(reversed(compute.ATTENTIONS)):
        variant = compute.same_shape(cfg, attention)
        draw = draw_mla_band if attention == "MLA" else draw_kv_band
        draw(sketch, variant, y0=4.0 * band)
        annotations.append(band_label(variant, 4.0 * band + 1.3, own=attention == cfg.attention))
    fig = figure(f"Who shares keys and values ({cfg.n_heads} query heads"
                 f"{f', first {MAX_HEADS_DRAWN} drawn' if cfg.n_heads > MAX_HEADS_DRAWN else ''})",
                 height=560)
    fig.add_traces(sketch.traces())
    fig.update_layout(showlegend=False, margin={"l": 10, "r": 10, "t": 45, "b": 10},
                      annotations=annotations, xaxis={"visible": False, "range": [-0.2, 1.05]},
                      yaxis={"visible": False, "range": [-1.2, 15.6]})
    return fig


def head_x(count: int, total: int) -> np.ndarray:
    """x positions of ``count`` evenly spaced boxes in [0, 1] where ``total`` would fill it."""
    return (np.arange(count) + 0.5) / total


def band_label(cfg: compute.AttentionConfig, y: float, own: bool) -> dict:
    """The variant's name, formula and cached elements per token and layer, left of its band."""
    per_layer = compute.elements_per_layer(cfg)
    return {"x": -0.19, "y": y, "xanchor": "left", "showarrow": False, "align": "left",
            "font": {"size": 11},
            "text": f"<b>{cfg.attention}</b>{' (this model)' if own else ''}<br>"
                    f"{compute.FORMULA[cfg.attention][:-2]}<br>= {per_layer:,} / token / layer"
                    + ("<br><i>grey: per-head k, v rebuilt<br>from c^KV, not cached</i>"
                       if cfg.attention == "MLA" else "")}


def draw_kv_band(sketch: Sketch, cfg: compute.AttentionConfig, y0: float) -> None:
    """MHA / GQA / MQA: query heads on top, the cached key/value heads below, one line each."""
    n_q = min(cfg.n_heads, MAX_HEADS_DRAWN)
    group = compute.kv_group_of_head(cfg.n_heads, cfg.n_kv_heads)[:n_q]       # (n_q,)
    per_group = cfg.n_heads // cfg.n_kv_heads
    n_kv = int(group[-1]) + 1
    x_q = head_x(n_q, n_q)
    x_kv = (np.arange(n_kv) * per_group + (per_group - 1) / 2 + 0.5) / n_q    # centre of each group
    x_kv = np.minimum(x_kv, x_q[-1])
    size = float(np.clip(620 / n_q, 3, 14))
    sketch.connect(x_q, y0 + 2.2, x_kv[group], y0 + 0.4, GREY)
    sketch.boxes(x_q, y0 + 2.4, [COLORS[g % len(COLORS)] for g in group], size,
                 [f"query head {i} → kv head {g}" for i, g in enumerate(group)])
    sketch.boxes(x_kv, y0 + 0.2, [COLORS[g % len(COLORS)] for g in range(n_kv)], max(size, 9) + 3,
                 [f"cached k, v head {g} (2·d_h = {2 * cfg.head_dim})" for g in range(n_kv)])


def draw_mla_band(sketch: Sketch, cfg: compute.AttentionConfig, y0: float) -> None:
    """MLA: query heads on top; per-head keys/values up-projected from one cached latent c^KV
    (not cached themselves); one decoupled RoPE key k^R read by every head."""
    n_q = min(cfg.n_heads, MAX_HEADS_DRAWN)
    x_q = head_x(n_q, n_q)
    size = float(np.clip(620 / n_q, 3, 14))
    sketch.connect(x_q, y0 + 2.2, x_q, y0 + 1.45, GREY)
    sketch.connect(x_q, y0 + 1.25, 0.42, y0 + 0.4, "rgba(22,163,74,0.45)")
    sketch.connect(x_q, y0 + 2.2, 0.9, y0 + 0.4, "rgba(147,51,234,0.25)", dash="dot")
    sketch.boxes(x_q, y0 + 2.4, VARIANT_COLOR["MLA"], size, [f"query head {i}" for i in range(n_q)])
    sketch.boxes(x_q, y0 + 1.35, "rgba(150,150,150,0.5)", size * 0.8,
                 [f"k^C, v^C of head {i} = W^UK, W^UV · c^KV (not cached)" for i in range(n_q)])
    sketch.boxes([0.42, 0.9], y0 + 0.15, [VARIANT_COLOR["MLA"], COLORS[3]], 0,
                 [f"c^KV (d_c = {cfg.kv_lora_rank}), cached, shared by all heads",
                  f"k^R (d_h^R = {cfg.rope_head_dim}), cached, shared by all heads"])
    sketch.marks["size"][-2:] = [26, 14]
    sketch.labels += [(0.42, y0 - 0.3, f"cached latent c^KV (d_c = {cfg.kv_lora_rank})"),
                      (0.9, y0 - 0.3, f"cached RoPE key k^R (d_h^R = {cfg.rope_head_dim})")]


def timing_figure(timing: dict) -> go.Figure:
    """Measured milliseconds per decoded token against context length, per variant."""
    fig = figure("Measured decode time per token on this machine (CPU, fp32)",
                 "context length T (tokens)", "ms per token", height=380)
    for variant, seconds in timing["seconds"].items():
        fig.add_trace(go.Scatter(x=timing["contexts"], y=np.asarray(seconds) * 1e3, mode="lines+markers",
                                 name=variant, line={"color": VARIANT_COLOR[variant]}))
    fig.update_xaxes(type="log", tickvals=timing["contexts"], ticktext=[f"{t:,}" for t in timing["contexts"]])
    fig.update_yaxes(type="log")
    return fig
