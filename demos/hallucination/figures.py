"""Plotly figures of the Hallucination tab: formatting only (numbers come from ``compute`` or the
benchmark's stored evaluation)."""

from __future__ import annotations

import plotly.graph_objects as go

from playground.plots import COLORS, figure


def candidates_figure(candidates: dict, truth: str | None, answer: str) -> go.Figure:
    """p(value | question) for every value of the asked attribute; the truth in green."""
    fig = figure("p(value | question)", "", "probability", height=300)
    colors = [COLORS[2] if v == truth else COLORS[1] if v.lower() == answer.lower() else COLORS[0] for v in candidates]
    fig.add_trace(go.Bar(x=list(candidates), y=list(candidates.values()), marker_color=colors,
                         hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    fig.update_yaxes(range=[0, 1])
    fig.update_xaxes(tickangle=-45)
    if truth:
        fig.add_annotation(text="green: the world's answer; red: the model's answer", showarrow=False, x=1, y=1.0,
                           xref="paper", yref="paper", xanchor="right", yanchor="bottom", font={"size": 11})
    return fig


def frequency_figure(evaluation: dict) -> go.Figure:
    """Accuracy, mean confidence and the confident-wrong rate against f (bio-only people), with
    unseen people at f = 0 and the question-trained people's accuracy."""
    bio, unseen, qa = evaluation["bio_only"], evaluation["unseen"], evaluation["qa_train"]
    fig = figure("Truth against how often a fact was seen", "f: times each fact was stated in pretraining",
                 "rate", height=380)
    f = [0, *bio["f"]]
    fig.add_trace(go.Scatter(x=f, y=[unseen["accuracy"], *bio["accuracy"]], name="accuracy (bio only)",
                             mode="lines+markers", line={"color": COLORS[2], "width": 3}))
    fig.add_trace(go.Scatter(x=f, y=[unseen["confidence"], *bio["confidence"]], name="mean top probability",
                             mode="lines+markers", line={"color": COLORS[0], "dash": "dash"}))
    fig.add_trace(go.Scatter(x=f, y=[unseen["confident_wrong"], *bio["confident_wrong"]], name="confident (p > 0.5) and wrong",
                             mode="lines+markers", line={"color": COLORS[1]}))
    fig.add_trace(go.Scatter(x=qa["f"], y=qa["accuracy"], name="accuracy (QA pairs also trained)",
                             mode="lines+markers", line={"color": COLORS[3], "dash": "dot"}))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=f)  # f doubles: evenly spaced
    fig.update_yaxes(range=[0, 1.05])
    return fig


def reliability_figure(reliability: dict) -> go.Figure:
    bins = reliability["bins"]
    fig = figure(f"Reliability: ECE = {reliability['ece']:.3f}", "confidence (top probability)", "accuracy", height=380)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                             line={"color": "#8b93a1", "dash": "dash"}))
    fig.add_trace(go.Scatter(x=[b["confidence"] for b in bins], y=[b["accuracy"] for b in bins], mode="lines+markers",
                             name="model", marker={"size": [6 + 14 * (b["n"] / max(x["n"] for x in bins)) ** 0.5 for b in bins]},
                             text=[f"{b['n']} answers" for b in bins], line={"color": COLORS[0], "width": 2}))
    fig.update_xaxes(range=[0, 1.02])
    fig.update_yaxes(range=[0, 1.02])
    return fig


def roc_figure(detection: dict, threshold: float | None = None, score: str = "semantic_entropy") -> go.Figure:
    fig = figure(f"Telling wrong answers from right ones ({detection['n_questions']} questions, "
                 f"{detection['n_samples']} samples each)", "false-positive rate (right answers flagged)",
                 "true-positive rate (wrong answers flagged)", height=400)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"color": "#8b93a1", "dash": "dash"}))
    for key, name, color in (("semantic_entropy", "semantic entropy", COLORS[0]), ("disagreement", "1 - agreement", COLORS[1])):
        roc = detection[f"roc_{key}"]
        fig.add_trace(go.Scatter(x=roc["fpr"], y=roc["tpr"], mode="lines+markers", line={"color": color, "width": 2},
                                 name=f"{name}: AUROC {detection[f'auroc_{key}']:.3f}", line_shape="hv"))
    if threshold is not None:
        roc = detection[f"roc_{score}"]
        i = min(range(len(roc["threshold"])), key=lambda k: abs(roc["threshold"][k] - threshold)
                if roc["threshold"][k] != float("inf") else 1e9)
        fig.add_trace(go.Scatter(x=[roc["fpr"][i]], y=[roc["tpr"][i]], mode="markers", name="your threshold",
                                 marker={"size": 14, "color": COLORS[4], "symbol": "x"}))
    fig.update_xaxes(range=[-0.02, 1.02])
    fig.update_yaxes(range=[-0.02, 1.02])
    return fig


def gekhman_figure(gekhman: dict) -> go.Figure:
    names = [n for n in gekhman if n.startswith("gekhman-")]
    shares = [int(n.split("-")[1]) for n in names]
    fig = figure("Fine-tuning on unknown facts (Gekhman et al. 2024)", "share of fine-tuning examples about unknown people (%)",
                 "rate", height=380)
    fig.add_trace(go.Scatter(x=shares, y=[gekhman[n]["known_accuracy"] for n in names], mode="lines+markers",
                             name="accuracy on held-out known people (f >= 16)", line={"color": COLORS[2], "width": 3}))
    fig.add_trace(go.Scatter(x=shares, y=[gekhman[n]["unseen_confident"] for n in names], mode="lines+markers",
                             name="confident answers about unseen people", line={"color": COLORS[1], "width": 3}))
    if "base" in gekhman:
        for key, color, where in (("known_accuracy", COLORS[2], "top right"), ("unseen_confident", COLORS[1], "bottom right")):
            fig.add_hline(y=gekhman["base"][key], line={"color": color, "dash": "dot", "width": 1},
                          annotation_text="base model", annotation_position=where)
    fig.update_xaxes(tickvals=shares)
    fig.update_yaxes(range=[0, 1.05])
    return fig


def fit_figure(train_log: dict) -> go.Figure:
    """How fast the fine-tunes fit their known and unknown examples (greedy, after each epoch)."""
    fig = figure("Fitting during fine-tuning", "epoch", "training examples answered as trained", height=460)
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0, "xanchor": "left"},
                      margin={"b": 140})
    for i, (name, record) in enumerate(train_log.get("finetunes", {}).items()):
        color = COLORS[i % len(COLORS)]
        epochs = [r["epoch"] for r in record["fit"]]
        fig.add_trace(go.Scatter(x=epochs, y=[r["known"] for r in record["fit"]], mode="lines", name=f"{name} known",
                                 line={"color": color, "width": 2}, legendgroup=name))
        if record["n_unknown"]:
            fig.add_trace(go.Scatter(x=epochs, y=[r["unknown"] for r in record["fit"]], mode="lines",
                                     name=f"{name} unknown", line={"color": color, "dash": "dash", "width": 2},
                                     legendgroup=name))
    fig.update_yaxes(range=[0, 1.05])
    return fig


def context_figure(context: dict) -> go.Figure:
    fig = figure("A contradicting sentence in the context: who wins?", "f of the fact in pretraining", "share of answers",
                 height=380)
    for key, name, color in (("context", "follows the context", COLORS[0]), ("memory", "follows memory", COLORS[2]),
                             ("other", "neither", "#8b93a1")):
        fig.add_trace(go.Bar(x=[str(f) for f in context["f"]], y=context[key], name=name, marker_color=color))
    fig.update_layout(barmode="stack")
    fig.update_yaxes(range=[0, 1])
    return fig
