"""RNN vs Transformer tab: recurrence against attention on associative recall.

Run alone with ``python -m demos.rnn_transformer.ui``. Imports no torch: the models run in
``compute.answer_all`` and ``models`` (imported when a model is asked). The opening view is drawn
from the benchmark's stored results (``assets/rnn_transformer/*.json``).
"""

from __future__ import annotations

import csv
import functools
import json
import random
from dataclasses import dataclass

import gradio as gr

from demos.rnn_transformer import TAB

from demos.rnn_transformer import compute, figures
from demos.rnn_transformer.compute import MODEL_KINDS, MODEL_TITLES
from playground import settings, tempfiles, validate
from playground.plots import message_figure
from playground.ui_helpers import (Api, Binding, Opening, StopButtons, api_errors, explanation, model_event, run_steps,
                                   user_errors)

ASSETS = settings.ASSETS_DIR / "rnn_transformer"
P = compute.BuilderParams()
ATTENTION_FROM = {"the queried key (where the answer is read)": -1, "'?'": -2}
LIVE_SECONDS = (10, 60)
STOP = StopButtons()

INTRO = """
### Why did the Transformer replace the RNN? Measure it.
Four models of about 50k-130k parameters, trained by this project **at the same budget** (same steps,
batch, optimiser and seed) on **associative recall**: key-value pairs (`a 3 f 7 q 1`), filler `.`,
then `?` and a key; the answer is that key's value (chance 1/10). Build a sequence, move the
**distance** (tokens between the queried value and `?`), and see what each model answers, what it
looks at, and what recurrence costs.
"""

EXPLANATION = r"""
**Recurrences** (one step per token, each needing the one before):
$$\text{tanh RNN:}\quad h_t = \tanh(W h_{t-1} + U x_t + b)$$
$$\text{LSTM:}\quad i_t, f_t, o_t = \sigma(W_{i,f,o}[h_{t-1}, x_t]),\ \ g_t = \tanh(W_g [h_{t-1}, x_t]),\ \
c_t = f_t \odot c_{t-1} + i_t \odot g_t,\ \ h_t = o_t \odot \tanh(c_t)$$
$$\text{GRU:}\quad z_t, r_t = \sigma(W_{z,r}[h_{t-1}, x_t]),\ \ n_t = \tanh(W_n x_t + r_t \odot U_n h_{t-1}),\ \
h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$$
Everything the model read must be squeezed into $h_t$. The gradient that reaches token $t$ from the
answer at step $T$ passes through $\partial h_{s}/\partial h_{s-1}$ for every step in between: for the
tanh RNN that product shrinks geometrically (**vanishing gradients**); the LSTM's additive cell
$c_t = f_t \odot c_{t-1} + \dots$ lets it pass almost unchanged while $f_t \approx 1$.

**Self-attention** (causal, $H$ heads of size $d_h$): every position reads every earlier one directly,
$$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_h}} + M\right) V,\quad
M_{ij} = -\infty \text{ for } j > i,$$
so the path from the queried value to the answer is one attention hop, whatever the distance, and all
$T$ positions are computed at once: 2 sequential steps (the layers) instead of $T$.

**Saliency** of position $t$ is $\lVert \partial \log p(\text{answer}) / \partial e_t \rVert_2$, the
gradient of the log-probability of the model's answer with respect to the token embedding $e_t$
(plotted on a log scale): where the gradient fades, the model cannot learn from that position.

**Distance** $d$: with $n$ pairs, the $i$-th asked (1-based) and $F$ filler tokens, $d = 2(n - i) + F$.
"""


# ----------------------------------------------------------------------------- stored results
def stored(name: str) -> dict | None:
    """A JSON file of ``assets/rnn_transformer`` (written by the benchmark or train.py), or None."""
    try:
        return json.loads((ASSETS / name).read_text())
    except (OSError, ValueError):
        return None


def training_logs() -> dict:
    log = stored("training_log.json") or {"models": {}}
    return {kind: entry["log"] for kind, entry in log["models"].items()}


# ----------------------------------------------------------------------------- formatting
def answers_markdown(sequence: compute.Sequence, result: dict) -> str:
    rows = ["| model | answer | p(answer) | right? | saliency at the value |", "|---|---|---|---|---|"]
    for kind in MODEL_KINDS:
        r = result["models"][kind]
        mark = "yes" if r["answer"] == sequence.target else "no"
        rows.append(f"| {MODEL_TITLES[kind]} | **{r['answer']}** | {r['p']:.3f} | {mark} | "
                    f"{r['saliency'][sequence.value_position]:.2e} |")
    return (f"**Sequence** ({len(sequence.tokens)} tokens, {sequence.n_pairs} pairs): `{sequence.text()}`  \n"
            f"Asked: key **{sequence.key}**, whose value is **{sequence.target}**; distance **d = {sequence.distance}**.\n\n"
            + "\n".join(rows))


def views(sequence: compute.Sequence, result: dict, attention_from: str, states_of: str) -> tuple:
    """Answers, p(value) bars, saliency, attention from one position, one model's hidden states."""
    models = result["models"]
    source = len(sequence.tokens) + ATTENTION_FROM.get(attention_from, -1)
    return (answers_markdown(sequence, result), figures.probabilities_figure(models),
            figures.saliency_figure(sequence, models),
            figures.attention_figure(sequence, models["transformer"]["attention"], source),
            figures.states_figure(sequence, models[states_of]["states"], states_of))


MISSING = "No stored evaluation: run `python -m benchmarks.rnn_transformer --write`"


@functools.lru_cache(maxsize=1)
def opening_views() -> tuple:
    """Everything the tab shows when it opens, drawn on page load (not at build: the app's start-up
    budget) from the stored files, without running a model; cached per process. In the order of
    ``build``'s load outputs: the default sequence's views (from ``default_view.json``, if it is for this default), the
    accuracy plots, the cost plot and its note, the learning curves."""
    data, evaluation = stored("default_view.json"), stored("evaluation.json")
    sequence = compute.built_sequence(P)
    if data and data.get("sequence") == sequence.text():
        seen = views(sequence, data["result"], next(iter(ATTENTION_FROM)), "lstm")
    else:
        seen = ("Press “Answer” to run the models.", *[message_figure("Press “Answer” to run the models.")] * 4)
    cost = (evaluation or {}).get("cost")
    missing = message_figure(MISSING)
    return (*seen,
            figures.accuracy_figure(evaluation) if evaluation else missing,
            figures.accuracy_figure(evaluation, by="pairs") if evaluation else missing,
            figures.cost_figure(cost) if cost else missing,
            cost_markdown(cost, "measured by the benchmark") if cost else "",
            figures.learning_curves_figure(training_logs()))


# ----------------------------------------------------------------------------- callbacks
def answer(sequence: compute.Sequence, attention_from: str, states_of: str) -> tuple:
    validate.check_choice("attention from", attention_from, list(ATTENTION_FROM))
    validate.check_choice("hidden state of", states_of, ["rnn", "lstm", "gru"])
    return views(sequence, compute.answer_all(sequence, details=True), attention_from, states_of)


def built(p: compute.BuilderParams, attention_from: str, states_of: str) -> tuple:
    """The sequence of builder settings ``p`` and every model's answer."""
    sequence = compute.built_sequence(p)
    return (sequence.text(), *answer(sequence, attention_from, states_of))


def builder_moved(p: compute.BuilderParams, attention_from: str, states_of: str) -> tuple:
    """The distance or the seed moved."""
    return built(p, attention_from, states_of)


def layout_moved(p: compute.BuilderParams, attention_from: str, states_of: str) -> tuple:
    """``n_pairs`` or the asked pair moved: the asked pair and the distance are kept within what
    that layout allows (their sliders' bounds follow), then the sequence is rebuilt."""
    n = validate.check_int("n_pairs", p.n_pairs, compute.MIN_PAIRS, compute.MAX_PAIRS)
    query = min(max(1, validate.check_int("query", p.query, 1, compute.MAX_PAIRS)), n)
    low = 2 * (n - query)
    distance = min(max(validate.check_int("distance", p.distance, 0, compute.MAX_DISTANCE), low),
                   low + compute.MAX_FILLER)
    p = compute.BuilderParams(n, query, distance, p.seed)
    return (gr.update(value=query, maximum=n), gr.update(value=distance, minimum=low, maximum=low + compute.MAX_FILLER),
            *built(p, attention_from, states_of))


def random_example(_: compute.BuilderParams, attention_from: str, states_of: str) -> tuple:
    """A new random example: new pairs (a new seed), a random layout and distance."""
    rng = random.Random()
    n = rng.randint(compute.MIN_PAIRS, compute.MAX_PAIRS)
    query = rng.randint(1, n)
    low = 2 * (n - query)
    p = compute.BuilderParams(n, query, rng.randint(low, low + compute.MAX_FILLER), rng.randint(0, 999_999))
    return (p.n_pairs, gr.update(value=p.query, maximum=p.n_pairs),
            gr.update(value=p.distance, minimum=low, maximum=low + compute.MAX_FILLER), p.seed,
            *built(p, attention_from, states_of))


@user_errors
def on_typed(text: str, attention_from: str, states_of: str):
    """A typed sequence: checked against the task's format, then answered."""
    sequence = compute.parse_sequence(text)
    return answer(sequence, attention_from, states_of)


@user_errors
def on_view_choice(text: str, attention_from: str, states_of: str):
    """Attention source or hidden-state model changed: re-draw for the sequence shown."""
    return answer(compute.parse_sequence(text), attention_from, states_of)[3:]


@api_errors
def recall_api(sequence: str) -> dict:
    """Every model's answer, probability and saliency for one sequence (see README)."""
    return compute.answer_all(compute.parse_sequence(sequence))


@user_errors
def on_measure(progress=gr.Progress()):
    """Time the four models against sequence length on this machine, now."""
    from demos.rnn_transformer import models
    from playground.models import single_thread

    def work(on_step, should_stop):
        def report(fraction, desc):
            progress(fraction, desc=desc)
            on_step(round(100 * fraction), 100)

        with single_thread():
            return models.recurrence_cost(repeats=2, report=report)

    result = yield from run_steps(work, each=lambda step: (gr.skip(), gr.skip()))
    yield figures.cost_figure(result), cost_markdown(result, "measured just now")


def cost_markdown(cost: dict, when: str) -> str:
    longest = cost["lengths"][-1]
    rows = ["| model | sequential steps at T = " + f"{longest}" + " | training step at T = " + f"{longest}" + " |",
            "|---|---|---|"]
    for kind in MODEL_KINDS:
        row = cost["models"][kind]
        rows.append(f"| {MODEL_TITLES[kind]} | {row['sequential_steps'][-1]} | {1e3 * row['train_step_s'][-1]:.1f} ms |")
    return (f"Times {when}, fastest of several runs, batch {cost['batch']}, {cost['threads']} thread(s). "
            "On a CPU the recurrent models are small matrix products done T times in a row; on a GPU "
            "the Transformer's T positions run in parallel while the RNN still takes T steps.\n\n" + "\n".join(rows))


@user_errors
def on_train(kind: str, seconds: float, request: gr.Request, progress=gr.Progress()):
    """Train a fresh model of ``kind`` for ``seconds`` (progress, Stop), drawing its learning curve
    beside the embedded checkpoints', then its accuracy against distance beside theirs."""
    kind = validate.check_choice("model to train", kind, list(MODEL_KINDS))
    seconds = validate.check_float("seconds", seconds, *LIVE_SECONDS)
    from demos.rnn_transformer import models

    live = {"kind": kind, "log": []}
    cfg = models.TrainConfig(steps=100_000, eval_every=20, eval_size=256, seed=random.randint(0, 999_999))
    stop = STOP.start(request)

    def work(on_step, should_stop):
        def on_eval(record):
            live["log"].append(record)
            on_step(min(999, round(1000 * record["seconds"] / seconds)), 1000)

        model, _ = models.train(kind, cfg, on_eval=on_eval, should_stop=should_stop, seconds=seconds)
        return models.accuracy_by_distance(model, n_per_point=100)

    logs, title = training_logs(), MODEL_TITLES[kind]

    def each(step):
        last = live["log"][-1]
        progress(step.index / step.total, desc=f"training the {title}")
        return (figures.learning_curves_figure(logs, live), gr.skip(),
                f"Training the {title}… step {last['step']}, {last['seconds']:.0f} s, "
                f"validation accuracy {last['val_accuracy']:.2f}")

    result = yield from run_steps(work, stop, each)
    steps = live["log"][-1]["step"] if live["log"] else 0
    budget = (stored("training_log.json") or {}).get("models", {}).get(kind, {}).get("train_config", {}).get("steps")
    note = (f"{'Stopped at step' if stop.is_set() else 'Trained for'} {steps} steps: a fresh {title} "
            f"(the embedded one had {budget or 'its full budget of'} steps). Its held-out accuracy against "
            "distance (100 sequences per point) is the dotted line in the accuracy plot.")
    evaluation = stored("evaluation.json")
    accuracy = (figures.accuracy_figure(evaluation, live={"kind": kind, **result}) if evaluation
                else message_figure(MISSING))
    yield figures.learning_curves_figure(logs, live), accuracy, note


@user_errors
def on_export(text: str):
    """What the tab shows for this sequence (answers, probabilities, saliency) as JSON, and the
    stored accuracy against distance as CSV."""
    sequence = compute.parse_sequence(text)
    result = compute.answer_all(sequence, details=False)
    folder = tempfiles.output_folder("rnn_transformer_")
    (folder / "recall.json").write_text(json.dumps({"sequence": sequence.text(), "target": sequence.target, **result}, indent=1))
    files = [str(folder / "recall.json")]
    evaluation = stored("evaluation.json")
    if evaluation:
        data = evaluation["accuracy_by_distance"]
        with open(folder / "accuracy_by_distance.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["distance", *MODEL_KINDS])
            writer.writerows([d, *[data["models"][k][i] for k in MODEL_KINDS]] for i, d in enumerate(data["x"]))
        files.append(str(folder / "accuracy_by_distance.csv"))
    return gr.update(value=files, visible=True)


# ----------------------------------------------------------------------------- layout
def builder_controls() -> Binding:
    with gr.Row():
        n_pairs = gr.Slider(compute.MIN_PAIRS, compute.MAX_PAIRS, value=P.n_pairs, step=1, label="pairs n",
                            info="key-value pairs at the start", elem_id="recall-pairs", min_width=240)
        query = gr.Slider(1, P.n_pairs, value=P.query, step=1, label="pair asked i", elem_id="recall-query",
                          info="which pair's key follows '?' (1 = first)", min_width=240)
        low = 2 * (P.n_pairs - P.query)
        distance = gr.Slider(low, low + compute.MAX_FILLER, value=P.distance, step=1, label="distance d",
                             info="tokens between the queried value and '?': d = 2(n − i) + filler",
                             elem_id="recall-distance", min_width=240)
        seed = gr.Number(value=P.seed, precision=0, minimum=0, maximum=2**31 - 1, label="seed",
                         info="draws the keys and values", elem_id="recall-seed", min_width=240)
    return Binding(compute.BuilderParams, n_pairs=n_pairs, query=query, distance=distance, seed=seed,
                   check=compute.check_builder, dynamic=("query", "distance"),  # their bounds follow n_pairs
                   api=Api("recall", lambda p: {"sequence": compute.built_sequence(p).text()},
                           note="the builder's sequence, as the tab shows it; any typed sequence works too"))


@dataclass(frozen=True)
class Answers:
    """The sequence, its buttons and every model's answer, and the stored accuracy curves."""

    text: gr.Textbox
    run: gr.Button
    example: gr.Button
    answers: gr.Markdown
    probs: gr.Plot
    saliency: gr.Plot
    accuracy: gr.Plot
    by_pairs: gr.Plot


@dataclass(frozen=True)
class Views:
    """What each model looks at: the two choices and their plots."""

    attention_from: gr.Radio
    states_of: gr.Radio
    attention: gr.Plot
    states: gr.Plot


@dataclass(frozen=True)
class Live:
    """The cost of recurrence, the live training and the download."""

    cost_plot: gr.Plot
    cost_note: gr.Markdown
    measure: gr.Button
    kind: gr.Dropdown
    seconds: gr.Slider
    train: gr.Button
    stop: gr.Button
    train_note: gr.Markdown
    curves: gr.Plot
    export: gr.Button
    files: gr.File


def build(demo: gr.Blocks) -> Binding:
    gr.Markdown(INTRO)
    builder = builder_controls()
    a, v, live = answers_rows(), views_rows(), live_rows()
    wire(demo, builder, a, v, live)
    return builder


def answers_rows() -> Answers:
    with gr.Row(equal_height=True):
        text = gr.Textbox(compute.built_sequence(P).text(), label="sequence (edit it, then Answer)",
                          elem_id="recall-sequence", scale=4, max_lines=3, min_width=240,
                          info="space-separated: pairs, filler '.', then '?' and a key; at most 8 pairs, 160 tokens")
        with gr.Column(scale=1, min_width=160):
            run = gr.Button("Answer", variant="primary", elem_id="recall-answer")
            example = gr.Button("Random example", elem_id="recall-random")
    answers = gr.Markdown(elem_id="recall-answers", elem_classes=["gp-scroll"])
    with gr.Row():
        probs = gr.Plot(label="p(value) per model", elem_id="recall-probs", min_width=300)
        saliency = gr.Plot(label="saliency", elem_id="recall-saliency", min_width=300)
    evaluation = stored("evaluation.json")
    with gr.Row():
        accuracy = gr.Plot(label="accuracy against distance", elem_id="recall-accuracy", min_width=300)
        by_pairs = gr.Plot(label="accuracy against the number of pairs", elem_id="recall-by-pairs", min_width=300)
    gr.Markdown(findings(evaluation))
    return Answers(text, run, example, answers, probs, saliency, accuracy, by_pairs)


def views_rows() -> Views:
    gr.Markdown("### What each model looks at")
    with gr.Row():
        attention_from = gr.Radio(list(ATTENTION_FROM), value=next(iter(ATTENTION_FROM)), label="Transformer attention from",
                                  elem_id="recall-attention-from")
        states_of = gr.Radio([("tanh RNN", "rnn"), ("LSTM", "lstm"), ("GRU", "gru")], value="lstm",
                             label="hidden state of", elem_id="recall-states-of")
    with gr.Row():
        attention = gr.Plot(label="attention", elem_id="recall-attention", min_width=300)
        states = gr.Plot(label="hidden state", elem_id="recall-states", min_width=300)
    return Views(attention_from, states_of, attention, states)


def live_rows() -> Live:
    gr.Markdown("### The cost of recurrence")
    with gr.Row(elem_classes=["gp-scroll"]):
        cost_plot = gr.Plot(label="time against length", elem_id="recall-cost", min_width=300)
        with gr.Column(min_width=260):
            cost_note = gr.Markdown()
            measure = gr.Button("Measure on this machine now (~10 s)", size="sm")
    with gr.Accordion("Train one live: the embedded models' learning curves, and a fresh one", open=False,
                      elem_id="recall-live"):  # closed: the page stays short (benchmarks/pages.py)
        with gr.Row():
            kind = gr.Dropdown([(MODEL_TITLES[k], k) for k in MODEL_KINDS], value="transformer", label="model to train",
                               info="a fresh model, same architecture and optimiser as the embedded one", min_width=160)
            seconds = gr.Slider(*LIVE_SECONDS, value=60, step=5, label="seconds", min_width=160,
                                info="the embedded models trained for 3,000 steps; a minute is a few hundred")
            with gr.Column(min_width=160):
                train = gr.Button("Train", variant="primary", elem_id="recall-train")
                stop = gr.Button("Stop", size="sm", elem_id="recall-stop")
        train_note = gr.Markdown(elem_id="recall-status")
        curves = gr.Plot(label="learning curves", elem_id="recall-curves")
    explanation(EXPLANATION)
    with gr.Row():
        export = gr.Button("Download what you see (JSON + CSV)", size="sm")
    files = gr.File(label="download", file_count="multiple", visible=False)
    return Live(cost_plot, cost_note, measure, kind, seconds, train, stop, train_note, curves, export, files)


def wire(demo: gr.Blocks, builder: Binding, a: Answers, v: Views, live: Live) -> None:
    view_outputs = [a.answers, a.probs, a.saliency, v.attention, v.states]
    layout = [builder.components[f] for f in ("query", "distance")]
    private = {"api_visibility": "private", "trigger_mode": "always_last"}
    choices = [v.attention_from, v.states_of]
    inputs = builder.inputs_with(*choices)
    on_layout = builder.event(layout_moved, extra=choices, name="on_layout")
    for name in ("distance", "seed"):
        builder.components[name].input(builder.event(builder_moved, extra=choices, name="on_build"), inputs, [a.text, *view_outputs],
                                       **private)
    for name in ("n_pairs", "query"):
        builder.components[name].input(on_layout, inputs, [*layout, a.text, *view_outputs], **private)
    a.example.click(builder.event(random_example, extra=choices, name="on_random"), inputs,
                    [builder.components["n_pairs"], *layout, builder.components["seed"], a.text, *view_outputs],
                    api_visibility="private")
    for trigger in (a.run.click, a.text.submit):
        trigger(on_typed, [a.text, *choices], view_outputs, api_visibility="private")
    for radio in choices:
        radio.input(on_view_choice, [a.text, *choices], [v.attention, v.states], **private)
    live.measure.click(on_measure, None, [live.cost_plot, live.cost_note], api_visibility="private", **model_event())
    live.train.click(on_train, [live.kind, live.seconds], [live.curves, a.accuracy, live.train_note],
                     api_visibility="private", **model_event())
    STOP.wire(live.stop)
    live.export.click(on_export, [a.text], live.files, api_visibility="private")
    gr.api(recall_api, api_name="recall", **model_event())
    opening = Opening(opening_views, [*view_outputs, a.accuracy, a.by_pairs, live.cost_plot, live.cost_note,
                                        live.curves])

    def on_link(values: dict):
        """A link sets the builder; the view choices open as they are."""
        return on_layout({**values, v.attention_from: v.attention_from.value, v.states_of: v.states_of.value})

    builder.on_open(opening, on_link, [*layout, a.text, *view_outputs])


def findings(evaluation: dict | None) -> str:
    """What the stored evaluation shows, in words (from the numbers, not the folklore)."""
    if not evaluation:
        return ""
    acc = evaluation["accuracy_by_distance"]
    x = acc["x"]

    def at(kind, d):
        return acc["models"][kind][x.index(d)] if d in x else float("nan")

    far = max(x)
    parts = [f"**Measured** (held-out, {acc['n_per_point']} sequences per point): the Transformer is "
             f"{min(acc['models']['transformer']):.2f} or better at every distance up to {far}; "
             f"the tanh RNN is {at('rnn', 32):.2f} at d = 32 and {at('rnn', 64):.2f} at d = 64; "
             f"the LSTM {at('lstm', 0):.2f} at d = 0, {at('lstm', 8):.2f} at d = 8 and {at('lstm', 64):.2f} at d = 64; "
             f"the GRU {at('gru', 8):.2f} at d = 8 and {at('gru', 64):.2f} at d = 64."]
    sal = evaluation.get("saliency_at_value")
    if sal:
        a, b = sal["rnn"]["4"], sal["rnn"]["64"]
        parts.append(f"The tanh RNN's saliency at the queried value falls from {a:.2e} at d = 4 to {b:.2e} at "
                     f"d = 64 ({f'{a / b:.2g}x' if b > 0 else 'to zero'}; medians over {sal['n']} sequences, "
                     f"float64); the LSTM's from {sal['lstm']['4']:.2e} to {sal['lstm']['64']:.2e}, the "
                     f"Transformer's from {sal['transformer']['4']:.2e} to {sal['transformer']['64']:.2e}.")
    pairs = evaluation["accuracy_by_pairs"]
    parts.append(f"By the number of pairs: the LSTM goes from {pairs['models']['lstm'][0]:.2f} with 1 pair to "
                 f"{pairs['models']['lstm'][-1]:.2f} with 8: what limits the recurrent models here is how much they "
                 "must hold in one state at once, as much as how long ago they read it.")
    return " ".join(parts)


if __name__ == "__main__":
    from playground import theme

    with gr.Blocks(title=TAB.title) as _demo:
        build(_demo)
    _demo.launch(**theme.launch_kwargs())
