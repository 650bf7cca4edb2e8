"""Plotly figures of the Instruction tuning tab: formatting only (numbers come from ``compute``,
``self_instruct`` or the benchmark's stored evaluation)."""

from __future__ import annotations

import plotly.graph_objects as go

from demos.common import text_world as tw
from playground.plots import COLORS, figure


def legend_below(fig: go.Figure) -> go.Figure:
    """The legend under the plot, so that on a phone it never covers the title."""
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.3, "x": 0, "xanchor": "left"},
                      margin={"b": 150})
    return fig


def similarity_figure(highest: list[float], threshold: float) -> go.Figure:
    """Histogram of each valid candidate's highest ROUGE-L against the pool, the threshold marked."""
    fig = figure("Highest ROUGE-L against the pool", "ROUGE-L F-measure", "candidates", height=320)
    fig.add_trace(go.Histogram(x=highest, xbins={"start": 0, "end": 1.0001, "size": 0.05}, marker_color=COLORS[0],
                               hovertemplate="%{x}: %{y}<extra></extra>"))
    fig.add_vline(x=threshold, line={"color": COLORS[1], "width": 2, "dash": "dash"},
                  annotation_text=f"threshold {threshold:.2f}", annotation_position="top left")
    fig.update_xaxes(range=[0, 1.02])
    return fig


def families_figure(families: dict) -> go.Figure:
    """Kept tasks per family."""
    order = [f for f in (*tw.FAMILIES, "other") if f in families]
    fig = figure("Kept tasks per family", "", "tasks", height=320)
    fig.add_trace(go.Bar(x=order, y=[families[f] for f in order],
                         marker_color=[COLORS[2] if f in tw.WORD_FAMILIES else COLORS[3] for f in order],
                         hovertemplate="%{x}: %{y}<extra></extra>"))
    fig.update_xaxes(tickangle=-45)
    return fig


def sweep_figure(sweep: list[dict], threshold: float) -> go.Figure:
    """Kept tasks and distinct phrasings against the threshold, for the same candidates."""
    fig = figure("What the threshold keeps (same candidates)", "ROUGE-L threshold", "tasks", height=320)
    x = [s["threshold"] for s in sweep]
    fig.add_trace(go.Scatter(x=x, y=[s["kept"] for s in sweep], name="kept", mode="lines+markers",
                             line={"color": COLORS[0], "width": 3}))
    fig.add_trace(go.Scatter(x=x, y=[s["phrasings"] for s in sweep], name="distinct phrasings kept",
                             mode="lines+markers", line={"color": COLORS[4], "dash": "dash"}))
    fig.add_vline(x=threshold, line={"color": COLORS[1], "width": 2, "dash": "dash"})
    return fig


def scaling_figure(evaluation: dict) -> go.Figure:
    """Exact match on held-out instructions against the number of tuning examples (0 = base),
    word tasks and questions, and the two variants at the largest size."""
    rows = {r["model"]: r for r in evaluation["models"]}
    ladder = [m for m in ("base", "n500", "n2000", "n8000") if m in rows]
    x = [rows[m]["examples"] for m in ladder]
    fig = figure("Exact match on held-out instructions", "instruction-tuning examples (0 = the base model)",
                 "exact match", height=480)
    for key, name, color in (("group:words", "word tasks", COLORS[2]), ("group:questions", "questions", COLORS[3]),
                             ("phrasing:held-out", "held-out phrasings", COLORS[4])):
        fig.add_trace(go.Scatter(x=x, y=[rows[m]["exact_match"][key] for m in ladder], name=name, mode="lines+markers",
                                 line={"color": color, "width": 3}, text=ladder,
                                 hovertemplate="%{text}: %{y:.3f}<extra>" + name + "</extra>"))
    for model, symbol, label in (("n8000-unfiltered", "x", "filter off"), ("n8000-noisy", "diamond", "mistakes kept")):
        if model in rows:
            for key, color in (("group:words", COLORS[2]), ("group:questions", COLORS[3])):
                fig.add_trace(go.Scatter(x=[rows[model]["examples"]], y=[rows[model]["exact_match"][key]],
                                         mode="markers", name=f"{label} ({'words' if 'words' in key else 'questions'})",
                                         marker={"symbol": symbol, "size": 12, "color": color,
                                                 "line": {"width": 1, "color": "#111"}}))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=x)
    fig.update_yaxes(range=[0, 1.05])
    return legend_below(fig)


def family_figure(evaluation: dict) -> go.Figure:
    """Exact match per family for every model (grouped bars)."""
    fig = figure("Exact match per family (held-out)", "", "exact match", height=480)
    for i, r in enumerate(evaluation["models"]):
        fig.add_trace(go.Bar(x=list(tw.FAMILIES), y=[r["exact_match"].get(f"family:{f}", 0) for f in tw.FAMILIES],
                             name=r["model"], marker_color=COLORS[i % len(COLORS)]))
    fig.update_layout(barmode="group")
    fig.update_xaxes(tickangle=-45)
    fig.update_yaxes(range=[0, 1.05])
    return legend_below(fig)


def loss_figure(training_log: dict) -> go.Figure:
    """Each fine-tune's training loss (the tasks' response tokens, and every token of the replayed
    pretraining documents when ``tune_config.replay`` > 0), against the share of its training."""
    replay = training_log.get("tune_config", {}).get("replay", 0)
    title = ("Fine-tuning loss (tasks' response tokens + replayed pretraining text)" if replay
             else "Fine-tuning loss (response tokens only)")
    fig = figure(title, "share of training", "cross-entropy (nats)", height=420)
    for i, (name, run) in enumerate(training_log.get("finetunes", {}).items()):
        loss = run.get("loss", [])
        if loss:
            last = loss[-1]["step"]
            fig.add_trace(go.Scatter(x=[r["step"] / last for r in loss], y=[r["loss"] for r in loss], name=name,
                                     mode="lines", line={"color": COLORS[i % len(COLORS)]}))
    fig.update_yaxes(type="log")
    return legend_below(fig)
