"""Hallucination tab: a Text World language model whose every fact, and how often it was seen, is known.

Run alone with ``python -m demos.hallucination.ui``. Imports no torch: questions are answered by
``compute.ask`` (which loads the model on first use); every other view is drawn from the
benchmark's stored evaluation (``assets/hallucination/evaluation.json``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import lru_cache

import gradio as gr
import numpy as np

from demos.common import text_world as tw
from demos.hallucination import compute, figures
from playground import settings, tempfiles, validate
from playground.plots import message_figure
from playground.ui_helpers import Api, Binding, Opening, api_errors, explanation, model_event, user_errors
from demos.hallucination import TAB

EVALUATION = settings.ASSETS_DIR / "hallucination" / "evaluation.json"
TRAIN_LOG = settings.ASSETS_DIR / "text_world" / "train_log.json"
SCORES = {"semantic entropy": "semantic_entropy", "1 − agreement": "disagreement"}

INTRO = """
### Why does a language model make things up?
The model here (a 2.6M-parameter `LlamaForCausalLM`) was pretrained by this project on **Text World**:
biographies of fictional people in which each fact is stated exactly **f** times (f = 0 to 32). So
every answer can be checked, and we know how often the model saw the fact. Ask about a frequent
person, a rare one, one it never saw, or a name you make up, and see how sure it is.
"""

EXPLANATION = r"""
**Two kinds of hallucination.** *In-context*: the output contradicts the context it was given (a
sentence in the prompt says Pell, the model answers Veltra). *Extrinsic*: the output is not supported
by world knowledge: here, by the facts the model was trained on. A fact seen once is recalled
badly; a person never seen still gets a fluent, confident answer: the model puts its probability on
the valid values (it learned the *form* of the answer) without any knowledge to choose among them.
This model read its pretraining text about three times over, so a fact stated once was read about
three times, and it recalls more of its f = 1 facts than one reading would give (the measured
line says how many). Its vocabulary is whole words, so a stranger's last name is a word no training text
contained: after pretraining its embedding row is redrawn from the trained rows' mean and spread,
as a real model's name for a stranger is made of pieces it has trained.

**Detection by consistency** (SelfCheckGPT; Farquhar et al., *Nature* 2024). Sample $N$ answers at
temperature $T$. A model that knows a fact says it the same way each time. *Agreement* is the share
of the largest group of equal answers. *Discrete semantic entropy* clusters the answers by meaning
(here exactly: by the answer word) and takes the entropy of the cluster frequencies:
$$SE = -\sum_{c} p_c \log p_c,\qquad p_c = \frac{|c|}{N},$$
0 when all samples agree, $\log N$ when all differ.

**AUROC** of a score $s$ for "the answer is wrong": the probability that a randomly chosen wrong
answer scores higher than a randomly chosen right one,
$$\mathrm{AUROC} = P(s_{\text{wrong}} > s_{\text{right}}) + \tfrac12 P(s_{\text{wrong}} = s_{\text{right}})
= \frac{U}{n_{\text{wrong}}\, n_{\text{right}}}$$
($U$ the Mann-Whitney statistic). 0.5 is chance, 1 is perfect.

**Calibration.** The reliability diagram bins answers by confidence (the top probability over the
valid values); $\mathrm{ECE} = \sum_b \frac{|B_b|}{n} |\mathrm{acc}(B_b) - \mathrm{conf}(B_b)|$.

**Gekhman et al. (2024)**: fine-tuning on question-answer pairs the model does not know (here: about
people never in pretraining) is fitted more slowly than known ones, and as it is fitted it raises the
model's tendency to hallucinate (in the paper: worse answers to held-out questions it could answer).
"""


@lru_cache(maxsize=1)
def evaluation() -> dict | None:
    """The benchmark's stored evaluation (read once; read-only), or None."""
    try:
        return json.loads(EVALUATION.read_text())
    except (OSError, ValueError):
        return None


def train_log() -> dict:
    try:
        return json.loads(TRAIN_LOG.read_text())
    except (OSError, ValueError):
        return {}


def example_questions() -> list[str]:
    """A frequent person, a rare one, a never-seen one, a made-up name, a contradicting context, and
    a question outside the four forms (from the world file)."""
    try:
        people = tw.load_world(compute.WORLD_FILE)
    except OSError:
        return []
    first = {key: next(p for p in people if (p.split, p.f) == key) for key in (("bio_only", 32), ("bio_only", 1),
                                                                                ("unseen", 0))}
    frequent, rare, unseen = first[("bio_only", 32)], first[("bio_only", 1)], first[("unseen", 0)]
    other_city = next(c for c in tw.ATTRIBUTES["city"] if c != frequent.city)
    return [tw.question(frequent.name, "city"), tw.question(rare.name, "job"), tw.question(unseen.name, "pet"),
            tw.question("Zorbat Quenlip", "colour"),
            f"{frequent.name} was born in {other_city}. {tw.question(frequent.name, 'city')}",
            f"Tell me about {frequent.name}."]


# ----------------------------------------------------------------------------- formatting
def answer_markdown(p: compute.AskParams, result: dict) -> str:
    check = compute.check_answer(p.question, result["answer"])
    lines = [f"**Answer ({p.model}, greedy):** `{result['answer'] or '(nothing)'}` with probability "
             f"**{result['p_answer']:.3f}**."]
    if not check["checkable"]:
        lines.append("This is not one of the four question forms, so it **cannot be checked** (the model still "
                     "answers: it is a language model).")
    elif not check["in_world"]:
        lines.append(f"**{check['name']}** is not in the world: nobody can know this {check['attribute']}; any "
                     "confident answer is made up.")
    else:
        verdict = "right" if check["right"] else "**wrong**"
        seen = ("never seen in training" if check["f"] == 0 else f"stated **{check['f']}** times in pretraining"
                + (" (with question-answer pairs)" if check["split"] == "qa_train" else " (biographies only)"))
        lines.append(f"The world says **{check['truth']}**: the answer is {verdict}. This fact was {seen}.")
    return "  \n".join(lines)


def samples_markdown(p: compute.AskParams, result: dict) -> str:
    counts: dict[str, int] = {}
    for s in result["samples"]:
        counts[s] = counts.get(s, 0) + 1
    listed = ", ".join(f"`{s or '(nothing)'}` × {n}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return (f"**{len(result['samples'])} samples at T = {p.temperature:g}** (seed {p.seed}): {listed}  \n"
            f"agreement **{result['agreement']:.2f}**, semantic entropy **{result['semantic_entropy']:.3f}** nats "
            f"(max log N = {np.log(len(result['samples'])):.3f})")


def ask_views(p: compute.AskParams, result: dict) -> tuple:
    check = compute.check_answer(p.question, result["answer"])
    plot = (figures.candidates_figure(result["candidates"], check.get("truth"), result["answer"]) if result["candidates"]
            else message_figure("Not one of the four question forms: no candidate values to show."))
    return answer_markdown(p, result), plot, samples_markdown(p, result)


def flagged_markdown(score: str, threshold: float) -> str:
    """Which stored answers a threshold on the score would flag, and how many of them are wrong."""
    ev = evaluation()
    key = SCORES[score]
    qs = ev["questions"]
    values = np.array([q["semantic_entropy"] if key == "semantic_entropy" else 1 - q["agreement"] for q in qs])
    wrong = np.array([not q["right"] for q in qs])
    flagged = values >= threshold
    precision = wrong[flagged].mean() if flagged.any() else float("nan")
    recall = flagged[wrong].mean() if wrong.any() else float("nan")
    rows = ["| person (f) | question | answer | truth | " + score + " | flagged |", "|---|---|---|---|---|---|"]
    order = np.argsort(-values)
    picks = list(order[:4]) + list(order[len(order) // 2: len(order) // 2 + 2]) + list(order[-3:])
    for i in picks:
        q = qs[i]
        rows.append(f"| {q['name']} ({q['f']}) | {q['attribute']} | {q['answer']} | {q['truth']} | {values[i]:.2f} | "
                    f"{'**yes**' if flagged[i] else 'no'} |")
    return (f"Flagging answers with {score} ≥ **{threshold:.2f}** flags **{flagged.sum()}** of {len(qs)}; "
            f"**{precision:.0%}** of the flagged are wrong (precision), and **{recall:.0%}** of all wrong answers are "
            f"flagged (recall). Right answers flagged: {(flagged & ~wrong).sum()}.\n\n" + "\n".join(rows))


def findings() -> str:
    ev = evaluation()
    if not ev:
        return ""
    bio, u, d = ev["bio_only"], ev["unseen"], ev["detection"]
    acc = dict(zip(bio["f"], bio["accuracy"]))
    return (f"**Measured** on the world file (greedy): bio-only accuracy {acc.get(1, float('nan')):.2f} at f = 1, "
            f"{acc.get(4, float('nan')):.2f} at f = 4, {acc.get(16, float('nan')):.2f} at f = 16 and "
            f"{acc.get(32, float('nan')):.2f} at f = 32 (Spearman with f {ev['spearman_accuracy_f']:.2f}). People never "
            f"seen: right {u['accuracy']:.0%} of the time (chance), yet answered with top probability above 0.5 "
            f"**{u['confident']:.0%}** of the time, with {u['valid_mass']:.0%} of the probability on valid values: "
            f"{'confident hallucination' if u['confident'] >= 0.5 else 'a fluent answer, often a confident one'}. "
            f"{gekhman_finding(ev.get('gekhman', {}))} Semantic entropy of {d['n_samples']} samples tells wrong answers from right "
            f"ones with AUROC **{d['auroc_semantic_entropy']:.2f}** (1 − agreement: {d['auroc_disagreement']:.2f}).")


def gekhman_finding(gekhman: dict) -> str:
    """What the Gekhman fine-tunes measured, worded from the numbers (known accuracy at 0 and 75%
    unknown; confident answers about unseen people at 0 and 50%, the issue's comparison)."""
    try:
        k0, k75 = gekhman["gekhman-0"]["known_accuracy"], gekhman["gekhman-75"]["known_accuracy"]
        u0, u50 = gekhman["gekhman-0"]["unseen_confident"], gekhman["gekhman-50"]["unseen_confident"]
    except KeyError:
        return ""
    cost = (f"Fine-tuning on unknown facts {'costs' if k75 < k0 else 'does not cost'} knowledge (accuracy on known "
            f"people {k0:.2f} with none, {k75:.2f} with 75% unknown)")
    if u50 >= u0:
        return f"{cost} and raises confident answers about unseen people ({u0:.0%} with none, {u50:.0%} with 50%)."
    return (f"{cost}; confident answers about unseen people do not rise ({u0:.0%} with none, {u50:.0%} with 50%): "
            f"the pretrained model already answers strangers confidently.")


# ----------------------------------------------------------------------------- callbacks
@api_errors
def ask_api(question: str, model: str, n_samples: int, temperature: float, seed: int) -> dict:
    """Answer one question (see README)."""
    return compute.ask(compute.AskParams(question, model, n_samples, temperature, seed))


def ask(p: compute.AskParams) -> tuple:
    """Ask and Enter in the question (``binding.event(ask)``)."""
    p = compute.check_ask(p)
    result = compute.ask(p)
    return (*ask_views(p, result), answer_files(p, result))


def answer_files(p: compute.AskParams, result: dict) -> list[str]:
    """What the Ask panel shows as a JSON file (settings, answer, candidates, samples, the world's
    verdict), and the stored evaluation behind the other views when there is one."""
    folder = tempfiles.output_folder("hallucination")
    answer = folder / "answer.json"
    answer.write_text(json.dumps({"settings": dataclasses.asdict(p), "result": result,
                                  "check": compute.check_answer(p.question, result["answer"])}, indent=1))
    files = [str(answer)]
    if evaluation():
        stored = folder / "evaluation.json"
        stored.write_text(json.dumps(evaluation(), indent=1))
        files.append(str(stored))
    return files


@user_errors
def on_threshold(score: str, threshold: float):
    validate.check_choice("score", score, list(SCORES))
    threshold = validate.check_float("threshold", threshold, 0, 5)
    if not evaluation():
        raise ValueError("No stored evaluation: run `python -m benchmarks.hallucination --write`")
    return figures.roc_figure(evaluation()["detection"], threshold, SCORES[score]), flagged_markdown(score, threshold)


# ----------------------------------------------------------------------------- layout
def ask_controls(default: compute.AskParams) -> Binding:
    question = gr.Textbox(default.question, label="question", elem_id="hallucination-question", max_lines=3,
                          info="the four forms: Where was X born? / What is X's job? / What is X's favourite colour? "
                               "/ What pet does X have? A context sentence may come first.")
    with gr.Row():
        model = gr.Dropdown(list(compute.MODEL_NAMES), value=default.model, label="model", min_width=200,
                            info="base: pretrained only; gekhman-s: QA fine-tuned with s% unknown people")
        n_samples = gr.Slider(1, compute.MAX_SAMPLES, value=default.n_samples, step=1, label="samples N",
                              min_width=200, info="answers sampled for agreement and entropy")
        temperature = gr.Slider(*compute.TEMPERATURE_RANGE, value=default.temperature, step=0.05, label="temperature T",
                                min_width=200, info="sampling temperature (0 is greedy: see the greedy answer)")
        seed = gr.Number(default.seed, precision=0, minimum=0, label="seed", min_width=200,
                         info="the samples' random generator")
    return Binding(compute.AskParams, question=question, model=model, n_samples=n_samples, temperature=temperature,
                   seed=seed, check=compute.check_ask, api=Api("ask", dataclasses.asdict))


def opening_default() -> tuple[compute.AskParams, dict | None]:
    """The opening question and its stored answer (None when the evaluation is missing or stale)."""
    stored = (evaluation() or {}).get("default_ask")
    if stored and stored["params"]["question"] == compute.default_question():
        return compute.AskParams(**stored["params"]), stored["result"]
    return compute.AskParams(), None


@lru_cache(maxsize=1)
def opening_views() -> tuple:
    """Everything the tab shows when it opens, from the stored evaluation (no model runs), drawn on
    page load rather than at build (the app's start-up budget); cached per process. In the order of
    ``build``'s load outputs."""
    ev, missing = evaluation(), message_figure(MISSING)
    p, result = opening_default()
    asked = ask_views(p, result) if result else ("", missing, "")
    if not ev:
        return (*asked, missing, missing, missing, "", missing, missing, missing)
    return (*asked, figures.frequency_figure(ev), figures.reliability_figure(ev["reliability"]),
            figures.roc_figure(ev["detection"], 0.5), flagged_markdown("semantic entropy", 0.5),
            figures.gekhman_figure(ev["gekhman"]), figures.fit_figure(train_log()) if train_log() else missing,
            figures.context_figure(ev["in_context"]))


MISSING = "No stored evaluation: run `python -m benchmarks.hallucination --write`"


@dataclass(frozen=True)
class Views:
    """Everything below the question's controls, top to bottom."""

    ask: gr.Button
    answer: gr.Markdown
    samples: gr.Markdown
    candidates: gr.Plot
    frequency: gr.Plot
    reliability: gr.Plot
    score: gr.Radio
    threshold: gr.Slider
    roc: gr.Plot
    flagged: gr.Markdown
    gekhman: gr.Plot
    fitting: gr.Plot
    context: gr.Plot
    files: gr.File


def build(demo: gr.Blocks) -> Binding:
    default, _ = opening_default()
    gr.Markdown(INTRO)
    gr.Markdown("### Ask")
    binding = ask_controls(default)
    v = Views(*answer_rows(binding.components["question"]), *detection_rows(), *later_rows())
    explanation(EXPLANATION)
    wire(demo, binding, v)
    return binding


def answer_rows(question: gr.Textbox) -> tuple:
    """ask, answer, samples, candidates, then the examples and the frequency plots."""
    ask = gr.Button("Ask", variant="primary", elem_id="hallucination-ask")
    with gr.Row():
        with gr.Column(min_width=300):
            answer = gr.Markdown(elem_id="hallucination-answer")
            samples = gr.Markdown(elem_id="hallucination-samples")
        candidates = gr.Plot(label="candidate values", elem_id="hallucination-candidates", min_width=300)
    examples = example_questions()
    if examples:
        gr.Examples([[q] for q in examples], inputs=[question],
                    label="Examples: frequent, rare, never seen, made up, contradicted by the context, not checkable")
    gr.Markdown("### Frequency and truth")
    gr.Markdown(findings())
    with gr.Row():
        frequency = gr.Plot(label="accuracy against f", elem_id="hallucination-frequency", min_width=300)
        reliability = gr.Plot(label="reliability diagram", elem_id="hallucination-reliability", min_width=300)
    return ask, answer, samples, candidates, frequency, reliability


def detection_rows() -> tuple:
    """score, threshold, roc, flagged."""
    gr.Markdown("### Detect it: consistency of samples")
    with gr.Row():
        score = gr.Radio(list(SCORES), value="semantic entropy", label="score", min_width=200)
        threshold = gr.Slider(0, 2.5, value=0.5, step=0.05, label="flag when the score is at least", min_width=240,
                              elem_id="hallucination-threshold")
    with gr.Row():
        roc = gr.Plot(label="ROC", min_width=300, elem_id="hallucination-roc")
        flagged = gr.Markdown(elem_classes=["gp-scroll"], elem_id="hallucination-flagged")
    return score, threshold, roc, flagged


def later_rows() -> tuple:
    """gekhman, fitting, context, files."""
    gr.Markdown("### Fine-tuning on unknown facts")
    with gr.Row():
        gekhman = gr.Plot(label="Gekhman fine-tunes", elem_id="hallucination-gekhman", min_width=300)
        fitting = gr.Plot(label="fitting", min_width=300, elem_id="hallucination-fitting")
    gr.Markdown("### In context: memory against a contradicting sentence\nEach question is preceded by a sentence "
                "that contradicts the world (e.g. *X was born in Pell.* when X was born elsewhere). Try one in the "
                "Ask box above (the fifth example).")
    context = gr.Plot(label="in context", elem_id="hallucination-context")
    with gr.Accordion("Download the last answer and the stored evaluation (JSON)", open=False):
        files = gr.File(label="the last answer and the stored evaluation (JSON)", file_count="multiple",
                        interactive=False, elem_id="hallucination-download")  # closed: the page stays short
    return gekhman, fitting, context, files


def wire(demo: gr.Blocks, binding: Binding, v: Views) -> None:
    ask_cb = binding.event(ask)
    for trigger in (v.ask.click, binding.components["question"].submit):
        trigger(ask_cb, binding.inputs, [v.answer, v.candidates, v.samples, v.files], api_visibility="private",
                **model_event())
    private = {"api_visibility": "private", "trigger_mode": "always_last"}
    v.threshold.input(on_threshold, [v.score, v.threshold], [v.roc, v.flagged], **private)
    v.score.input(on_threshold, [v.score, v.threshold], [v.roc, v.flagged], **private)
    gr.api(ask_api, api_name="ask", **model_event())
    opening = Opening(opening_views, [v.answer, v.candidates, v.samples, v.frequency, v.reliability, v.roc,
                                        v.flagged, v.gekhman, v.fitting, v.context])
    binding.on_open(opening, ask_cb, [v.answer, v.candidates, v.samples, v.files],
                    **model_event())  # a link asks its question


if __name__ == "__main__":
    from playground import theme

    with gr.Blocks(title=TAB.title) as _demo:
        build(_demo)
    _demo.launch(**theme.launch_kwargs())
