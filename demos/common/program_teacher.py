"""The Self-Instruct program teacher: the stand-in for text-davinci-003 that writes new tasks with
responses, a known share of them wrong (Instruction tuning's Self-Instruct pipeline), and the
plausible mistakes RLHF vs DPO's wrong demonstrations reuse.

Plain Python (no torch, no gradio). A task's family and phrasing come from Text World's
instruction rules (``text_world.PHRASINGS``); its right answer from the program
(``text_world.program_answer``), so every task records whether its response is wrong.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from demos.common import text_world as tw

# The teacher writes these phrasings (index into tw.PHRASINGS[family]); the last phrasing of every
# family is held out: no seed task and no generated task uses it, the benchmark does.
TEACHER_PHRASINGS = range(0, 5)
HELD_OUT_PHRASING = 5


@dataclass(frozen=True)
class Task:
    """One instruction and its response, with what the program knows about it."""

    instruction: str
    response: str
    family: str = ""  # "" for a task outside the families (e.g. an invalid one)
    origin: str = "seed"  # seed | teacher
    mistake: bool = False  # the teacher's response is wrong (by the program's answer)
    kind: str = "new"  # new | near-duplicate | invalid


@dataclass(frozen=True)
class TeacherConfig:
    """What the program teacher does, in known proportions."""

    mistake_rate: float = 0.2  # responses that are wrong
    near_duplicate_rate: float = 0.15  # a prompt task copied with one word changed
    invalid_rate: float = 0.08  # tasks a language model cannot do, or broken outputs
    follow_prompt: float = 0.7  # a new task of a family seen in the prompt (else any family)


class ProgramTeacher:
    """The stand-in for text-davinci-003: a program, not a model. Prompted with a few tasks, it
    writes new ones: mostly of the prompt's families in one of its phrasings with new arguments,
    some near-copies of a prompt task, some invalid ones; it answers with a known share of
    mistakes of the kinds a model makes (a wrong value, an off-by-one count, a missed swap).
    Each task records what it is, so the tab can show the teacher's error rate."""

    def __init__(self, oracle: tw.Oracle, config: TeacherConfig = TeacherConfig()):
        self.oracle, self.config = oracle, config
        # people the teacher writes questions about: read in pretraining, never the held-out f >= 16 bio-only ones
        self.people = [p for p in oracle.people.values()
                       if (p.split == "qa_train" and p.f >= 1) or (p.split == "bio_only" and p.f <= 8)]

    def write(self, prompt_tasks: list[Task], n: int, rng: random.Random) -> list[Task]:
        return [self._one(prompt_tasks, rng) for _ in range(n)]

    def _one(self, prompt_tasks: list[Task], rng: random.Random) -> Task:
        c, u = self.config, rng.random()
        if u < c.invalid_rate:
            return self._invalid(rng)
        if u < c.invalid_rate + c.near_duplicate_rate:
            base = rng.choice([t for t in prompt_tasks if t.family] or prompt_tasks)
            return self._near_duplicate(base, rng)
        families = sorted({t.family for t in prompt_tasks if t.family})
        family = rng.choice(families) if families and rng.random() < c.follow_prompt else rng.choice(tw.FAMILIES)
        phrasing = tw.PHRASINGS[family][rng.choice(TEACHER_PHRASINGS)]
        if family in tw.WORD_TASKS:
            instruction = phrasing.format(words=tw.word_list(self._words(rng)))
        else:
            instruction = phrasing.format(name=rng.choice(self.people).name)
            if rng.random() < 0.5:
                instruction += " " + rng.choice(tw.QUESTION_SUFFIXES)
        if rng.random() < 0.5:
            instruction = rng.choice(tw.PREFIXES) + " " + instruction[0].lower() + instruction[1:]
        return self._answer(instruction, family, rng)

    @staticmethod
    def _words(rng: random.Random) -> list[str]:
        return rng.sample(tw.WORD_VALUES, rng.randint(2, 6))

    def _answer(self, instruction: str, family: str, rng: random.Random, kind: str = "new") -> Task:
        parsed = tw.parse_instruction(instruction)
        truth = tw.program_answer(parsed, self.oracle)
        mistake = rng.random() < self.config.mistake_rate
        answer = plausible_mistake(parsed, truth, rng) if mistake else truth
        mistake = answer != truth
        return Task(instruction, tw.response_text(answer, family), family, "teacher", mistake, kind)

    def _near_duplicate(self, base: Task, rng: random.Random) -> Task:
        """``base`` with one argument changed: a task the ROUGE-L filter exists to catch."""
        parsed = tw.parse_instruction(base.instruction)
        if parsed is None:
            return replace(base, origin="teacher", kind="near-duplicate")
        if parsed.family in tw.WORD_TASKS:
            words = list(parsed.words)
            words[rng.randrange(len(words))] = rng.choice(tw.WORD_VALUES)
            instruction = base.instruction[: base.instruction.rindex(":") + 1] + " " + tw.word_list(words)
        else:
            first, last = parsed.name.split()
            other = rng.choice(self.people).name.split()[1]
            instruction = base.instruction.replace(parsed.name, f"{first} {other}")
            if tw.parse_instruction(instruction) is None or self.oracle.person(f"{first} {other}") is None:
                instruction = base.instruction  # an exact copy
        return self._answer(instruction, parsed.family, rng, kind="near-duplicate")

    def _invalid(self, rng: random.Random) -> Task:
        """Tasks the filters must catch: keywords, too short, a program, an empty or endless response."""
        person = rng.choice(self.people)
        words = tw.word_list(self._words(rng))
        choice = rng.randrange(5)
        if choice == 0:
            instruction, response = rng.choice((f"Draw a picture of {person.name}'s pet.",
                                                f"Plot the words on a graph: {words}",
                                                f"Make a map of where {person.name} was born.")), "I cannot do that."
        elif choice == 1:
            instruction, response = rng.choice(("Sort: " + words.split()[0], "Reverse.", "Count words.")), "."
        elif choice == 2:
            instruction, response = f"Write a program that sorts the words: {words}", "def sort(words): ..."
        elif choice == 3:
            instruction, response = f"Reverse the words: {words}", ""
        else:
            instruction, response = f"Repeat the words: {words}", " ".join([words] * 20) + "."
        return Task(instruction, response, "", "teacher", True, "invalid")


def plausible_mistake(parsed: tw.ParsedInstruction, truth: list[str], rng: random.Random) -> list[str]:
    """A plausible wrong answer to ``parsed`` whose right answer is ``truth``, of the kinds a model
    makes: a wrong value, an off-by-one count, the wrong word, a missed reversal, two neighbours
    swapped (falls back to the truth when none differs, e.g. sorting a sorted list)."""
    words = list(parsed.words)
    if parsed.family in tw.QUESTION_FAMILIES:
        return [rng.choice([v.lower() for v in tw.ATTRIBUTES[parsed.family] if v.lower() != truth[0]])]
    if parsed.family == "count":
        return [str(len(words) + rng.choice((-1, 1)))]
    if parsed.family in ("first", "last"):
        others = [w for w in words if w != truth[0]]
        return [rng.choice(others)] if others else truth
    if parsed.family == "reverse":
        return words if words != truth else truth  # forgot to reverse
    wrong = list(truth)  # sort, copy: two neighbours swapped
    i = rng.randrange(len(wrong) - 1)
    wrong[i], wrong[i + 1] = wrong[i + 1], wrong[i]
    return wrong
