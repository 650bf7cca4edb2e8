"""RLHF vs DPO tab: two ways to learn from preferences, on the same pairs, with a known true reward.

Run alone with ``python -m demos.preferences.ui``. Imports no torch: training runs in
``compute.run`` (torch is imported there, on first use). The opening view is drawn from the
benchmark's stored run of the default settings (``assets/preferences/bandit_default.json``).

The tab has two halves: the exact problem (one prompt, K responses; built here) and the language
model on Text World (issue 18, items 2-3; its place is marked in ``build``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache

import gradio as gr
import numpy as np

from demos.preferences import compute, figures
from playground import settings, tempfiles
from playground.plots import message_figure
from playground.ui_helpers import (Api, Binding, Cancelled, api_errors, explanation, model_event, progress_steps,
                                   run_steps, user_errors)

TITLE = "RLHF vs DPO"
SUMMARY = "Learning from preferences two ways, reward model + RL or DPO, on the same pairs with a known true reward."
STORED = settings.ASSETS_DIR / "preferences" / "bandit_default.json"
BENCHMARK = settings.ASSETS_DIR / "preferences" / "benchmark.json"
DEFAULT = compute.BanditParams()
MISSING = "No stored run of the default settings: press Train (or run `python -m benchmarks.preferences_bandit --write`)"
EXAMPLES = [  # beta, tau, n_candidates, n_pairs, seed: what each shows is in the label
    [0.5, 1.0, 16, 5000, 0],
    [0.1, 1.0, 16, 5000, 0],
    [0.5, 1.0, 16, 100, 0],
    [0.5, 0.01, 16, 5000, 0],
    [1.0, 1.0, 64, 20000, 0],
]

INTRO = """
### Two ways to learn from preferences
**RLHF** (InstructGPT) fits a *reward model* to human preference pairs (Bradley-Terry), then runs
reinforcement learning to maximise that learned reward minus a KL penalty to the reference model.
**DPO** (Rafailov et al. 2023) noticed that the KL-regularised optimum has a closed form, so the policy
itself implies a reward, and one classification loss on the pairs replaces the reward model and the RL loop.
Here both learn from **the same pairs**, labelled by a **known true reward**, so we can see how close each
gets to the optimum they both aim at, and where they part.
"""

EXACT_INTRO = """
### The exact problem: one prompt, K responses
A prompt has K candidate responses; the reference policy $\\pi_\\text{ref}$ and the true reward $r \\in [0, 1]$
of each are drawn from the seed. Pairs of different responses are sampled from $\\pi_\\text{ref}$ and labelled
by Bradley-Terry, $P(y_1 \\succ y_2) = \\sigma((r(y_1) - r(y_2))/\\tau)$, so the labels carry $r/\\tau$ and the
optimum both methods aim at is $\\pi^* = \\pi_\\text{ref}\\, e^{r/(\\tau\\beta)} / Z$, computed here in closed form.
Press **Train**: DPO and RLHF each train to convergence on the pairs (about a second).
"""

EXPLANATION = r"""
**The RLHF objective** (Ziegler et al. 2019; Ouyang et al. 2022), for a reward $r$ and a reference policy:
$$\max_\pi\; \mathbb{E}_{y \sim \pi}[r(y)] - \beta\, \mathrm{KL}(\pi \,\|\, \pi_\text{ref}).$$

**Its closed form** (DPO paper, eq. 4): the maximiser is
$$\pi^*(y) = \frac{1}{Z}\,\pi_\text{ref}(y)\, e^{r(y)/\beta},\qquad Z = \sum_y \pi_\text{ref}(y)\, e^{r(y)/\beta},$$
and the objective's value there is $\beta \log Z$. Inverted, $r(y) = \beta \log \frac{\pi^*(y)}{\pi_\text{ref}(y)} + \beta \log Z$:
**every policy implies a reward**, up to a constant that cancels in a comparison.

**Bradley-Terry labels** with noise $\tau$: $P(y_w \succ y_l) = \sigma\big((r(y_w) - r(y_l))/\tau\big)$. Only $r/\tau$
can be learned from them, so both methods aim at $\pi^* = \pi_\text{ref}\, e^{r/(\tau\beta)}/Z$.

**RLHF, stage 1, the reward model**: one scalar $\hat r(y)$ per response, fitted by maximum likelihood with a
weak Gaussian prior $\mathcal{N}(0, 10^2)$ (L-BFGS):
$$\mathcal{L}_R = -\sum_{(y_w, y_l)} \log \sigma\big(\hat r(y_w) - \hat r(y_l)\big) + \frac{\|\hat r\|^2}{2 \cdot 10^2}.$$
**Stage 2, RL** from $\pi_\text{ref}$ on $J(\pi) = \mathbb{E}_\pi[\hat r] - \beta\,\mathrm{KL}(\pi\|\pi_\text{ref})$ with the exact
policy gradient (all K responses, no sampling), $\nabla J = \mathbb{E}_\pi[\nabla \log \pi(y)\, A(y)]$ with
$A(y) = \hat r(y) - \beta \log\frac{\pi(y)}{\pi_\text{ref}(y)} - \mathbb{E}_\pi[\dots]$: InstructGPT's reward with its KL penalty.
Each step is the natural gradient (for a softmax policy, $A$ itself), the update PPO's trust region approximates.

**DPO** (eq. 7), on the same pairs, full batch, Adam on the K logits from $\pi_\text{ref}$:
$$\mathcal{L}_\text{DPO} = -\frac{1}{N}\sum_{(y_w, y_l)} \log \sigma\Big(\beta \log\frac{\pi(y_w)}{\pi_\text{ref}(y_w)} - \beta \log\frac{\pi(y_l)}{\pi_\text{ref}(y_l)}\Big).$$
Its minimiser's implied reward $\beta\log(\pi/\pi_\text{ref})$ is the Bradley-Terry maximum-likelihood reward, so
on this problem the two methods aim at the same policy: $\pi_\text{ref}\,e^{\hat r_\text{MLE}/\beta}/Z$. They part when
that maximum does not exist (Ford 1957: some response is never beaten, through any chain of wins, by
another): the likelihood keeps rising as rewards go to $\pm\infty$; DPO has nothing to stop it, the reward
model has its prior. Reward errors reach the policy as $e^{\delta r/\beta}$: the smaller $\beta$, the more the
sampling error of a few pairs costs.

**KL** between policies over the K responses: $\mathrm{KL}(p\|q) = \sum_y p(y) \log \frac{p(y)}{q(y)}$ nats.
"""


# ----------------------------------------------------------------------------- formatting
def summary_markdown(run: dict) -> str:
    """The policies' expected true reward and KLs, and what the pairs allowed."""
    s, p = run["stats"], run["params"]
    rows = ["| policy | E_π[r] | KL(π ‖ π_ref) | KL(π ‖ π*) |", "|---|---|---|---|",
            f"| reference π_ref | {s['expected_reward_reference']:.3f} | 0 | {s['kl_reference_to_optimal']:.4f} |",
            f"| optimum π* | {s['expected_reward_optimal']:.3f} | {s['kl_optimal_to_reference']:.4f} | 0 |",
            f"| DPO | {s['expected_reward_dpo']:.3f} | {s['kl_dpo_to_reference']:.4f} | **{run['kl_dpo_to_optimal']:.4f}** |",
            f"| RLHF | {s['expected_reward_rlhf']:.3f} | {s['kl_rlhf_to_reference']:.4f} | **{run['kl_rlhf_to_optimal']:.4f}** |"]
    seconds = s["train_seconds"]
    return (f"**β = {p['beta']:g}, τ = {p['tau']:g}, K = {p['n_candidates']}, {p['n_pairs']:,} pairs, seed {p['seed']}**: "
            f"{s['responses_in_pairs']} of the {p['n_candidates']} responses appear in a pair. Reward model: accuracy "
            f"{s['reward_model_accuracy']:.3f} on fresh pairs (the labels' ceiling is {s['accuracy_ceiling']:.3f}). "
            f"Trained {s['steps']} steps each, DPO in {seconds['dpo']:.2f} s, RLHF in {seconds['rlhf']:.2f} s.\n\n"
            + "\n".join(rows))


def findings(run: dict) -> str:
    """What this run shows, in words, from its numbers."""
    s, p = run["stats"], run["params"]
    dpo, rlhf = run["kl_dpo_to_optimal"], run["kl_rlhf_to_optimal"]
    between = compute.kl(np.log(np.maximum(run["dpo"], 1e-300)), np.log(np.maximum(run["rlhf"], 1e-300)))
    parts = [f"**Measured**: KL to the optimum π* is **{dpo:.4f}** nats for DPO and **{rlhf:.4f}** for RLHF "
             f"(π_ref itself: {s['kl_reference_to_optimal']:.3f})."]
    if s["mle_exists"]:
        parts.append(f"Every response in a pair beats every other through some chain of wins, so the Bradley-Terry "
                     f"maximum-likelihood reward is finite: DPO converges to exactly π_ref·exp(r̂_MLE/β)/Z, and RLHF, whose "
                     f"reward model is the same fit with a weak prior, lands on almost the same policy (KL between them "
                     f"{between:.1e}). What separates both from π* is the sampling error of {p['n_pairs']:,} pairs, "
                     f"which reaches the policy as exp(δr/β): more pairs or a larger β shrink it.")
    else:
        parts.append(f"Some response is never beaten through any chain of wins, so the Bradley-Terry maximum-likelihood "
                     f"reward is infinite (Ford 1957). DPO's loss keeps falling as its logits grow: where it ends depends on "
                     f"how long it trains, not on β (Azar et al. 2023). The reward model's prior keeps r̂ finite, and RLHF's "
                     f"KL penalty then does its job; KL between the two policies: {between:.3f}.")
    gamed = overrated(run)
    if gamed:
        parts.append(gamed)
    return " ".join(parts)


def overrated(run: dict) -> str:
    """The response the learned rewards overrate most, if the policies give it clearly more than pi* does."""
    ref, target = np.asarray(run["reference"]), np.asarray(run["true_reward"]) / run["params"]["tau"]
    r_hat = np.asarray(run["reward_model"])
    error = (r_hat - ref @ r_hat) - (target - ref @ target)
    i = int(np.argmax(error))
    rlhf, dpo, optimal = run["rlhf"][i], run["dpo"][i], run["optimal"][i]
    if max(rlhf, dpo) < max(1.5 * optimal, 0.02):
        return ""
    counts = np.asarray(run["win_counts"])
    seen = int(counts[i].sum() + counts[:, i].sum())
    return (f"Where the learned reward is wrong, the policy follows it: the reward model rates y{i + 1} (r = "
            f"{run['true_reward'][i]:.2f}, in {seen} pairs) {error[i]:.2f} too high (relative to π_ref's mean), "
            f"and RLHF gives it probability {rlhf:.3f}, DPO {dpo:.3f}, where π* gives {optimal:.3f}.")


def views(run: dict) -> tuple:
    """Everything the exact problem draws from one run's export, in ``build``'s output order."""
    return (summary_markdown(run), figures.policies_figure(run), figures.curves_figure(run),
            figures.rewards_figure(run), findings(run), run["params"])


def stored_run() -> dict | None:
    """The benchmark's stored run of the default settings, or None (missing, unreadable or stale)."""
    try:
        run = json.loads(STORED.read_text())
    except (OSError, ValueError):
        return None
    return run if run.get("params") == asdict(DEFAULT) else None


@lru_cache(maxsize=1)
def opening_views() -> tuple:
    """The default settings' views from the stored run (no training, no torch), drawn on page load
    rather than at build (the app's start-up budget); cached per process."""
    run = stored_run()
    if run:
        return views(run)
    missing = message_figure(MISSING)
    return MISSING, missing, missing, missing, "", asdict(DEFAULT)


def stored_benchmark() -> dict | None:
    try:
        return json.loads(BENCHMARK.read_text())
    except (OSError, ValueError):
        return None


def sweep_markdown(sweep: dict) -> str:
    """What the stored sweep over pairs, beta and tau shows, in words, from its numbers."""
    def curve(beta, tau):
        return next((c for c in sweep["curves"] if c["beta"] == beta and c["tau"] == tau), None)

    n = sweep["n_pairs"]
    noisy, sharp = curve(0.5, 1.0), curve(2.0, 0.01)
    small, large = curve(0.1, 1.0), curve(2.0, 1.0)
    if not all((noisy, sharp, small, large)):
        return ""
    return (f"**Measured** (the benchmark, medians of {sweep['seeds']} seeds). With noisy labels (τ = 1) the two "
            f"methods coincide once the pairs connect every response, and the KL falls as N grows: at β = 0.5 from "
            f"{noisy['dpo'][n.index(300)]:.3f} with 300 pairs to {noisy['dpo'][-1]:.3f} with {n[-1]:,}. A smaller β "
            f"amplifies the same reward errors: with {n[-1]:,} pairs, {small['dpo'][-1]:.3f} nats at β = 0.1 against "
            f"{large['dpo'][-1]:.4f} at β = 2. With near-certain labels (τ = 0.01) the maximum-likelihood reward is "
            f"infinite and the methods part: at β = 2 DPO stays at {sharp['dpo'][-1]:.2f} nats with {n[-1]:,} pairs "
            f"(its β no longer holds it back) while RLHF, whose reward model has a prior, falls to {sharp['rlhf'][-1]:.2f}. "
            "With very few pairs neither is reliable (responses never compared keep an arbitrary reward).")


@lru_cache(maxsize=1)
def opening_sweep() -> tuple:
    """The stored sweep's figure and words (drawn on page load; cached per process)."""
    sweep = (stored_benchmark() or {}).get("pairs_sweep")
    if not sweep:
        return message_figure("No stored sweep: run `python -m benchmarks.preferences_bandit --write`"), ""
    return figures.sweep_figure(sweep), sweep_markdown(sweep)


# ----------------------------------------------------------------------------- callbacks
@api_errors
def preference_bandit_api(beta: float, n_candidates: int, n_pairs: int, tau: float, seed: int) -> dict:
    """Train DPO and RLHF on the exact problem (see README): the policies, the reward and the KLs to pi*."""
    return compute.run(compute.BanditParams(beta, n_candidates, n_pairs, tau, seed)).api()


def train(p: compute.BanditParams, progress=None):
    """The Train button (``binding.event(train)``): both methods step-wise (a closed page stops the
    run), with progress; the page keeps its views until the new ones are drawn."""
    p = compute.check_params(p)

    def work(on_step, should_stop):
        return compute.run(p, report=progress_steps(on_step, should_stop, progress))

    try:
        result = yield from run_steps(work)
    except Cancelled:
        return
    yield views(result.export())


def api_args(p: compute.BanditParams) -> dict:
    """The ``preference_bandit`` call of these settings, in the endpoint's order."""
    return {"beta": p.beta, "n_candidates": p.n_candidates, "n_pairs": p.n_pairs, "tau": p.tau, "seed": p.seed}


@user_errors
def on_export(params: dict | None):
    """The run on the page (its settings are kept beside it), everything it computed, as JSON."""
    p = compute.check_params(compute.BanditParams(**(params or asdict(DEFAULT))))
    folder = tempfiles.output_folder("preferences_")
    path = folder / "preference_bandit.json"
    path.write_text(json.dumps(compute.run(p).export(), indent=1))
    return gr.update(value=[str(path)], visible=True)


# ----------------------------------------------------------------------------- layout
def bandit_controls() -> Binding:
    with gr.Row():
        beta = gr.Slider(*compute.BETA_RANGE, value=DEFAULT.beta, step=0.01, label="β (KL coefficient)",
                         info="max E[r/τ] − β KL(π‖π_ref): smaller β lets π move further", elem_id="pref-beta",
                         min_width=200)
        tau = gr.Slider(*compute.TAU_RANGE, value=DEFAULT.tau, step=0.01, label="τ (label noise)",
                        info="P(y₁ ≻ y₂) = σ((r₁ − r₂)/τ): small τ, near-certain labels", elem_id="pref-tau",
                        min_width=200)
        n_candidates = gr.Slider(compute.MIN_CANDIDATES, compute.MAX_CANDIDATES, value=DEFAULT.n_candidates, step=1,
                                 label="K (responses)", info="candidate responses to the prompt", elem_id="pref-k",
                                 min_width=200)
    with gr.Row():
        n_pairs = gr.Slider(compute.MIN_PAIRS, compute.MAX_PAIRS, value=DEFAULT.n_pairs, step=1, label="pairs N",
                            info="labelled preference pairs, sampled from π_ref", elem_id="pref-pairs", min_width=200)
        seed = gr.Number(DEFAULT.seed, precision=0, minimum=0, maximum=compute.MAX_SEED, label="seed",
                         info="draws π_ref, the rewards and the pairs", elem_id="pref-seed", min_width=200)
    return Binding(compute.BanditParams, check=compute.check_params, api=Api("preference_bandit", api_args),
                   beta=beta, tau=tau, n_candidates=n_candidates, n_pairs=n_pairs, seed=seed)


def build_exact_problem(demo: gr.Blocks) -> Binding:
    """The exact problem's section: controls, Train, the three policies, the curves, the rewards."""
    gr.Markdown(EXACT_INTRO, latex_delimiters=[{"left": "$", "right": "$", "display": False}])
    binding = bandit_controls()
    with gr.Row():
        run = gr.Button("Train DPO and RLHF", variant="primary", elem_id="pref-train", scale=2)
        export = gr.Button("Download this run (JSON)", size="sm", elem_id="pref-export", scale=1)
    files = gr.File(label="download", file_count="multiple", visible=False)
    c = binding.components
    gr.Examples(EXAMPLES, inputs=[c["beta"], c["tau"], c["n_candidates"], c["n_pairs"], c["seed"]],
                label="Examples: the default; small β; few pairs; near-certain labels (τ = 0.01); many responses")
    summary = gr.Markdown(elem_id="pref-summary", elem_classes=["gp-scroll"])
    policies = gr.Plot(label="policies", elem_id="pref-policies")
    with gr.Row():
        curves = gr.Plot(label="training", elem_id="pref-curves", min_width=300)
        rewards = gr.Plot(label="learned rewards", elem_id="pref-rewards", min_width=300)
    found = gr.Markdown(elem_id="pref-findings")
    shown = gr.JSON(visible=False)  # the settings of the run on the page (not gr.State: no heartbeat)
    gr.Markdown("### What changes with β, the number of pairs and the noise")
    sweep = gr.Plot(label="sweep", elem_id="pref-sweep")
    sweep_note = gr.Markdown(elem_id="pref-sweep-note")
    explanation(EXPLANATION)

    outputs = [summary, policies, curves, rewards, found, shown]
    on_train = binding.event(train)
    run.click(on_train, binding.inputs, outputs, api_visibility="private", **model_event())
    export.click(on_export, [shown], files, api_visibility="private", **model_event())
    gr.api(preference_bandit_api, api_name="preference_bandit", **model_event())
    opening = demo.load(opening_views, outputs=outputs, api_visibility="private")
    binding.on_open(opening, on_train, outputs, **model_event())
    demo.load(opening_sweep, outputs=[sweep, sweep_note], api_visibility="private")
    return binding


def build_language_model(demo: gr.Blocks) -> None:
    """LANGUAGE-MODEL SECTION (issue 18, items 2-3), to be added here: the Text World SFT policy,
    reward model, PPO and DPO at several betas; samples side by side; the reward-KL frontier; the
    ``preference`` endpoint. Nothing is shown until it exists."""


def build(demo: gr.Blocks) -> Binding:
    gr.Markdown(INTRO)
    binding = build_exact_problem(demo)
    build_language_model(demo)
    return binding


if __name__ == "__main__":
    with gr.Blocks(title=TITLE) as _demo:
        build(_demo)
    _demo.launch()
