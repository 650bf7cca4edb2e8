"""Plotly figures of the RLHF vs DPO tab: formatting only. Each takes the JSON-ready export of a
run (``compute.BanditResult.export()``, also what the benchmark stores for the opening view)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from playground.plots import COLORS, figure

POLICIES = (("reference", "reference π_ref", "#8b93a1"), ("optimal", "optimum π*", COLORS[2]),
            ("dpo", "DPO", COLORS[0]), ("rlhf", "RLHF", COLORS[1]))


def by_reward(run: dict) -> np.ndarray:
    """Response indices from the lowest true reward to the highest."""
    return np.argsort(run["true_reward"], kind="stable")


def policies_figure(run: dict) -> go.Figure:
    """The four policies side by side, the responses ordered by their true reward."""
    order = by_reward(run)
    r = np.asarray(run["true_reward"])[order]
    labels = [f"y{i + 1}" for i in order]
    fig = figure("The policies over the K responses (ordered by true reward)", "response (true reward r below)",
                 "probability", height=400)
    for key, name, color in POLICIES:
        p = np.asarray(run[key])[order]
        fig.add_trace(go.Bar(x=labels, y=p, name=name, marker_color=color, customdata=r,
                             hovertemplate="%{x} (r = %{customdata:.2f}): %{y:.4f}<extra>" + name + "</extra>"))
    fig.update_layout(barmode="group", bargap=0.15, bargroupgap=0.02)
    fig.update_xaxes(tickvals=labels, ticktext=[f"{lab}<br>{v:.2f}" for lab, v in zip(labels, r)],
                     tickfont={"size": 10 if len(labels) <= 24 else 8})
    return fig


def curves_figure(run: dict) -> go.Figure:
    """KL(pi_t || pi*) against the optimiser step, both methods (log scale)."""
    fig = figure("KL to the optimum as training goes", "optimiser step", "KL(π_t ‖ π*)  (nats, log scale)",
                 height=380)
    for key, name, color in (("dpo_curve", "DPO (Adam on the DPO loss)", COLORS[0]),
                             ("rlhf_curve", "RLHF (policy gradient on r̂)", COLORS[1])):
        curve = run[key]
        fig.add_trace(go.Scatter(x=curve["step"], y=np.maximum(curve["kl_to_optimal"], 1e-12), name=name,
                                 mode="lines", line={"color": color, "width": 2.5},
                                 hovertemplate="step %{x}: %{y:.3g} nats<extra>" + name + "</extra>"))
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


def rewards_figure(run: dict) -> go.Figure:
    """DPO's implied reward beta log(pi/pi_ref) and RLHF's reward model r_hat against the reward the
    labels carry, r / tau; each shifted to the same pi_ref-weighted mean (rewards are only known up
    to a constant). Marker size: how often the response was in a pair."""
    p = run["params"]
    ref = np.asarray(run["reference"])
    target = np.asarray(run["true_reward"]) / p["tau"]
    implied = p["beta"] * (np.log(np.maximum(run["dpo"], 1e-300)) - np.log(ref))
    r_hat = np.asarray(run["reward_model"])
    counts = np.asarray(run["win_counts"])
    seen = counts.sum(0) + counts.sum(1)

    def centred(x):
        return x - ref @ x + ref @ target

    size = 6 + 14 * np.sqrt(seen / max(1, seen.max()))
    fig = figure("Learned rewards against the true one", "r / τ  (the reward the labels carry)",
                 "learned reward (shifted)", height=380)
    low, high = float(target.min()), float(target.max())
    fig.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="exact",
                             line={"color": "#8b93a1", "dash": "dash"}, hoverinfo="skip"))
    names = [f"y{i + 1} ({int(n)} pairs)" for i, n in enumerate(seen)]
    for y, name, color, symbol in ((centred(implied), "DPO: β log(π/π_ref)", COLORS[0], "circle-open"),
                                   (centred(r_hat), "RLHF: reward model r̂", COLORS[1], "x")):
        fig.add_trace(go.Scatter(x=target, y=y, mode="markers", name=name, text=names,
                                 marker={"color": color, "size": size, "symbol": symbol, "opacity": 0.8},
                                 hovertemplate="%{text}: r/τ = %{x:.2f}, learned %{y:.2f}<extra></extra>"))
    return fig


def sweep_figure(sweep: dict) -> go.Figure:
    """The benchmark's median KL to pi* against the number of pairs: one panel per label noise tau,
    one colour per beta, DPO solid and RLHF dashed (log-log)."""
    from playground.plots import make_subplots, wrap_title

    taus = sorted({c["tau"] for c in sweep["curves"]}, reverse=True)
    fig = make_subplots(rows=1, cols=len(taus), shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=[wrap_title(f"τ = {tau:g}" + (" (noisy labels)" if tau >= 0.5
                                                                     else " (near-certain labels)"), 14)
                                        for tau in taus])  # wrapped: one line ran into the other on phones
    base = figure()
    fig.update_layout(base.layout)
    fig.update_layout(title={"text": wrap_title(f"KL(π ‖ π*) against the number of pairs (K = {sweep['n_candidates']}, "
                                                f"median of {sweep['seeds']} seeds)", 40), "x": 0.02, "y": 0.97,
                             "yanchor": "top", "font": {"size": 15}},
                      margin={"l": 60, "r": 20, "t": 140, "b": 110}, height=520,  # room for wrapped titles
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -0.2, "yanchor": "top"})
    betas = sorted({c["beta"] for c in sweep["curves"]})
    for c in sweep["curves"]:
        col = taus.index(c["tau"]) + 1
        color = COLORS[betas.index(c["beta"]) % len(COLORS)]
        for method, dash in (("dpo", "solid"), ("rlhf", "dash")):
            name = f"{'DPO' if method == 'dpo' else 'RLHF'}, β = {c['beta']:g}"
            fig.add_trace(go.Scatter(x=sweep["n_pairs"], y=np.maximum(c[method], 1e-6), mode="lines+markers", name=name,
                                     legendgroup=name, showlegend=col == 1, line={"color": color, "dash": dash},
                                     hovertemplate=f"{name}, τ = {c['tau']:g}: " + "%{x} pairs, %{y:.3g} nats<extra></extra>"),
                          row=1, col=col)
    fig.update_xaxes(type="log", title_text="pairs N", gridcolor="rgba(139,147,161,0.25)")
    fig.update_yaxes(type="log", exponentformat="power", gridcolor="rgba(139,147,161,0.25)")
    fig.update_yaxes(title_text="KL to π* (nats)", row=1, col=1)
    return fig


# ----------------------------------------------------------------------------- the language model
METHOD_STYLE = {"sft": ("SFT", "#8b93a1"), "rlhf": ("RLHF (PPO)", COLORS[1]), "dpo": ("DPO", COLORS[0])}


def _legend_below(fig: go.Figure, bottom: int = 120) -> go.Figure:
    """The legend under the plot, so that on a phone it never covers the title."""
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0, "xanchor": "left"},
                      margin={"b": bottom})
    return fig


def frontier_figure(evaluation: dict, chosen: tuple[str, float] | None = None) -> go.Figure:
    """The reward-KL frontier: mean true reward r* against the measured KL(pi || pi_SFT) of every
    policy, one line per method through its betas; dotted, the reward model's score of the same
    samples (right axis), which keeps rising where the true reward stops: over-optimisation."""
    from playground.plots import wrap_title

    rows = evaluation["policies"]
    fig = figure(wrap_title("True reward against KL to SFT (held-out instructions)", 34), "KL(π ‖ π_SFT)  (nats)",
                 "mean true reward r*", height=440)
    sft = next(r for r in rows if r["method"] == "sft")
    for method in ("rlhf", "dpo"):
        name, color = METHOD_STYLE[method]
        points = sorted((r for r in rows if r["method"] == method), key=lambda r: -r["beta"])
        x = [sft["kl"]] + [r["kl"] for r in points]
        labels = ["SFT"] + [f"β = {r['beta']:g}" for r in points]
        fig.add_trace(go.Scatter(x=x, y=[sft["true_reward"]] + [r["true_reward"] for r in points],
                                 mode="lines+markers+text", name=f"{name}: true reward r*", text=labels,
                                 textposition="top center", textfont={"size": 10}, line={"color": color},
                                 hovertemplate="%{text}: KL %{x:.2f}, r* %{y:.3f}<extra>" + name + "</extra>"))
        fig.add_trace(go.Scatter(x=x, y=[sft["learned_reward"]] + [r["learned_reward"] for r in points], yaxis="y2",
                                 mode="lines+markers", name=f"{name}: reward model's score", text=labels,
                                 line={"color": color, "dash": "dot"}, marker={"symbol": "x"},
                                 hovertemplate="%{text}: KL %{x:.2f}, r̂ %{y:.2f}<extra>" + name + "</extra>"))
    if chosen:
        hit = next((r for r in rows if (r["method"], r["beta"]) == chosen), None)
        if hit:
            fig.add_trace(go.Scatter(x=[hit["kl"]], y=[hit["true_reward"]], mode="markers", name="your choice",
                                     marker={"size": 16, "color": "rgba(0,0,0,0)",
                                             "line": {"width": 2, "color": METHOD_STYLE[chosen[0]][1]}},
                                     hoverinfo="skip"))
    fig.update_layout(yaxis2={"title": "reward model's score r̂", "overlaying": "y", "side": "right",
                              "showgrid": False}, margin={"r": 60, "t": 80})
    return _legend_below(fig, 150)


def lm_curves_figure(log: dict) -> go.Figure:
    """Each stage's training curve: SFT loss, the reward model's loss, DPO's loss per beta, and PPO's
    reward-model score and true reward per beta (the true reward is logged, never trained on)."""
    from playground.plots import make_subplots, wrap_title

    titles = ["SFT: loss", "Reward model: loss", "DPO: loss", "PPO: rollouts' r* (solid), r̂ (dotted)"]
    fig = make_subplots(rows=2, cols=2, subplot_titles=[wrap_title(t, 22) for t in titles],
                        vertical_spacing=0.2, horizontal_spacing=0.12)
    fig.update_layout(figure().layout)
    fig.update_layout(height=620, title={"text": "Training curves of each stage", "x": 0.02, "font": {"size": 15}},
                      margin={"l": 50, "r": 20, "t": 90, "b": 120})
    stages = log["stages"]
    sft = stages["sft"]["log"]
    fig.add_trace(go.Scatter(x=[r["step"] for r in sft], y=[r["loss"] for r in sft], name="SFT",
                             line={"color": METHOD_STYLE["sft"][1]}, showlegend=False), row=1, col=1)
    rm = stages["reward_model"]["log"]
    fig.add_trace(go.Scatter(x=[r["step"] for r in rm], y=[r["loss"] for r in rm], name="reward model",
                             line={"color": COLORS[2]}, showlegend=False), row=1, col=2)
    betas = sorted(stages["policies"], key=float)
    for i, beta in enumerate(betas):
        color = COLORS[(i + 3) % len(COLORS)]
        record = stages["policies"][beta]
        dpo, ppo = record["dpo"]["log"], record["rlhf"]["log"]
        fig.add_trace(go.Scatter(x=[r["step"] for r in dpo], y=[r["loss"] for r in dpo], name=f"β = {float(beta):g}",
                                 legendgroup=beta, line={"color": color}), row=2, col=1)
        fig.add_trace(go.Scatter(x=[r["iteration"] for r in ppo], y=[r.get("true_reward") for r in ppo],
                                 name=f"β = {float(beta):g}", legendgroup=beta, showlegend=False,
                                 line={"color": color}), row=2, col=2)
        fig.add_trace(go.Scatter(x=[r["iteration"] for r in ppo], y=[r["score"] for r in ppo], name=f"r̂, β = {float(beta):g}",
                                 legendgroup=beta, showlegend=False, line={"color": color, "dash": "dot"}),
                      row=2, col=2)
    for row, col, x in ((1, 1, "step"), (1, 2, "step"), (2, 1, "step"), (2, 2, "iteration")):
        fig.update_xaxes(title_text=x, row=row, col=col, gridcolor="rgba(139,147,161,0.25)")
        fig.update_yaxes(gridcolor="rgba(139,147,161,0.25)", row=row, col=col)
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0, "xanchor": "left"})
    return fig
