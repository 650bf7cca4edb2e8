"""RLHF vs DPO tab: two ways to learn from preferences, on the same pairs, with a known true reward.

Run alone with ``python -m demos.preferences.ui``. Imports no torch: training runs in
``compute.run`` (torch is imported there, on first use). The opening view is drawn from the
benchmark's stored run of the default settings (``assets/preferences/bandit_default.json``).

The tab has two halves: the exact problem (one prompt, K responses) and the language model on
Text World (SFT, a reward model, PPO and DPO at four betas, trained by
``python -m demos.preferences.train``; its stored curves and frontier are drawn on open).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache

import gradio as gr
import numpy as np

from demos.preferences import TAB

from demos.preferences import compute, figures, lm
from playground import settings, tempfiles
from playground.plots import message_figure
from playground.ui_helpers import (Api, Binding, Opening, Cancelled, api_errors, explanation, model_event, progress_steps,
                                   run_steps, user_errors)

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
    opening = Opening(lambda: (*opening_views(), *opening_sweep()), [*outputs, sweep, sweep_note])
    binding.on_open(opening, on_train, outputs, **model_event())
    return binding


LM_INTRO = """
### The language model: RLHF and DPO on Text World
A small Llama-style model (the Text World base model of the Hallucination tab) is fine-tuned into an **SFT
policy** with the Instruction tuning tab's code, on demonstrations of the four word tasks that mix concise
right answers, right but **verbose** ones and **wrong** ones. The true reward is the Text World specification's
$r^* = \\text{correct} - 0.1 \\cdot \\text{extra words}$. Pairs of two SFT samples are labelled by
Bradley-Terry on $r^*$; **RLHF** fits a reward model (SFT with a scalar head) to them and runs PPO against it
with a per-token KL penalty; **DPO** trains on the same pairs directly. Each was trained at four values of β.
"""

LM_EXPLANATION = r"""
**The objective both methods aim at** (InstructGPT; Ziegler et al. 2019), with the SFT model as $\pi_\text{ref}$:
$$\max_\pi\; \mathbb{E}_{x,\; y \sim \pi(\cdot|x)}[r(x, y)] - \beta\, \mathrm{KL}\big(\pi(\cdot|x) \,\|\, \pi_\text{ref}(\cdot|x)\big).$$
**Its closed-form optimum**: $\pi^*(y|x) = \pi_\text{ref}(y|x)\, e^{r(x,y)/\beta} / Z(x)$, so a policy implies a reward,
$r(x, y) = \beta \log \frac{\pi(y|x)}{\pi_\text{ref}(y|x)} + \beta \log Z(x)$.

**RLHF.** (1) A reward model $r_\phi$, the SFT network with a scalar head read at the last token, fitted to the pairs
by $-\log \sigma(r_\phi(x, y_w) - r_\phi(x, y_l))$. (2) PPO: responses are sampled from $\pi$; every token gets
the reward $-\beta(\log \pi(y_t|\cdot) - \log \pi_\text{ref}(y_t|\cdot))$ and the last token also $r_\phi(x, y)$;
advantages by GAE ($\gamma = 1$, $\lambda = 0.95$) from a value head, whitened; the clipped surrogate
$\min(\rho_t A_t, \mathrm{clip}(\rho_t, 1 \pm 0.2) A_t)$ with $\rho_t = \pi(y_t|\cdot)/\pi_\text{old}(y_t|\cdot)$, and a clipped value loss.

**DPO** (Rafailov et al. 2023, eq. 7), on the same pairs:
$$\mathcal{L}_\text{DPO} = -\log \sigma\Big(\beta \log\frac{\pi(y_w|x)}{\pi_\text{ref}(y_w|x)} - \beta \log\frac{\pi(y_l|x)}{\pi_\text{ref}(y_l|x)}\Big).$$

**What is measured.** Log-probabilities are of whole responses, their tokens and the end of text (stopping is part
of the answer: a concise and a verbose response first differ at the token after the full stop). KL to SFT is
estimated from the policy's own samples as the mean of $\log \pi(y|x) - \log \pi_\text{SFT}(y|x)$. The reward
model's accuracy is on held-out pairs; its ceiling is what the labels' noise allows, the mean of
$\max(p, 1-p)$ with $p = \sigma((r^*(y_1) - r^*(y_2))/\tau)$. The win rate compares each sample's $r^*$ with SFT's
sample for the same instruction (ties count half).
"""

LM_MISSING = ("The language models are not on this machine: train them with `python -m demos.preferences.train` "
              "(then `python -m benchmarks.preferences_lm --write`)")
DEFAULT_LM = compute.PreferenceParams()


def lm_setup_markdown(log: dict | None) -> str:
    """What the SFT demonstrations, the pairs and the reward model were, from the training log."""
    if not log:
        return LM_MISSING
    s = log["stages"]
    mix, n = s["sft"]["mix"], s["sft"]["demonstrations"]
    rm = s["reward_model"]
    return (f"**SFT demonstrations**: {n:,}, of which **{mix['concise'] / n:.0%} concise**, "
            f"**{mix['verbose'] / n:.0%} right but verbose** (2 to 6 filler words after the answer) and "
            f"**{mix['wrong'] / n:.0%} wrong**. **Pairs**: {s['pairs']['train']:,} for training and "
            f"{s['pairs']['held_out']:,} held out, two SFT samples per instruction, labelled by Bradley-Terry on r* "
            f"at τ = {log['tau']:g} ({s['pairs']['ties']:,} of them ties, whose label is a coin flip). "
            f"**Reward model**: held-out pair accuracy **{rm['held_out_accuracy']:.3f}** against the "
            f"**{rm['held_out_ceiling']:.3f}** ceiling the label noise allows (training pairs: {rm['train_accuracy']:.3f}). "
            f"Training took {log['total_cpu_seconds'] / 60:.0f} CPU-minutes in all (`{log['command']}`).")


def frontier_markdown(evaluation: dict | None) -> str:
    """The evaluation's numbers, one row per policy."""
    if not evaluation:
        return ""
    rows = ["| policy | β | mean r* | right | extra words | reward model r̂ | KL to SFT | win rate vs SFT | without ties |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in evaluation["policies"]:
        name = compute_name(r["method"])
        rows.append(f"| {name} | {'' if r['beta'] is None else format(r['beta'], 'g')} | {r['true_reward']:.3f} | "
                    f"{r['correct']:.3f} | {r['extra_words']:.2f} | {r['learned_reward']:+.2f} | {r['kl']:.2f} | "
                    f"{r['win_rate']:.3f} | {'' if r['method'] == 'sft' else format(r['win_rate_without_ties'], '.3f')} |")
    return (f"**Measured** on {evaluation['instructions']} held-out instructions (new word lists; half in a phrasing "
            f"never trained on), {evaluation['samples_per_instruction']} samples each "
            "(`python -m benchmarks.preferences_lm`):\n\n" + "\n".join(rows) + "\n\n" + frontier_findings(evaluation)
            + win_rate_ceiling_markdown(evaluation.get("win_rate_ceiling"))
            + reward_model_markdown(evaluation.get("reward_model_by_kind") or [])
            + implied_reward_markdown(evaluation.get("reward_model_by_kind") or [],
                                      evaluation.get("implied_reward_by_kind") or []))


def win_rate_ceiling_markdown(ceiling: dict | None) -> str:
    """How high the win rate can go against this SFT (``lm.win_rate_ceiling``, stored by the benchmark)."""
    if not ceiling:
        return ""
    return (f" The win rate compares each sample's r* with SFT's sample of the same index and counts ties as half; "
            f"{ceiling['sft_samples_at_best']:.0%} of SFT's samples already score r* = 1, so even a policy that is always "
            f"right and concise would win only **{ceiling['win_rate']:.3f}** against SFT (without ties: 1).")


def implied_reward_markdown(by_kind: list[dict], implied: list[dict]) -> str:
    """The reward model beside each policy's implied reward ``beta log(pi/pi_SFT)`` as a reward
    model on the same held-out pairs (``lm.implied_reward_by_kind``, stored by the benchmark)."""
    if not by_kind or not implied:
        return ""
    rm = lm.overall_by_kind(by_kind)
    fmt = lambda x: "" if x is None else f"{x:.2f}"  # noqa: E731
    lines = ["| reward | accuracy on the labels | ceiling | right vs wrong as r* | extra words as r* |",
             "|---|---|---|---|---|",
             f"| reward model r̂ | {rm['accuracy']:.3f} | {rm['ceiling']:.3f} | {fmt(rm['right vs wrong'])} | "
             f"{fmt(rm['extra words'])} |"]
    scored = []
    for item in implied:
        o = lm.overall_by_kind(item["rows"])
        scored.append((item, o))
        lines.append(f"| {compute_name(item['method'])} β = {item['beta']:g}: β log π/π_SFT | {o['accuracy']:.3f} | "
                     f"{o['ceiling']:.3f} | {fmt(o['right vs wrong'])} | {fmt(o['extra words'])} |")
    dpo = [(i, o) for i, o in scored if i["method"] == "dpo" and o["right vs wrong"] is not None]
    text = ("\n\n**Whose reward tells right from wrong?** DPO fits no reward model, but its policy implies one, "
            "β log π(y)/π_SFT(y) (the DPO reward, up to β log Z(x), which cancels within a pair). Scored on the same "
            "held-out pairs:")
    if dpo and rm["right vs wrong"] is not None:
        item, o = max(dpo, key=lambda t: t[1]["right vs wrong"])
        if o["right vs wrong"] >= rm["right vs wrong"] + 0.1:
            text += (f" at β = {item['beta']:g} DPO's implied reward orders a right against a wrong answer as r* does "
                     f"**{o['right vs wrong']:.0%}** of the time, the reward model **{rm['right vs wrong']:.0%}**. "
                     "The reward DPO fits is the whole language model's log-likelihood, which already knows the word "
                     "tasks; the reward model has to learn correctness anew in a scalar head from a few hundred pairs "
                     "per task. That fits DPO gaining more correctness here than PPO against the reward model.")
        elif o["right vs wrong"] <= rm["right vs wrong"] - 0.1:
            text += (f" the reward model orders a right against a wrong answer as r* does **{rm['right vs wrong']:.0%}** "
                     f"of the time, DPO's implied reward at best **{o['right vs wrong']:.0%}** (β = {item['beta']:g}).")
        else:
            text += (f" they order a right against a wrong answer about as often (reward model "
                     f"{rm['right vs wrong']:.0%}, DPO at β = {item['beta']:g} {o['right vs wrong']:.0%}).")
    return text + " PPO's policy implies a reward too; it is what PPO made of the reward model's.\n\n" + "\n".join(lines)


def reward_model_markdown(by_kind: list[dict]) -> str:
    """The reward model on the held-out pairs by what separates their responses, and what it means
    for the policy trained against it (from ``lm.reward_model_by_kind``, stored by the benchmark)."""
    rows = {(r["kind"], r["family"]): r for r in by_kind}
    if ("right vs wrong", "all") not in rows or ("extra words", "all") not in rows:
        return ""
    lines = ["| held-out pairs | pairs | accuracy on the labels | ceiling | orders the pair as r* does |",
             "|---|---|---|---|---|"]
    for r in by_kind:
        name = r["kind"] + ("" if r["family"] == "all" else f", {r['family']}")
        order = "" if r["orders_as_r_star"] is None else f"{r['orders_as_r_star']:.2f}"
        lines.append(f"| {'**' + name + '**' if r['family'] == 'all' else name} | {r['pairs']} | {r['accuracy']:.3f} | "
                     f"{r['ceiling']:.3f} | {order} |")
    wrong, extra = rows[("right vs wrong", "all")], rows[("extra words", "all")]
    families = [r for r in by_kind if r["kind"] == "right vs wrong" and r["family"] != "all"]
    worst = min(families, key=lambda r: r["orders_as_r_star"]) if families else None
    return ("\n\n**What the reward model learned.** It orders pairs that differ only in extra words as r* does "
            f"**{extra['orders_as_r_star']:.0%}** of the time, but a right against a wrong answer only "
            f"**{wrong['orders_as_r_star']:.0%}**" + (f" ({worst['family']}: {worst['orders_as_r_star']:.0%})" if worst else "")
            + ": it learned brevity far better than correctness, so PPO against it gains most by dropping words, and "
            "where it pushes on correctness it follows a reward that is often wrong.\n\n" + "\n".join(lines))


def frontier_findings(evaluation: dict) -> str:
    """What the frontier shows, in words, from its numbers: the best beta of each method and where
    the reward model's score rose while the true reward fell (over-optimisation)."""
    rows = evaluation["policies"]
    sft = next(r for r in rows if r["method"] == "sft")
    parts = []
    for method in ("rlhf", "dpo"):
        mine = [r for r in rows if r["method"] == method]
        best = max(mine, key=lambda r: r["true_reward"])
        gamed = [r for r in mine if r["learned_reward"] > sft["learned_reward"] and r["true_reward"] < sft["true_reward"]]
        text = (f"{compute_name(method)} does best at β = {best['beta']:g} (r* {sft['true_reward']:.3f} → "
                f"{best['true_reward']:.3f}, KL {best['kl']:.2f} nats)")
        if gamed:
            at = ", ".join(f"{r['beta']:g}" for r in gamed)
            text += (f"; at β = {at} the reward model's score rose while the true reward fell below SFT's: " +
                     ("PPO over-optimised the learned reward" if method == "rlhf" else
                      "DPO, which never sees the reward model, moved so far from SFT (KL "
                      + ", ".join(f"{r['kl']:.1f}" for r in gamed) + " nats) that its samples leave what the "
                      "pairs covered"))
        parts.append(text + ".")
    return " ".join(parts) + (" Both learn to drop the filler words (extra words per response "
                              f"{sft['extra_words']:.2f} for SFT); moving further from SFT costs right answers.")


def compute_name(method: str) -> str:
    return figures.METHOD_STYLE[method][0]


def side_by_side_markdown(p: compute.PreferenceParams, samples: dict) -> str:
    """The three policies' samples in three columns, each with r*, r̂ and log(π/π_SFT)."""
    heads = [compute_name(m) + ("" if m == "sft" else f", β = {p.beta:g}") + (" ◀" if m == p.method else "")
             for m in compute.METHODS]

    def cell(s: dict) -> str:
        text = s["text"].replace("|", "\\|").replace("<", "&lt;") or "(empty)"
        reward = "r* n/a" if s["true_reward"] is None else f"r* {s['true_reward']:+.1f}"
        return (f"`{text}`<br><small>{reward} · r̂ {s['learned_reward']:+.2f} · "
                f"log π/π_SFT {s['logp_policy'] - s['logp_reference']:+.2f}</small>")

    lines = ["| # | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for i in range(p.n_samples):
        lines.append(f"| {i + 1} | " + " | ".join(cell(samples[m][i]) for m in compute.METHODS) + " |")
    means = []
    for m in compute.METHODS:
        rewards = [s["true_reward"] for s in samples[m] if s["true_reward"] is not None]
        means.append(f"{sum(rewards) / len(rewards):.2f}" if rewards else "n/a")
    lines.append("| mean r* | " + " | ".join(means) + " |")
    checkable = samples["sft"] and samples["sft"][0]["true_reward"] is not None
    note = "" if checkable else ("\n\nThis instruction has no programmatic answer (it is not one of the four word "
                                 "tasks or Text World's questions), so r* is not defined; the models still answer.")
    return (f"**{p.instruction}** · {p.n_samples} samples each at temperature 1, seed {p.seed}\n\n"
            + "\n".join(lines) + note)


@lru_cache(maxsize=1)
def lm_opening() -> tuple:
    """The stored views of the language models (no torch): setup, frontier, table, curves, and the
    default settings' samples (stored by the benchmark)."""
    log, evaluation = compute.lm_stored("training_log.json"), compute.lm_stored("evaluation.json")
    missing = message_figure(LM_MISSING)
    frontier = figures.frontier_figure(evaluation, ("dpo", DEFAULT_LM.beta)) if evaluation else missing
    curves = figures.lm_curves_figure(log) if log else missing
    stored = (evaluation or {}).get("default_side_by_side")
    samples = side_by_side_markdown(DEFAULT_LM, stored) if stored else "Press **Sample** to see the three policies answer."
    return lm_setup_markdown(log), samples, frontier, frontier_markdown(evaluation), curves


def sample_lm(p: compute.PreferenceParams):
    """The Sample button: SFT, RLHF and DPO on the instruction; the frontier marks the choice."""
    p = compute.check_preference(p)
    samples = compute.side_by_side(p)
    evaluation = compute.lm_stored("evaluation.json")
    frontier = figures.frontier_figure(evaluation, (p.method, p.beta)) if evaluation else gr.skip()
    return side_by_side_markdown(p, samples), frontier


@api_errors
def preference_api(instruction: str, method: str, beta: float, n_samples: int, seed: int) -> dict:
    """Sample a trained Text World policy (see README): each response with log pi, log pi_SFT and r_hat."""
    return compute.preference(compute.PreferenceParams(instruction, method, beta, n_samples, seed))


def lm_api_args(p: compute.PreferenceParams) -> dict:
    """The ``preference`` call of these settings, in the endpoint's order."""
    return {"instruction": p.instruction, "method": p.method, "beta": p.beta, "n_samples": p.n_samples,
            "seed": p.seed}


def lm_controls() -> Binding:
    instruction = gr.Textbox(DEFAULT_LM.instruction, label="instruction", max_lines=2,
                             info="a word task (reverse, sort, count, first word) or anything else",
                             elem_id="pref-lm-instruction")
    with gr.Row():
        method = gr.Radio(list(compute.METHODS), value=DEFAULT_LM.method, label="method",
                          info="marked in the table and on the frontier; the API samples this one",
                          elem_id="pref-lm-method", min_width=200)
        beta = gr.Radio(list(compute.LM_BETAS), value=DEFAULT_LM.beta, label="β (trained values)",
                        info="the KL coefficient RLHF and DPO were trained with", elem_id="pref-lm-beta",
                        min_width=200)
    with gr.Row():
        n_samples = gr.Slider(1, compute.MAX_SAMPLES, value=DEFAULT_LM.n_samples, step=1, label="samples",
                              info="responses per policy, temperature 1", elem_id="pref-lm-samples", min_width=200)
        seed = gr.Number(DEFAULT_LM.seed, precision=0, minimum=0, maximum=compute.MAX_SEED, label="seed",
                         info="the sampling generator", elem_id="pref-lm-seed", min_width=200)
    return Binding(compute.PreferenceParams, check=compute.check_preference, prefix="lm_",
                   api=Api("preference", lm_api_args, note="The table's true reward r* is computed by the "
                           "program (`demos.common.text_world.true_reward`); the endpoint returns the models' numbers."),
                   instruction=instruction, method=method, beta=beta, n_samples=n_samples, seed=seed)


def build_language_model(demo: gr.Blocks) -> Binding:
    """The language model's section: setup, samples side by side, the frontier, the curves."""
    gr.Markdown(LM_INTRO, latex_delimiters=[{"left": "$", "right": "$", "display": False}])
    setup = gr.Markdown(elem_id="pref-lm-setup")
    binding = lm_controls()
    c = binding.components
    gr.Examples([[x] for x in compute.LM_EXAMPLES], inputs=[c["instruction"]], label="Examples (the last is a "
                "phrasing no model was trained on)")
    run = gr.Button("Sample from SFT, RLHF and DPO", variant="primary", elem_id="pref-lm-sample")
    samples = gr.Markdown(elem_id="pref-lm-samples-table", elem_classes=["gp-scroll"])
    frontier = gr.Plot(label="reward-KL frontier", elem_id="pref-lm-frontier")
    table = gr.Markdown(elem_id="pref-lm-table", elem_classes=["gp-scroll"])
    curves = gr.Plot(label="training curves", elem_id="pref-lm-curves")
    explanation(LM_EXPLANATION, title="The RLHF objective, its optimum, PPO and DPO")

    on_sample = binding.event(sample_lm)
    run.click(on_sample, binding.inputs, [samples, frontier], api_visibility="private", **model_event())
    c["instruction"].submit(on_sample, binding.inputs, [samples, frontier], api_visibility="private", **model_event())
    gr.api(preference_api, api_name="preference", **model_event())
    opening = Opening(lm_opening, [setup, samples, frontier, table, curves])
    binding.on_open(opening, on_sample, [samples, frontier], **model_event())
    return binding


def build(demo: gr.Blocks) -> list[Binding]:
    gr.Markdown(INTRO)
    bindings = [build_exact_problem(demo)]
    gr.Markdown("---")
    bindings.append(build_language_model(demo))
    return bindings


if __name__ == "__main__":
    from playground import theme

    with gr.Blocks(title=TAB.title) as _demo:
        build(_demo)
    _demo.launch(**theme.launch_kwargs())
