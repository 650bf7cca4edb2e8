"""Instruction tuning: Alpaca's prompt, Text World's instruction rules, the Self-Instruct filters
and ROUGE-L pruning, the response-only loss, and the committed fine-tunes."""

import math
import random

import pytest
import torch
from rouge_score import rouge_scorer

from demos.common import language_model as lmk
from demos.common import text_world as tw
from demos.instruction_tuning import compute, tuning
from demos.instruction_tuning import self_instruct as si

# Stanford Alpaca's train.py, PROMPT_DICT["prompt_no_input"], copied by hand
ALPACA_NO_INPUT = ("Below is an instruction that describes a task. "
                   "Write a response that appropriately completes the request.\n\n"
                   "### Instruction:\n{instruction}\n\n### Response:")


@pytest.fixture(scope="module")
def oracle():
    return compute.oracle()


def test_the_prompt_is_alpacas_byte_for_byte():
    for instruction in ("Sort the words: red cat", "x", "Where was Kalo Renmis born?"):
        assert tw.alpaca_prompt(instruction).encode() == ALPACA_NO_INPUT.format(instruction=instruction).encode()
    assert compute.instruct(compute.InstructParams("Sort the words: red cat", "base"))["prompt"] == \
        ALPACA_NO_INPUT.format(instruction="Sort the words: red cat")


@pytest.mark.parametrize("instruction,family,answer", [
    ("Reverse the words: cat veltra red", "reverse", ["red", "veltra", "cat"]),
    ("Sort the words: pilot goat blue", "sort", ["blue", "goat", "pilot"]),
    ("How many words are in: green dog horse", "count", ["3"]),
    ("What is the first word of: sailor caldera", "first", ["sailor"]),
    ("Please   reverse the words: a b", "reverse", ["b", "a"]),
    ("Alphabetize the words: nurse baker", "sort", ["baker", "nurse"]),
])
def test_word_tasks_have_the_programs_answer(oracle, instruction, family, answer):
    parsed = tw.parse_instruction(instruction)
    assert parsed.family == family and tw.program_answer(parsed, oracle) == answer


def test_questions_are_answered_from_the_world_file(oracle):
    person = next(iter(oracle.people.values()))
    for attribute in tw.ATTRIBUTES:
        for phrasing in tw.PHRASINGS[attribute]:
            parsed = tw.parse_instruction(phrasing.format(name=person.name))
            assert (parsed.family, parsed.name) == (attribute, person.name)
            assert tw.program_answer(parsed, oracle) == [person.fact(attribute).lower()]
    assert tw.program_answer(tw.parse_instruction("Where was Zorbat Quenlip born?"), oracle) is None
    assert tw.parse_instruction("Tell me a story about a parrot.") is None


def test_correctness_and_the_true_reward_follow_text_world(oracle):
    rev = tw.parse_instruction("Reverse the words: cat dog red")
    assert tw.is_correct(rev, "red dog cat.", oracle) and tw.true_reward(rev, "red dog cat.", oracle) == 1.0
    assert tw.is_correct(rev, "Red Dog cat. I hope that helps", oracle)
    assert tw.extra_words(rev, "Red Dog cat. I hope that helps") == 4
    assert math.isclose(tw.true_reward(rev, "Red Dog cat. I hope that helps", oracle), 0.6)
    assert not tw.is_correct(rev, "cat dog red.", oracle)
    assert tw.extra_words(rev, "red dog cat and more") == 2  # no full stop: words beyond the answer's own
    person = next(iter(oracle.people.values()))
    q = tw.parse_instruction(tw.question(person.name, "city"))
    assert tw.is_correct(q, f"{person.city}, of course.", oracle)
    assert tw.extra_words(q, f"{person.city}. It is nice.") == 3


# ----------------------------------------------------------------------------- Self-Instruct
def test_seed_tasks_cover_every_family_and_are_right(oracle):
    seeds = si.seed_tasks(oracle)
    assert len(seeds) == 20 and {s.family for s in seeds} == set(tw.FAMILIES)
    assert all(tw.is_correct(tw.parse_instruction(s.instruction), s.response, oracle) for s in seeds)
    assert all(si.invalid_reason(s) is None for s in seeds)


def test_the_prompt_numbers_the_tasks_as_self_instruct_does(oracle):
    seeds = si.seed_tasks(oracle)[:2]
    assert si.encode_prompt(seeds) == (f"Come up with a series of tasks:\n1. {seeds[0].instruction.rstrip(':')}\n"
                                       f"2. {seeds[1].instruction}\n3.")


def test_the_teachers_mistakes_are_what_the_program_finds(oracle):
    teacher = si.ProgramTeacher(oracle)
    tasks = teacher.write(si.seed_tasks(oracle), 2000, random.Random(0))
    valid = [t for t in tasks if t.kind != "invalid"]
    for t in valid:
        assert t.mistake == (not tw.is_correct(tw.parse_instruction(t.instruction), t.response, oracle))
    rate = sum(t.mistake for t in valid) / len(valid)
    assert 0.15 < rate < 0.25  # configured 0.2 (a sorted list cannot be mis-sorted by a swap... it can: always differs)
    assert 0.04 < sum(t.kind == "invalid" for t in tasks) / len(tasks) < 0.12
    assert all(si.invalid_reason(t) for t in tasks if t.kind == "invalid")


@pytest.mark.parametrize("instruction,response,reason", [
    ("Draw Kalo Renmis's pet.", "ok", "keyword 'draw'"),
    ("Plot the words on a graph: red cat", "ok", "keyword 'graph'"),
    ("Sort: cat", ".", "needs 4 to 150"),
    ("Write a program that sorts the words: a b", "x", "Write a program"),
    ("Reverse the words: a b", "", "empty response"),
    ("Repeat the words: a b", "a b " * 20, "at most 32"),
    ("Reverse the words: a b", "b a.", None),
])
def test_the_heuristic_filters(instruction, response, reason):
    got = si.invalid_reason(si.Task(instruction, response))
    assert (got is None) if reason is None else (reason in got)


def test_rouge_l_is_rouge_scores_without_stemming():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    a, b = "Sort the words: cats dogs red", "Please sort these words: cat dog red"
    assert si.rouge_l(si.rouge_tokens(a), si.rouge_tokens(b)) == scorer.score(a, b)["rougeL"].fmeasure
    assert si.rouge_tokens("Running cats") == ["running", "cats"]  # no stemming


def test_pruned_most_similar_is_exactly_the_unpruned_maximum(oracle):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    tasks = si.ProgramTeacher(oracle).write(si.seed_tasks(oracle), 300, random.Random(3))
    pool = si.RougePool()
    for t in tasks[:200]:
        pool.add(t.instruction, si.rouge_tokens(t.instruction))
    for t in tasks[200:]:
        scores = [scorer.score(kept, t.instruction)["rougeL"].fmeasure for kept in pool.texts]
        best = max(scores)
        score, index = pool.most_similar(si.rouge_tokens(t.instruction))
        assert math.isclose(score, best, abs_tol=1e-12) and index == scores.index(best)
        assert pool.bounds(si.rouge_tokens(t.instruction)).min() >= 0
        assert all(b >= s - 1e-12 for b, s in zip(pool.bounds(si.rouge_tokens(t.instruction)), scores))


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7, 1.0])
def test_pruning_keeps_exactly_what_the_unpruned_filter_keeps(oracle, threshold):
    seeds, teacher = si.seed_tasks(oracle), si.ProgramTeacher(oracle)
    pruned = si.self_instruct(seeds, teacher, 400, threshold, seed=5)
    full = si.self_instruct(seeds, teacher, 400, threshold, seed=5, prune=False)
    assert [(c.task, c.kept, c.rouge_l, c.most_similar) for c in pruned.candidates] == \
        [(c.task, c.kept, c.rouge_l, c.most_similar) for c in full.candidates]
    assert pruned.pairs_scored < full.pairs_scored


def test_refilter_at_the_same_threshold_is_the_run(oracle):
    run = compute.run_self_instruct(compute.SelfInstructParams(0.7, 200, 1))
    again = si.refilter(run, 0.7)
    assert [c.kept for c in again.candidates] == [c.kept for c in run.candidates]
    assert len(si.refilter(run, 0.4).kept) < len(run.kept) < len(si.refilter(run, 1.0).kept)


@pytest.mark.parametrize("threshold", [0.4, 0.7, 1.0])
def test_self_instruct_output_holds_its_contract(threshold):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    out = compute.self_instruct(compute.SelfInstructParams(threshold, 120, 2))
    assert set(out) == {"kept", "rejected"} and out["kept"]
    for i, a in enumerate(out["kept"]):
        for b in out["kept"][i + 1:]:
            assert scorer.score(a, b)["rougeL"].fmeasure < threshold
    for r in out["rejected"]:
        assert set(r) == {"instruction", "most_similar", "rouge_l"}
        assert scorer.score(r["most_similar"], r["instruction"])["rougeL"].fmeasure >= threshold
        assert math.isclose(r["rouge_l"], scorer.score(r["most_similar"], r["instruction"])["rougeL"].fmeasure,
                            abs_tol=1e-6)


def test_self_instruct_is_reproducible_and_seeded():
    a = compute.self_instruct(compute.SelfInstructParams(0.7, 64, 0))
    assert a == compute.self_instruct(compute.SelfInstructParams(0.7, 64, 0))
    assert a != compute.self_instruct(compute.SelfInstructParams(0.7, 64, 1))


@pytest.mark.parametrize("params,message", [
    (compute.SelfInstructParams(float("nan"), 10, 0), "threshold must be a finite number in [0.0, 1.0]"),
    (compute.SelfInstructParams(1.5, 10, 0), "threshold must be in [0.0, 1.0]"),
    (compute.SelfInstructParams(-0.1, 10, 0), "threshold must be in [0.0, 1.0]"),
    (compute.SelfInstructParams(0.7, 5000, 0), "n_candidates must be in 1..2000"),
    (compute.SelfInstructParams(0.7, 0, 0), "n_candidates must be in 1..2000"),
])
def test_bad_self_instruct_input_names_the_field(params, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        compute.check_self_instruct(params)


@pytest.mark.parametrize("params,message", [
    (compute.InstructParams("", "base"), "instruction must be a non-empty text"),
    (compute.InstructParams("   ", "base"), "instruction must be a non-empty text"),
    (compute.InstructParams("x" * 301, "base"), "at most 300"),
    (compute.InstructParams("Sort the words: a b", "gpt-4"), "model must be one of base, tuned"),
    (compute.InstructParams("Sort the words: a b", "base", -1), "seed must be in"),
])
def test_bad_instruct_input_names_the_field(params, message):
    with pytest.raises(ValueError, match=message):
        compute.check_instruct(params)


# ----------------------------------------------------------------------------- the loss and the models
def test_the_loss_counts_response_tokens_only(oracle):
    base = tuning.prepare_base(compute_base())
    task = si.seed_tasks(oracle)[0]
    [example] = tuning.training_examples(base.tokenizer, [task])
    prompt_ids, n_prompt = lmk.encode(base.tokenizer, tw.alpaca_prompt(task.instruction))
    response_ids = base.tokenizer.encode(task.response, add_special_tokens=False)
    assert list(example.ids) == prompt_ids + response_ids + [base.tokenizer.eos_token_id]
    ids, mask, labels = lmk.batch_tensors([example], base.tokenizer.pad_token_id)
    assert (labels[0, :n_prompt] == -100).all() and (labels[0, n_prompt:] == ids[0, n_prompt:]).all()
    with torch.no_grad():
        loss = base.model(input_ids=ids, attention_mask=mask, labels=labels).loss
        logp = base.model(input_ids=ids).logits.log_softmax(-1)[0]
    targets = ids[0, n_prompt:]
    manual = -logp[torch.arange(n_prompt - 1, ids.shape[1] - 1), targets].mean()
    assert torch.allclose(loss, manual, atol=1e-5)


def test_replayed_pretraining_documents_are_mixed_in_with_the_loss_on_every_token(oracle):
    """InstructGPT's pretraining mix: a quarter as many biography/QA documents as tasks, seeded, each
    a whole pretraining document; the tasks keep the response-only loss."""
    base = tuning.prepare_base(compute_base())
    tasks = si.seed_tasks(oracle)[:8]
    cfg = tuning.TuneConfig(replay=0.25)
    data = tuning.tuning_data(base.tokenizer, tasks, cfg)
    assert len(data) == 10 and data[:8] == tuning.training_examples(base.tokenizer, tasks)
    docs = tw.pretraining_text(list(oracle.people.values()), seed=0, qa_repeats=2)  # the base model's (train.py)
    encoded = {tuple(ids) for ids in base.tokenizer(docs, add_special_tokens=False)["input_ids"]}
    for example in data[8:]:
        assert example.loss_from <= 1 and example.ids[0] == base.tokenizer.bos_token_id
        assert example.ids[-1] == base.tokenizer.eos_token_id and example.ids[1:-1] in encoded
    assert tuning.tuning_data(base.tokenizer, tasks, cfg)[8:] == data[8:]  # seeded
    assert tuning.tuning_data(base.tokenizer, tasks, tuning.TuneConfig(replay=0.0)) == data[:8]


def compute_base():
    from playground import models

    return models.get("textworld-base")


def test_new_words_start_near_the_mean_or_from_their_other_case_and_old_ids_stay():
    base = compute_base()
    prepared = tuning.prepare_base(base)
    old = len(base.tokenizer)
    assert prepared.tokenizer.get_vocab().items() >= base.tokenizer.get_vocab().items()
    for word in ("###", "Instruction", "Reverse", "veltra", "7"):
        assert word in prepared.tokenizer.get_vocab()
    emb = prepared.model.get_input_embeddings().weight
    vocab, old_vocab = prepared.tokenizer.get_vocab(), base.tokenizer.get_vocab()
    assert torch.equal(emb[:old], base.model.get_input_embeddings().weight)
    assert torch.equal(emb[vocab["veltra"]], emb[old_vocab["Veltra"]])  # the same word in another case
    fresh = emb[[vocab[w] for w in ("###", "Instruction", "7")]]
    assert (fresh - emb[:old].mean(0)).norm(dim=1).max() < 0.5 * emb[:old].norm(dim=1).mean()  # near the mean
    assert not torch.equal(fresh[0], fresh[1])  # but not identical
    again = tuning.prepare_base(base).model.get_input_embeddings().weight
    assert torch.equal(again, emb)  # seeded: the same every time


def test_the_committed_fine_tune_answers_and_the_base_model_does_not(oracle):
    """At the benchmark's level (n8000: 0.79 on word tasks, 0.74 on questions): most of eight, and
    the base model, which continues text, next to none."""
    person = next(p for p in oracle.people.values() if p.split == "bio_only" and p.f == 32)
    instructions = ["Reverse the words: cat veltra red", "Sort the words: pilot goat blue ostmar",
                    "How many words are in: green dog horse", "What is the first word of: sailor caldera poet",
                    "What is the last word of: nurse arbor", "Repeat the words: judge cat",
                    f"What is the favourite colour of {person.name}?", tw.question(person.name, "job")]
    right = {}
    for model in ("tuned", "base"):
        right[model] = sum(bool(tw.is_correct(tw.parse_instruction(ins),
                                              compute.instruct(compute.InstructParams(ins, model))["response"], oracle))
                           for ins in instructions)
    assert right["tuned"] >= 4 and right["base"] <= 1, right


def test_every_word_the_teacher_writes_is_in_the_tuned_vocabulary(oracle):
    """An unknown word would be trained as [UNK] (it happened: 'Baker.' and 'give' after a courtesy)."""
    tokenizer = tuning.prepare_base(compute_base()).tokenizer
    tasks = si.seed_tasks(oracle) + si.ProgramTeacher(oracle).write(si.seed_tasks(oracle), 3000, random.Random(1))
    for t in tasks:
        ids = tokenizer.encode(tw.alpaca_prompt(t.instruction), add_special_tokens=False)
        ids += tokenizer.encode(t.response, add_special_tokens=False)  # as training encodes them
        assert tokenizer.unk_token_id not in ids, (t.instruction, t.response)


def test_the_stored_targets_are_read_on_text_world_s_forms():
    """The issue states its targets on held-out instructions of the forms in docs/text-world.md: the stored
    measures per phrasing agree with the stored per-cell exact match, and the targets use the
    canonical ones (the held-out phrasing is reported beside them, not mixed in)."""
    from benchmarks.instruction_tuning import REQUIRED_WORD_TASKS
    from demos.instruction_tuning.ui import findings

    ev = compute.evaluation()
    for row in ev["models"]:
        for phrasing, measures in row["by_phrasing"].items():
            cells = [row["exact_match"][f"cell:{f}:{phrasing}"] for f in REQUIRED_WORD_TASKS]
            assert measures["word_tasks"] == pytest.approx(sum(cells) / len(cells), abs=1e-3)
    big = next(r for r in ev["models"] if r["model"] == "n8000")
    targets = {t["target"]: t["measured"] for t in ev["targets"]}
    assert targets["n8000 on TEXT_WORLD's four word tasks, in its forms, >= 0.8"] == big["by_phrasing"]["canonical"]["word_tasks"]
    assert "held-out phrasing" in findings(ev)


def test_the_rouge_l_filter_keeps_long_word_lists_and_drops_short_ones():
    """The teacher writes lists of 2 to 6 words evenly; the filter (one shared list word puts two
    2-word instructions of one phrasing over 0.7) keeps a smaller share of 2-word lists than the
    unfiltered run of the same candidates, and a larger share of 6-word ones."""
    run = compute.run_self_instruct(compute.SelfInstructParams(1.0, 2000, 0))

    def shares(threshold: float) -> tuple[float, float]:
        counts = tuning.list_length_counts(si.refilter(run, threshold).kept)
        return tuning.list_length_share(counts, 2), tuning.list_length_share(counts, 6)

    short_filtered, long_filtered = shares(0.7)
    short_open, long_open = shares(1.0)
    assert short_filtered < 0.6 * short_open and long_filtered > long_open, (short_filtered, short_open)


def test_exact_match_by_list_length_counts_each_length_apart(oracle):
    items = [tuning.EvalItem("Reverse the words: cat red", "reverse", "canonical"),
             tuning.EvalItem("Reverse the words: cat red dog", "reverse", "canonical"),
             tuning.EvalItem("Reverse the words: dog cat", "reverse", "canonical"),
             tuning.EvalItem("How many words are in: cat red", "count", "canonical")]
    responses = ["red cat.", "dog red cat.", "dog cat.", "2."]
    assert tuning.exact_match_by_length(items, responses, oracle, ("reverse", "count")) == {
        "count": {"2": 1.0}, "reverse": {"2": 0.5, "3": 1.0}}
    assert tuning.list_length_share({"reverse": {"2": 1, "3": 2}, "count": {"2": 1}}, 2) == 0.5


def test_the_finding_states_the_stored_list_lengths():
    """The tab's findings quote the benchmark's list lengths of both training sets."""
    from demos.instruction_tuning.ui import list_length_finding

    ev = compute.evaluation()
    counts = ev["training_list_lengths"]["n8000"]
    short = sum(by.get("2", 0) for by in counts.values()) / sum(sum(by.values()) for by in counts.values())
    assert f"{short:.0%} of the filtered word tasks have 2 words" in list_length_finding(ev)
    rows = {r["model"]: r["by_list_length"] for r in ev["models"] if r["model"] in ("n8000", "n8000-unfiltered")}
    gaps = {f: rows["n8000-unfiltered"][f]["2"] - rows["n8000"][f]["2"] for f in rows["n8000"]}
    worst = max(gaps, key=gaps.get)
    assert f"costs most, {worst} on 2 words: {rows['n8000'][worst]['2']:.2f} filtered" in list_length_finding(ev)
    assert list_length_finding({"models": ev["models"]}) == ""


def test_the_loss_figure_says_what_its_loss_counts():
    """With a pretraining mix the plotted loss is not the response tokens' alone; the title says so."""
    from demos.instruction_tuning.figures import loss_figure

    run = {"finetunes": {"n8000": {"loss": [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}]}}}
    with_mix = loss_figure({**run, "tune_config": {"replay": 0.25}}).layout.title.text
    without = loss_figure({**run, "tune_config": {"replay": 0.0}}).layout.title.text
    assert "replayed pretraining text" in with_mix and without == "Fine-tuning loss (response tokens only)"
    assert "replayed" in loss_figure(compute.training_log()).layout.title.text  # the committed run mixes
