"""Self-Instruct (Wang et al. 2023) at Text World size: seed tasks, the prompt, a teacher that
writes new tasks, the filters, and the kept pool that Stanford Alpaca fine-tuned on.

Plain Python and numpy (no torch, no gradio). The pipeline, as in ``bootstrap_instructions.py``
of yizhongw/self-instruct and ``generate_instruction.py`` of tatsu-lab/stanford_alpaca:

1. **Prompt**: 6 human-written seed tasks and 2 machine-generated ones drawn at random, numbered
   under "Come up with a series of tasks:" (``encode_prompt``).
2. **Teacher**: writes ``per_prompt`` new tasks with responses (``ProgramTeacher``, shared with
   RLHF vs DPO in ``demos.common.program_teacher``).
3. **Filters**, in the original's order: length (more than 3 and at most 150 words), keywords a
   language model cannot act on (image, graph, picture, file, map, draw, plot, go to), "Write a
   program", a leading punctuation mark, an empty or over-long response; then **ROUGE-L**:
   a candidate is kept only if its ROUGE-L F-measure (``rouge-score``, no stemming) against
   every instruction kept so far, the seed tasks included, is below the threshold (0.7 in the
   paper).
4. The kept tasks join the pool and may be drawn into later prompts.

ROUGE-L against the whole pool is quadratic. ``RougePool`` prunes it by a bound: with ``m`` and
``n`` tokens and ``o`` tokens in common (as multisets), ``LCS <= o``, so
``F = 2 LCS / (m + n) <= 2 o / (m + n)``. Pool entries are scored in decreasing order of the bound
and the search stops once the bound falls below the best score found: the maximum (and which
instruction reaches it) is exact, and most pairs are never scored.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass, field

import numpy as np

from demos.common import text_world as tw
from demos.common.program_teacher import HELD_OUT_PHRASING, ProgramTeacher, TeacherConfig, Task  # noqa: F401

PROMPT_HEADER = "Come up with a series of tasks:\n"
N_SEED_IN_PROMPT, N_MACHINE_IN_PROMPT = 6, 2
BLACKLIST = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw",
             "plot", "go to")
MAX_RESPONSE_WORDS = 32


# ----------------------------------------------------------------------------- seed tasks
def seed_tasks(oracle: tw.Oracle) -> list[Task]:
    """20 human-written seed tasks: each family of ``tw.PHRASINGS`` in its canonical form and one
    more phrasing, about people the base model read about with question-answer pairs."""
    people = [p for p in oracle.people.values() if p.split == "qa_train" and p.f >= 8]
    lists = [["cat", "veltra", "red"], ["pilot", "goat", "blue", "ostmar"], ["green", "dog"],
             ["brask", "nurse", "yellow", "parrot", "miner"], ["horse", "lumen", "orange"],
             ["judge", "purple", "rabbit", "pell"], ["sailor", "caldera"], ["poet", "fennick", "cat", "red", "goat"],
             ["tailor", "hessel", "green"], ["baker", "dog", "arbor", "blue"], ["farmer", "orrin"],
             ["doctor", "parrot", "tamsey"]]
    out, i = [], 0
    for family in tw.FAMILIES:
        for k in (0, 1):
            phrasing = tw.PHRASINGS[family][k if k == 0 else 1 + (len(out) % 3)]
            if family in tw.WORD_TASKS:
                words = lists[i % len(lists)]
                i += 1
                instruction = phrasing.format(words=tw.word_list(words))
                answer = tw.WORD_TASKS[family][1](words)
            else:
                person = people[(len(out) * 7) % len(people)]
                instruction = phrasing.format(name=person.name)
                answer = [person.fact(family).lower()]
            out.append(Task(instruction, tw.response_text(answer, family), family))
    return out


def encode_prompt(tasks: list[Task]) -> str:
    """Self-Instruct's prompt: the tasks numbered under a header, ending at the next number."""
    prompt = PROMPT_HEADER
    for idx, task in enumerate(tasks):
        instruction = re.sub(r"\s+", " ", task.instruction).strip().rstrip(":")
        prompt += f"{idx + 1}. {instruction}\n"
    return prompt + f"{len(tasks) + 1}."


# ----------------------------------------------------------------------------- filters
def invalid_reason(task: Task) -> str | None:
    """Why Self-Instruct's heuristic filters drop a task, or None when it passes them."""
    n_words = len(task.instruction.split())
    if n_words <= 3 or n_words > 150:
        return f"instruction has {n_words} words (needs 4 to 150)"
    for word in BLACKLIST:
        if re.search(rf"\b{word}\b", task.instruction, flags=re.IGNORECASE):
            return f"keyword {word!r}: not a task for a language model"
    if task.instruction.startswith("Write a program"):
        return "starts with 'Write a program'"
    if task.instruction[0] in string.punctuation:
        return "starts with punctuation"
    if not task.response.strip():
        return "empty response"
    if len(task.response.split()) > MAX_RESPONSE_WORDS:
        return f"response has {len(task.response.split())} words (at most {MAX_RESPONSE_WORDS})"
    return None


def rouge_tokens(text: str) -> list[str]:
    """``rouge-score``'s own tokenisation (lower case, letters and digits), no stemming."""
    return _scorer()._tokenizer.tokenize(text)


def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(a: list[str], b: list[str]) -> float:
    """ROUGE-L F-measure of two token lists (``rouge_score.rouge_scorer._score_lcs``, as Alpaca's
    ``generate_instruction.py`` calls it on pre-tokenised instructions)."""
    from rouge_score import rouge_scorer

    return rouge_scorer._score_lcs(a, b).fmeasure


class RougePool:
    """The instructions kept so far, with a token-count matrix for the overlap bound."""

    def __init__(self):
        self.texts: list[str] = []
        self.tokens: list[list[str]] = []
        self.vocab: dict[str, int] = {}
        self.counts = np.zeros((64, 64), dtype=np.int16)  # (capacity, vocabulary) token counts
        self.lengths = np.zeros(64, dtype=np.int32)
        self.pairs_scored = 0

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, text: str, tokens: list[str]) -> None:
        n = len(self.texts)
        for t in tokens:
            if t not in self.vocab:
                self.vocab[t] = len(self.vocab)
        if n >= self.counts.shape[0] or len(self.vocab) > self.counts.shape[1]:
            grown = np.zeros((max(self.counts.shape[0], 2 * (n + 1)), max(self.counts.shape[1], 2 * len(self.vocab))),
                             dtype=np.int16)
            grown[: self.counts.shape[0], : self.counts.shape[1]] = self.counts
            self.counts = grown
            self.lengths = np.concatenate([self.lengths, np.zeros(grown.shape[0] - len(self.lengths), np.int32)])
        for t in tokens:
            self.counts[n, self.vocab[t]] += 1
        self.lengths[n] = len(tokens)
        self.texts.append(text)
        self.tokens.append(tokens)

    def bounds(self, tokens: list[str]) -> np.ndarray:
        """``2 o / (m + n)`` for every pool entry (N,): an upper bound on its ROUGE-L F-measure."""
        n = len(self.texts)
        columns, wanted = np.unique([self.vocab.get(t, -1) for t in tokens], return_counts=True)
        keep = columns >= 0
        overlap = np.minimum(self.counts[:n, columns[keep]], wanted[keep]).sum(1) if keep.any() else np.zeros(n)
        return 2.0 * overlap / np.maximum(1, self.lengths[:n] + len(tokens))

    def most_similar(self, tokens: list[str], prune: bool = True) -> tuple[float, int]:
        """The highest ROUGE-L F-measure against the pool and the first entry reaching it
        (score 0 and index -1 for an empty pool), exact with or without pruning."""
        if not self.texts:
            return 0.0, -1
        if not prune:
            scores = [rouge_l(kept, tokens) for kept in self.tokens]
            self.pairs_scored += len(scores)
            best = int(np.argmax(scores))
            return float(scores[best]), best
        bound = self.bounds(tokens)
        best_score, best_index = -1.0, -1
        for i in np.argsort(-bound, kind="stable"):
            if bound[i] < best_score - 1e-9:  # the bound in exact arithmetic; rouge-score rounds F
                break
            score = rouge_l(self.tokens[i], tokens)
            self.pairs_scored += 1
            if score > best_score or (score == best_score and i < best_index):
                best_score, best_index = score, int(i)
        return float(best_score), best_index


# ----------------------------------------------------------------------------- the pipeline
@dataclass
class Candidate:
    """A generated task and what the filters made of it."""

    task: Task
    round: int
    invalid: str | None = None  # the heuristic filter's reason, or None
    rouge_l: float = 0.0  # highest ROUGE-L against the pool when it was filtered
    most_similar: str = ""
    kept: bool = False


@dataclass
class Run:
    seeds: list[Task]
    candidates: list[Candidate] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    threshold: float = 0.7
    pairs_scored: int = 0

    @property
    def kept(self) -> list[Task]:
        return [c.task for c in self.candidates if c.kept]


def filter_candidate(candidate: Candidate, pool: RougePool, threshold: float, prune: bool = True) -> Candidate:
    """The heuristic filters, then ROUGE-L against ``pool``; a kept candidate joins the pool."""
    candidate.invalid = invalid_reason(candidate.task)
    candidate.kept, candidate.rouge_l, candidate.most_similar = False, 0.0, ""
    if candidate.invalid:
        return candidate
    tokens = rouge_tokens(candidate.task.instruction)
    score, index = pool.most_similar(tokens, prune=prune)
    candidate.rouge_l, candidate.most_similar = score, pool.texts[index] if index >= 0 else ""
    candidate.kept = score < threshold
    if candidate.kept:
        pool.add(candidate.task.instruction, tokens)
    return candidate


def seeded_pool(seeds: list[Task]) -> RougePool:
    pool = RougePool()
    for s in seeds:
        pool.add(s.instruction, rouge_tokens(s.instruction))
    return pool


def self_instruct(seeds: list[Task], teacher: ProgramTeacher, n_candidates: int, threshold: float, seed: int,
                  per_prompt: int = 8, prune: bool = True, stop=None) -> Run:
    """Rounds of prompt -> teacher -> filters until ``n_candidates`` tasks were written (or until
    ``stop(run)`` says enough, checked after every round)."""
    rng = random.Random(seed)
    run, pool = Run(seeds, threshold=threshold), seeded_pool(seeds)
    machine: list[Task] = []
    while len(run.candidates) < n_candidates and not (stop and stop(run)):
        prompt_tasks = rng.sample(seeds, N_SEED_IN_PROMPT) + rng.sample(machine, min(N_MACHINE_IN_PROMPT, len(machine)))
        run.prompts.append(encode_prompt(prompt_tasks))
        for task in teacher.write(prompt_tasks, min(per_prompt, n_candidates - len(run.candidates)), rng):
            c = filter_candidate(Candidate(task, len(run.prompts) - 1), pool, threshold, prune)
            run.candidates.append(c)
            if c.kept:
                machine.append(task)
    run.pairs_scored = pool.pairs_scored
    return run


def refilter(run: Run, threshold: float, prune: bool = True) -> Run:
    """The same candidates, in the same order, through the filters at another threshold (what the
    threshold slider does; the prompts stay those of the original run)."""
    pool = seeded_pool(run.seeds)
    out = Run(run.seeds, [filter_candidate(Candidate(c.task, c.round), pool, threshold, prune) for c in run.candidates],
              run.prompts, threshold)
    out.pairs_scored = pool.pairs_scored
    return out
