"""Instruction tuning of the Text World base model, Stanford Alpaca's recipe at toy size, and the
held-out evaluation that says what it bought.

* **Fine-tuning** (``demos.common.sft``, shared with RLHF vs DPO's SFT policy): the Self-Instruct
  pool (``self_instruct``) in Alpaca's format, loss on the response tokens only, with a quarter as
  many of the base model's pretraining documents as tasks mixed in (``TuneConfig.replay``, loss on
  every token), so that the 7 epochs the word tasks need do not erase the facts the base model learned.
* **New words**: the base model's word-level vocabulary never saw the template ("###",
  "Instruction") or the instructions' words; they are appended (``language_model.resize_embeddings``):
  a word the vocabulary has in another case starts from that row (``veltra`` from ``Veltra``), any
  other at the mean of the old rows, as Alpaca's ``smart_tokenizer_and_embedding_resize`` does for
  its pad token, plus a little noise so that new words do not start identical.
  The "base" model of the tab is the base model with those rows added and nothing trained.

Imports torch and transformers (through ``demos.common.language_model``) when called.
"""

from __future__ import annotations

import copy
import random
from collections import Counter, defaultdict
from dataclasses import dataclass

from demos.common import text_world as tw
from demos.common.sft import TuneConfig, family_counts, finetune, training_examples, tuning_data  # noqa: F401
from demos.instruction_tuning import self_instruct as si

MAX_NEW_TOKENS = 32
EXTRA_WORDS = ("yes", "no", "I", "you", "it", "a", "an", "the", "and", "or", "to", "is", "are", "what", "which",
               "who", "how", "many", "word", "words", "list", "answer", "question", "task", "tasks", "please",
               "series", "cannot", "do", "that", "def", "sort", "words", "write", "program")


def vocabulary_texts() -> list[str]:
    """Every word an instruction of the tab's families, Alpaca's template or the teacher's
    output can contain, besides names (already in the base vocabulary)."""
    texts = [tw.ALPACA_PROMPT, si.PROMPT_HEADER, " ".join(tw.WORD_VALUES), " ".join(str(i) for i in range(10)),
             " ".join(tw.PREFIXES), " ".join(tw.QUESTION_SUFFIXES), " ".join(EXTRA_WORDS), " ".join(si.BLACKLIST),
             "Draw a picture of pet. Plot the words on a graph: Make a map of where was born. I cannot do that. "
             "Write a program that sorts the words: def sort(words): ..."]
    texts += [p for ps in tw.PHRASINGS.values() for p in ps]
    return texts + [t.lower() for t in texts]  # after a courtesy, a phrasing starts in lower case


def prepare_base(base_lm):
    """The base model ready for tuning: its vocabulary extended (``vocabulary_texts``), new rows at
    the mean embedding. A copy; the registry's base model is never changed."""
    from demos.common import language_model as lmk

    tokenizer = lmk.extend_tokenizer(base_lm.tokenizer, vocabulary_texts())
    model = copy.deepcopy(base_lm.model)
    lmk.resize_embeddings(model, tokenizer, base_lm.tokenizer)
    model.config.vocab_size = len(tokenizer)
    return lmk.LanguageModel(model.eval(), tokenizer)


# ----------------------------------------------------------------------------- held-out evaluation
@dataclass(frozen=True)
class EvalItem:
    instruction: str
    family: str
    phrasing: str  # "canonical" (the Text World specification's form) | "held-out" (a phrasing no training task used)


def evaluation_set(oracle: tw.Oracle, n_per_cell: int = 40, seed: int = 1234,
                   exclude: set[str] = frozenset()) -> list[EvalItem]:
    """Held-out instructions: for each family, ``n_per_cell`` in its canonical form and as many in
    its held-out phrasing. Word lists of 2 to 5 words (docs/text-world.md) never in ``exclude``;
    questions about bio-only people with f >= 16, whom no training task asks about."""
    rng = random.Random(seed)
    people = sorted((p for p in oracle.people.values() if p.split == "bio_only" and p.f >= 16), key=lambda p: p.name)
    items = []
    for family in tw.FAMILIES:
        for phrasing_name, index in (("canonical", 0), ("held-out", si.HELD_OUT_PHRASING)):
            phrasing, made = tw.PHRASINGS[family][index], 0
            while made < n_per_cell:
                if family in tw.WORD_TASKS:
                    instruction = phrasing.format(words=tw.word_list(rng.sample(tw.WORD_VALUES, rng.randint(2, 5))))
                else:
                    instruction = phrasing.format(name=rng.choice(people).name)
                if instruction not in exclude:
                    items.append(EvalItem(instruction, family, phrasing_name))
                    made += 1
    return items


def respond(lm, instructions: list[str], batch: int = 64) -> list[str]:
    """Greedy responses (at most ``MAX_NEW_TOKENS``, to EOS) to Alpaca-formatted instructions."""
    from demos.common import language_model as lmk

    out = []
    for i in range(0, len(instructions), batch):
        prompts = [tw.alpaca_prompt(x) for x in instructions[i:i + batch]]
        out += lmk.generate(lm, prompts, max_new_tokens=MAX_NEW_TOKENS, stop=())
    return out


def exact_match(items: list[EvalItem], responses: list[str], oracle: tw.Oracle) -> dict:
    """Exact match (the Text World specification's rule) overall, by family, by phrasing, by group (word tasks /
    questions)."""
    cells: dict[str, list[bool]] = defaultdict(list)
    for item, response in zip(items, responses):
        right = bool(tw.is_correct(tw.parse_instruction(item.instruction), response, oracle))
        for key in ("all", f"family:{item.family}", f"phrasing:{item.phrasing}",
                    "group:words" if item.family in tw.WORD_TASKS else "group:questions",
                    f"cell:{item.family}:{item.phrasing}"):
            cells[key].append(right)
    return {k: round(sum(v) / len(v), 4) for k, v in sorted(cells.items())}


def base_knowledge(base_lm, items: list[EvalItem], oracle: tw.Oracle) -> dict[str, bool]:
    """For each question of ``items``, whether the base model knows the fact: its greedy answer in
    its own format (``Q: ... A:``, the canonical question) is right."""
    from demos.common import language_model as lmk

    questions = {}
    for item in items:
        if item.family in tw.QUESTION_FAMILIES:
            parsed = tw.parse_instruction(item.instruction)
            questions[item.instruction] = (parsed.name, item.family)
    keys = list(questions)
    answers = []
    for i in range(0, len(keys), 64):
        answers += lmk.generate(base_lm, [tw.qa_prompt(tw.question(*questions[k])) for k in keys[i:i + 64]], 3)
    return {k: bool(oracle.correct(*questions[k], a)) for k, a in zip(keys, answers)}


def share_of_base_knowledge(items, responses, known: dict[str, bool], oracle) -> float | None:
    """Of the questions the base model answers right in its own format, the share the tuned model
    answers right as an instruction."""
    hits = [bool(tw.is_correct(tw.parse_instruction(i.instruction), r, oracle))
            for i, r in zip(items, responses) if known.get(i.instruction)]
    return round(sum(hits) / len(hits), 4) if hits else None


def list_length_counts(tasks: list[si.Task]) -> dict[str, dict[str, int]]:
    """For each word-task family, how many ``tasks`` have a list of each length. The ROUGE-L filter
    keeps long lists and drops short ones: two instructions of one phrasing share its words, and a
    short list leaves little else, so one shared list word puts a 2-word list over 0.7
    (``Reverse the words: a b`` against ``Reverse the words: a c``: 4 of 5 tokens, ROUGE-L 0.8),
    while two 6-word lists need 4 words in common, in the same order."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for task in tasks:
        parsed = tw.parse_instruction(task.instruction)
        if parsed is not None and parsed.family in tw.WORD_TASKS:
            counts[parsed.family][str(len(parsed.words))] += 1
    return {family: dict(sorted(c.items())) for family, c in sorted(counts.items())}


def list_length_share(counts: dict[str, dict[str, int]], length: int) -> float:
    """The share of all word tasks in ``counts`` (``list_length_counts``) with a list of ``length``."""
    total = sum(sum(by.values()) for by in counts.values())
    return sum(by.get(str(length), 0) for by in counts.values()) / max(1, total)


def exact_match_by_length(items: list[EvalItem], responses: list[str], oracle: tw.Oracle,
                          families: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Exact match on the word tasks of ``families`` by the length of the word list."""
    cells: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for item, response in zip(items, responses):
        parsed = tw.parse_instruction(item.instruction)
        if item.family in families and parsed is not None:
            cells[item.family][str(len(parsed.words))].append(bool(tw.is_correct(parsed, response, oracle)))
    return {family: {n: round(sum(v) / len(v), 4) for n, v in sorted(by.items())}
            for family, by in sorted(cells.items())}
