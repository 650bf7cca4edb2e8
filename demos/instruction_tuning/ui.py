"""Instruction tuning tab: Self-Instruct's data pipeline run live, and a Text World base model
against its Stanford-Alpaca-style fine-tunes.

Run alone with ``python -m demos.instruction_tuning.ui``. Imports no torch: the pipeline is plain
Python (``self_instruct``), models answer through ``compute.instruct`` (loaded on first use), and
the scaling views are drawn from the benchmark's stored evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import gradio as gr
import numpy as np

from demos.common import text_world as tw
from demos.instruction_tuning import compute, figures, tuning
from demos.instruction_tuning import self_instruct as si
from playground import tempfiles
from playground.plots import message_figure
from playground.ui_helpers import Api, Binding, Opening, api_errors, explanation, model_event, user_errors
from demos.instruction_tuning import TAB


MISSING = "No stored evaluation: run `python -m benchmarks.instruction_tuning --write`"
SWEEP = tuple(round(t, 2) for t in np.arange(0.3, 1.001, 0.05))

INTRO = """
### From a text continuer to an assistant
Stanford Alpaca fine-tuned LLaMA-7B on 52k instruction-response pairs that a stronger model
(text-davinci-003) wrote with **Self-Instruct**: prompt it with a few seed tasks, keep a new task only if
it is not too similar to any task kept so far (ROUGE-L below 0.7), then fine-tune in a fixed prompt format.
Here the whole line runs on **Text World**, where every instruction has a right answer a program knows:
*Run Self-Instruct* below, move the threshold, then ask the base model and its fine-tunes anything.

**The teacher is a program, not a model.** It stands in for text-davinci-003: prompted with a few tasks, it
writes new ones in the prompt's families with varied phrasings, copies some with one word changed, writes
some a language model cannot do, and answers wrongly a known share of the time (20%), as the real teacher
did. Every response is checked against the program's answer, so its error rate is measured, not guessed.
"""

EXPLANATION = r"""
**Self-Instruct** (Wang et al. 2023). Start from human-written seed tasks (here 20, one per family in
its standard form and one more phrasing). Each round: sample 6 seed and 2 generated tasks, number them
under *Come up with a series of tasks:*, let the teacher continue; filter what it writes; keep the rest.

**Filters**, in the original's order: the instruction has more than 3 and at most 150 words; no keyword a
language model cannot act on (*image, graph, picture, file, map, draw, plot, go to*); it does not start
with *Write a program* or a punctuation mark; the response is not empty and not over-long. Then
**ROUGE-L**: with $\mathrm{LCS}$ the longest common subsequence of the two token lists (lower case,
letters and digits, no stemming: the `rouge-score` package, as the original),
$$P = \frac{\mathrm{LCS}}{n},\quad R = \frac{\mathrm{LCS}}{m},\quad F = \frac{2PR}{P+R} = \frac{2\,\mathrm{LCS}}{m+n}.$$
A candidate is kept only if $F$ against **every** task kept so far is below the threshold.

**Pruning.** A candidate against a pool of $N$ tasks costs $N$ LCS computations. But the LCS never
exceeds the two lists' common words $o$ (as multisets), so $F \le 2o/(m+n)$; pool tasks are scored in
decreasing order of that bound, and the search stops when the bound falls below the best score found. The
result is exact (tested against the unpruned computation); the benchmark measures the speed-up.

**Alpaca's fine-tuning.** Each task becomes Alpaca's prompt followed by the response and EOS; the loss is
the cross-entropy of the **response tokens only** (the prompt's labels are ignored):
$$\mathcal{L} = -\frac{1}{|y|}\sum_{t=1}^{|y|} \log p_\theta(y_t \mid \text{prompt}, y_{<t}).$$
7 epochs (Alpaca: 3), cosine schedule with 3% warm-up (Alpaca: lr 2e-5 for 7B parameters; here 1e-3 for
2.6M). New words (*###*, *Instruction*) are added to the vocabulary with the mean embedding, as Alpaca's
`smart_tokenizer_and_embedding_resize` does.

**Not Alpaca's: a pretraining mix.** Seven epochs are what this small model needs to learn to reverse a
list, and over seven epochs it forgot facts about people no task asks about (71% of what the base model
knew kept, in one run). So each epoch also replays a quarter as many of the base model's own
pretraining documents (biographies), with the loss on every token, as InstructGPT mixes pretraining
gradients into PPO ("PPO-ptx") to avoid that alignment tax:
$$\mathcal{L} = \mathcal{L}_{\text{response}} + \mathcal{L}_{\text{LM on pretraining text}}\ \text{(one shuffled mix of both kinds of example)}.$$
"""


@dataclass(frozen=True)
class Controls:
    """The tab's controls: the Self-Instruct run and the instruction asked."""

    threshold: float = compute.SelfInstructParams.threshold
    n_candidates: int = compute.SelfInstructParams.n_candidates
    seed: int = compute.SelfInstructParams.seed
    instruction: str = compute.InstructParams.instruction

    def run_params(self) -> compute.SelfInstructParams:
        return compute.check_self_instruct(compute.SelfInstructParams(self.threshold, self.n_candidates, self.seed))

    def checked(self) -> "Controls":
        self.run_params()
        compute.check_instruct(compute.InstructParams(self.instruction))
        return self


def api_args(c: Controls) -> dict:
    p = c.run_params()
    return {"threshold": p.threshold, "n_candidates": p.n_candidates, "seed": p.seed}


def example_instructions() -> list[str]:
    """Standard forms, a phrasing no training task used, a frequent person, a never-seen one, and
    an instruction outside the families."""
    words = ["Reverse the words: cat veltra red", "Sort the words: pilot goat blue ostmar",
             "How many words are in: green dog horse", "What is the first word of: sailor caldera poet",
             "Alphabetize the words: nurse baker arbor"]
    try:
        people = compute.oracle().people.values()
    except ValueError:  # no world file here: the word tasks need none
        return [*words, "Tell me a story about a parrot."]
    frequent = next(p for p in people if p.split == "bio_only" and p.f == 32)
    unseen = next(p for p in people if p.split == "unseen")
    return [*words, tw.question(frequent.name, "city"),
            tw.PHRASINGS["job"][si.HELD_OUT_PHRASING].format(name=frequent.name), tw.question(unseen.name, "pet"),
            "Tell me a story about a parrot."]


# ----------------------------------------------------------------------------- formatting
def verdict(c: si.Candidate) -> str:
    if c.invalid:
        return f"dropped: {c.invalid}"
    if c.kept:
        return f"kept (highest ROUGE-L {c.rouge_l:.2f})"
    return f"rejected: ROUGE-L {c.rouge_l:.2f}"


def candidates_table(run: si.Run) -> list[list]:
    return [[c.round + 1, c.task.instruction, c.task.response, "wrong" if c.task.mistake else "right", verdict(c)]
            for c in run.candidates]


def rejected_table(run: si.Run) -> list[list]:
    return [[c.task.instruction, c.most_similar, round(c.rouge_l, 3)] for c in run.candidates
            if not c.kept and not c.invalid]


def summary_markdown(run: si.Run) -> str:
    s = compute.summarise(run)
    return (f"**{s.n_candidates}** candidates in {len(run.prompts)} rounds at threshold **{run.threshold:.2f}**: "
            f"**{s.n_kept} kept**, {s.n_rejected} rejected by ROUGE-L, {s.n_invalid} dropped by the other filters. "
            f"The teacher's responses were wrong for **{s.teacher_mistake_rate:.0%}** of the valid candidates "
            f"(its configured rate is {si.TeacherConfig().mistake_rate:.0%}); the filter does not look at responses, "
            f"so **{s.kept_mistake_rate:.0%}** of the kept tasks teach a wrong answer. Kept tasks use "
            f"**{s.distinct_phrasings}** distinct phrasings. ROUGE-L pairs scored: {run.pairs_scored:,} "
            f"(without pruning: {_unpruned_pairs(run):,}).")


def _unpruned_pairs(run: si.Run) -> int:
    pool, total = len(run.seeds), 0
    for c in run.candidates:
        if not c.invalid:
            total += pool
            pool += c.kept
    return total




def pool_views(run: si.Run, sweep_rows: list[dict]) -> tuple:
    s = compute.summarise(run)
    return (summary_markdown(run), figures.similarity_figure(s.highest_similarity, run.threshold),
            figures.families_figure(s.families), figures.sweep_figure(sweep_rows, run.threshold),
            candidates_table(run), rejected_table(run))


def run_views(run: si.Run) -> tuple:
    sweep_rows = compute.threshold_sweep(run, SWEEP)
    return (run.prompts[0] if run.prompts else "", run.prompts[-1] if run.prompts else "",
            *pool_views(run, sweep_rows), run_file(run), (run, sweep_rows))


def run_file(run: si.Run) -> str:
    folder = tempfiles.output_folder("self-instruct")
    path = folder / "self_instruct.json"
    path.write_text(json.dumps({"threshold": run.threshold, "prompts": run.prompts,
                                "candidates": [{"round": c.round, "instruction": c.task.instruction,
                                                "response": c.task.response, "kind": c.task.kind,
                                                "teacher_wrong": c.task.mistake, "dropped": c.invalid,
                                                "rouge_l": c.rouge_l, "most_similar": c.most_similar,
                                                "kept": c.kept} for c in run.candidates]}, indent=1))
    return str(path)


def compare_rows(instruction: str) -> list[list]:
    """Every model's response to ``instruction``, with the program's verdict."""
    rows = []
    for model in compute.SHOWN_MODELS:
        response = compute.instruct(compute.InstructParams(instruction, model))["response"]
        g = compute.grade(instruction, response)
        rows.append([model, response or "(nothing)",
                     ("right" if g["right"] else "wrong") if g["checkable"] else "cannot be checked",
                     round(g["true_reward"], 2) if g["checkable"] else None])
    return rows


def compare_note(instruction: str) -> str:
    g = compute.grade(instruction, "")
    if g["checkable"]:
        return f"A **{g['family']}** instruction; the program's answer is **{g['truth']}**"
    if "why" in g:
        return f"A **{g['family']}** question, but {g['why']}: no answer can be right, any given is made up."
    return ("Not one of the tab's task families: no program knows the right answer, so the responses are shown "
            "unchecked.")


def findings(ev: dict | None) -> str:
    if not ev:
        return MISSING
    rows = {r["model"]: r for r in ev["models"]}
    base, big = rows.get("base"), rows.get("n8000")
    if not base or not big:
        return MISSING
    parts = [f"**Measured** on {ev['n_items']} held-out instructions (greedy): the base model "
             f"{base['exact_match']['all']:.2f} exact match (it continues the text), the 8,000-example fine-tune "
             f"{big['exact_match']['group:words']:.2f} on word tasks and {big['exact_match']['group:questions']:.2f} "
             f"on questions; of the facts the base model answers right in its own format, the fine-tune answers "
             f"**{big['share_of_base_knowledge']:.0%}** as instructions. On phrasings no training task used: "
             f"{big['exact_match']['phrasing:held-out']:.2f}."]
    forms = big.get("by_phrasing", {})
    if "canonical" in forms and "held-out" in forms:
        c, h = forms["canonical"], forms["held-out"]
        parts.append(f"In the forms the Text World specification gives (\"Reverse the words: ...\"): word tasks "
                     f"**{c['word_tasks']:.3f}**, knowledge kept **{c['share_of_base_knowledge']:.0%}**; in the "
                     f"held-out phrasing: {h['word_tasks']:.2f} and {h['share_of_base_knowledge']:.0%}.")
    variants = (("n8000-unfiltered", "with the ROUGE-L filter off"),
                ("n8000-noisy", "with the teacher's mistakes kept"))
    for name, label in variants:
        if name in rows:
            diff = rows[name]["exact_match"]["all"] - big["exact_match"]["all"]
            parts.append(f"8,000 examples {label}: {rows[name]['exact_match']['all']:.2f} "
                         f"({'+' if diff >= 0 else ''}{diff:.2f} against filtered, clean).")
    skew = list_length_finding(ev)
    return " ".join(parts) + (f"\n\n{skew}" if skew else "")


def list_length_finding(ev: dict) -> str:
    """What the ROUGE-L filter does to the word lists the model learns from, and what that costs
    on short lists (from the benchmark's ``training_list_lengths`` and ``by_list_length``)."""
    lengths = ev.get("training_list_lengths", {})
    rows = {r["model"]: r for r in ev["models"]}
    if "n8000" not in lengths or "n8000-unfiltered" not in lengths or "by_list_length" not in rows.get("n8000", {}):
        return ""

    def at(model: str, family: str, n: str) -> str:
        value = rows.get(model, {}).get("by_list_length", {}).get(family, {}).get(n)
        return "n/a" if value is None else f"{value:.2f}"

    filtered, unfiltered = (tuning.list_length_share(lengths[m], 2) for m in ("n8000", "n8000-unfiltered"))

    def cost(family: str) -> float:  # how much better the unfiltered model does on 2-word lists
        by = {m: rows.get(m, {}).get("by_list_length", {}).get(family, {}) for m in ("n8000", "n8000-unfiltered")}
        return by["n8000-unfiltered"].get("2", 0.0) - by["n8000"].get("2", 0.0)

    family = max(rows["n8000"]["by_list_length"], key=cost)
    return (f"**The filter skews the word lists**: the teacher writes lists of 2 to 6 words evenly, but ROUGE-L "
            f"rejects short ones (one shared word puts two 2-word instructions of one phrasing over 0.7), so "
            f"{filtered:.0%} of the filtered word tasks have 2 words against "
            f"{unfiltered:.0%} unfiltered. Where that costs most, {family} on 2 words: {at('n8000', family, '2')} "
            f"filtered, {at('n8000-unfiltered', family, '2')} unfiltered (on 5 words: {at('n8000', family, '5')} "
            f"and {at('n8000-unfiltered', family, '5')}).")


# ----------------------------------------------------------------------------- callbacks
@api_errors
def instruct_api(instruction: str, model: str, seed: int) -> dict:
    """One model's greedy response in Alpaca's format (see README)."""
    return compute.instruct(compute.InstructParams(instruction, model, seed))


@api_errors
def self_instruct_api(threshold: float, n_candidates: int, seed: int) -> dict:
    """Self-Instruct rounds with the program teacher and the filters (see README)."""
    return compute.self_instruct(compute.SelfInstructParams(threshold, n_candidates, seed))


def on_run(c: Controls):
    return run_views(compute.run_self_instruct(c.run_params()))


@user_errors
def on_threshold(threshold: float, state):
    if not state:
        raise ValueError("Run Self-Instruct first: the threshold re-filters the candidates of the last run.")
    run, sweep_rows = state
    threshold = compute.check_self_instruct(compute.SelfInstructParams(threshold, 1, 0)).threshold
    return pool_views(si.refilter(run, threshold), sweep_rows)


def on_compare(c: Controls):
    p = compute.check_instruct(compute.InstructParams(c.instruction))
    return compare_note(p.instruction), compare_rows(p.instruction), tw.alpaca_prompt(p.instruction)


@lru_cache(maxsize=1)
def opening_views() -> tuple:
    """The opening views: the default Self-Instruct run (plain Python, ~0.3 s) and the stored
    evaluation; drawn on page load, cached per process."""
    ev, missing = compute.evaluation(), message_figure(MISSING)
    try:
        run = run_views(compute.run_self_instruct(compute.SelfInstructParams()))
    except ValueError as err:  # no world file on this machine: say so, the rest of the app works
        empty = message_figure(str(err))
        run = ("", "", f"**{err}**", empty, empty, empty, [], [], None, None)
    log = compute.training_log()
    stored = (ev or {}).get("compare")
    compare = ((compare_note(stored["instruction"]), stored["rows"], tw.alpaca_prompt(stored["instruction"]))
               if stored else ("", [], ""))
    return (*run, findings(ev), figures.scaling_figure(ev) if ev else missing,
            figures.family_figure(ev) if ev else missing, figures.loss_figure(log) if log else missing, *compare)


def run_controls() -> dict:
    with gr.Row():
        threshold = gr.Slider(0.3, 1.0, value=Controls.threshold, step=0.05, label="ROUGE-L threshold",
                              elem_id="instruct-threshold", min_width=220,
                              info="keep a task only if its ROUGE-L against every kept task is below this")
        n_candidates = gr.Slider(8, 512, value=Controls.n_candidates, step=8, label="candidates",
                                 elem_id="instruct-candidates", min_width=220,
                                 info="tasks the teacher writes, 8 per round (the API takes up to 2,000)")
        seed = gr.Number(Controls.seed, precision=0, minimum=0, label="seed", min_width=160,
                         elem_id="instruct-seed", info="the prompts' and the teacher's random generator")
    return {"threshold": threshold, "n_candidates": n_candidates, "seed": seed}


@dataclass(frozen=True)
class RunViews:
    """1. Self-Instruct: the Run button and what a run shows."""

    run: gr.Button
    summary: gr.Markdown
    similarity: gr.Plot
    families: gr.Plot
    sweep_plot: gr.Plot
    first_prompt: gr.Code
    last_prompt: gr.Code
    candidates: gr.Dataframe
    rejected: gr.Dataframe
    download: gr.File


@dataclass(frozen=True)
class AskViews:
    """2. Ask every model: the button and the answers (the instruction box is a bound control)."""

    ask: gr.Button
    note: gr.Markdown
    table: gr.Dataframe
    prompt: gr.Code


@dataclass(frozen=True)
class EvalViews:
    """3. The stored evaluation."""

    found: gr.Markdown
    scaling: gr.Plot
    per_family: gr.Plot
    loss: gr.Plot


def build(demo: gr.Blocks) -> Binding:
    gr.Markdown(INTRO)
    gr.Markdown("### 1. Self-Instruct, live")
    c = run_controls()
    r = run_section()
    state = gr.State(None)
    gr.Markdown("### 2. Ask the base model and its fine-tunes")
    c["instruction"] = gr.Textbox(Controls.instruction, label="instruction", elem_id="instruct-ask-box", max_lines=3,
                                  info="any instruction; the word tasks and the four questions of Text World can be "
                                       "checked")
    binding = Binding(Controls, **c, check=Controls.checked,
                      api=Api("self_instruct", api_args, note="Asking the models is the `instruct` endpoint."))
    a = ask_views(c["instruction"])
    e = eval_views()
    explanation(EXPLANATION)
    wire(demo, binding, state, r, a, e)
    return binding


def run_section() -> RunViews:
    run = gr.Button("Run Self-Instruct", variant="primary", elem_id="instruct-run")
    summary = gr.Markdown(elem_id="instruct-summary")
    with gr.Row():
        similarity = gr.Plot(label="highest similarity", elem_id="instruct-similarity", min_width=300)
        families = gr.Plot(label="families", elem_id="instruct-families", min_width=300)
        sweep_plot = gr.Plot(label="threshold sweep", elem_id="instruct-sweep", min_width=300)
    with gr.Accordion("The prompts the teacher saw (first and last round)", open=False):
        with gr.Row():
            first_prompt = gr.Code(label="round 1", language=None, elem_id="instruct-prompt-first")
            last_prompt = gr.Code(label="last round", language=None)
    candidates = gr.Dataframe(headers=["round", "instruction", "response", "teacher", "filter"], label="candidates",
                              interactive=False, wrap=True, max_height=360, elem_id="instruct-candidates-table",
                              column_widths=["8%", "38%", "22%", "10%", "22%"])
    rejected = gr.Dataframe(headers=["rejected instruction", "most similar kept instruction", "ROUGE-L"],
                            label="rejected by ROUGE-L", interactive=False, wrap=True, max_height=300,
                            elem_id="instruct-rejected")
    download = gr.File(label="this run (JSON)", elem_id="instruct-download")
    return RunViews(run, summary, similarity, families, sweep_plot, first_prompt, last_prompt, candidates, rejected,
                    download)


def ask_views(instruction: gr.Textbox) -> AskViews:
    ask = gr.Button("Ask every model", variant="primary", elem_id="instruct-ask")
    note = gr.Markdown(elem_id="instruct-note")
    table = gr.Dataframe(headers=["model", "response (greedy)", "program says", "true reward r*"], interactive=False,
                         wrap=True, elem_id="instruct-compare")
    with gr.Accordion("The prompt (Alpaca's format)", open=False):
        prompt = gr.Code(language=None, elem_id="instruct-prompt")
    gr.Examples([[x] for x in example_instructions()], inputs=[instruction],
                label="Examples: standard forms, a phrasing no training task used, a frequent and a never-seen person, "
                      "a task outside the families")
    return AskViews(ask, note, table, prompt)


def eval_views() -> EvalViews:
    gr.Markdown("### 3. What tuning buys (held-out instructions)")
    found = gr.Markdown(elem_id="instruct-findings")
    with gr.Row():
        scaling = gr.Plot(label="scaling", elem_id="instruct-scaling", min_width=300)
        per_family = gr.Plot(label="per family", elem_id="instruct-families-eval", min_width=300)
    loss = gr.Plot(label="training", elem_id="instruct-loss")
    return EvalViews(found, scaling, per_family, loss)


def wire(demo: gr.Blocks, binding: Binding, state: gr.State, r: RunViews, a: AskViews, e: EvalViews) -> None:
    threshold, instruction = binding.components["threshold"], binding.components["instruction"]
    pool_outputs = [r.summary, r.similarity, r.families, r.sweep_plot, r.candidates, r.rejected]
    run_outputs = [r.first_prompt, r.last_prompt, *pool_outputs, r.download, state]
    r.run.click(binding.event(on_run), binding.inputs, run_outputs, api_visibility="private", concurrency_limit=2)
    threshold.release(on_threshold, [threshold, state], pool_outputs, api_visibility="private",
                      trigger_mode="always_last")
    compare_cb = binding.event(on_compare)
    for trigger in (a.ask.click, instruction.submit):
        trigger(compare_cb, binding.inputs, [a.note, a.table, a.prompt], api_visibility="private", **model_event())
    gr.api(instruct_api, api_name="instruct", **model_event())
    gr.api(self_instruct_api, api_name="self_instruct", concurrency_limit=2)
    opening = Opening(opening_views, [*run_outputs, e.found, e.scaling, e.per_family, e.loss, a.note,
                                        a.table, a.prompt])
    binding.on_open(opening, binding.event(on_run), run_outputs)


if __name__ == "__main__":
    from playground import theme

    with gr.Blocks(title=TAB.title) as _demo:
        build(_demo)
    _demo.launch(**theme.launch_kwargs())
