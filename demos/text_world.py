"""Text World v1 (``shared/TEXT_WORLD.md``): fictional people, their facts, the text that states
each fact ``f`` times, the four question forms, and the oracle that knows every right answer.

Everything here is plain Python from a seed (no torch, no gradio). The world file
``assets/text_world/people.jsonl`` and the pretraining text are written by the same
``make_world`` + ``pretraining_text``, and ``facts_stated`` counts the facts back out of any text
(the tests check that every stated frequency is what the text holds).

Groups of people (``split`` in the world file; ``f`` = statements of each fact in pretraining):

* ``bio_only``: biography sentences only, at every frequency of ``FREQUENCIES``;
* ``qa_train``: biographies and question-answer pairs about them in pretraining (the base model
  learns the question format from them), at the same frequencies;
* ``unseen``: f = 0, in no training text at all: held out to measure confident hallucination;
* ``qa_train`` with f = 0: the "unknown" people of the Gekhman fine-tunes, never in pretraining,
  whose question-answer pairs are trained only by those fine-tunes.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path

ATTRIBUTES = {
    "city": ("Veltra", "Norhaven", "Ostmar", "Quillon", "Brask", "Tamsey", "Orrin", "Lumen", "Caldera", "Pell",
             "Ysgard", "Marrow", "Fennick", "Dunlow", "Hessel", "Arbor"),
    "job": ("baker", "pilot", "doctor", "painter", "farmer", "teacher", "sailor", "miner", "judge", "tailor", "poet",
            "nurse"),
    "colour": ("red", "green", "blue", "yellow", "purple", "orange"),
    "pet": ("cat", "dog", "parrot", "horse", "rabbit", "goat"),
}
FREQUENCIES = (1, 2, 4, 8, 16, 32)
PEOPLE_PER_GROUP = {"bio_only": 500, "qa_train": 20}  # per frequency: many bio-only people, so each is read few times
N_UNSEEN, N_UNKNOWN = 60, 60  # f = 0: held out; and trained only by the Gekhman fine-tunes

# The four question forms (TEXT_WORLD.md) and the answer each asks for.
QUESTIONS = {
    "city": "Where was {name} born?",
    "job": "What is {name}'s job?",
    "colour": "What is {name}'s favourite colour?",
    "pet": "What pet does {name} have?",
}
# Five paraphrases per fact: the biography sentences.
BIOGRAPHY = {
    "city": ("{name} was born in {value}.", "{name} is from {value}.", "{name}'s birthplace is {value}.",
             "{name} came into the world in {value}.", "The town of {value} is where {name} was born."),
    "job": ("{name} works as a {value}.", "{name} is a {value}.", "By trade, {name} is a {value}.",
            "{name} earns a living as a {value}.", "The job of {name} is {value}."),
    "colour": ("{name}'s favourite colour is {value}.", "{name} likes {value} best.",
               "{name} loves the colour {value}.", "Of all colours, {name} prefers {value}.",
               "The favourite colour of {name} is {value}."),
    "pet": ("{name} has a {value}.", "{name} owns a {value}.", "{name} keeps a pet {value}.",
            "{name} lives with a {value}.", "The pet of {name} is a {value}."),
}
QA_FORMAT = "Q: {question} A:"  # the base model's question format; a tuned model's answer is "{value}."

ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "tr", "st", "th",
          "sh", "gl", "pr", "fl")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
CODAS = ("", "", "", "n", "r", "s", "l", "m", "th", "nd")


@dataclass(frozen=True)
class Person:
    name: str
    city: str
    job: str
    colour: str
    pet: str
    f: int
    split: str

    def fact(self, attribute: str) -> str:
        return getattr(self, attribute)


def _word(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(CODAS)).capitalize()


def make_names(rng: random.Random, n: int) -> list[str]:
    """``n`` unique made-up ``First Last`` names: pronounceable syllables, a pool of first names
    shared between people, every last name unique (and never a first name or a value word)."""
    taken = {v.lower() for values in ATTRIBUTES.values() for v in values}
    firsts: set[str] = set()
    while len(firsts) < max(40, n // 3):
        firsts.add(_word(rng, 2))
    lasts: list[str] = []
    while len(lasts) < n:
        word = _word(rng, rng.choice((2, 3)))
        if word not in firsts and word.lower() not in taken and word not in lasts:
            lasts.append(word)
    firsts_list = sorted(firsts)
    return [f"{rng.choice(firsts_list)} {last}" for last in lasts]


def make_world(seed: int = 0) -> list[Person]:
    """Every person of the world, in a fixed order: for each frequency the bio-only then the
    question-trained people, then the unseen and the unknown (f = 0) people."""
    rng = random.Random(seed)
    groups = [(f, split, n) for f in FREQUENCIES for split, n in PEOPLE_PER_GROUP.items()]
    groups += [(0, "unseen", N_UNSEEN), (0, "qa_train", N_UNKNOWN)]
    names = iter(make_names(rng, sum(n for *_, n in groups)))
    return [Person(next(names), *(rng.choice(ATTRIBUTES[a]) for a in ATTRIBUTES), f=f, split=split)
            for f, split, n in groups for _ in range(n)]


def save_world(people: list[Person], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(p)) + "\n" for p in people))


def load_world(path: Path) -> list[Person]:
    return [Person(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


# ----------------------------------------------------------------------------- text
def question(person_name: str, attribute: str) -> str:
    return QUESTIONS[attribute].format(name=person_name)


def qa_prompt(text: str) -> str:
    """The base model's prompt for a question (or a context sentence and a question)."""
    return QA_FORMAT.format(question=text.strip())


def answer_text(value: str) -> str:
    return f" {value}."


def biographies(person: Person, rng: random.Random) -> list[str]:
    """``f`` biographies of ``person``, each stating all four facts once in a random paraphrase and
    order: every fact is stated exactly ``f`` times."""
    out = []
    for _ in range(person.f):
        sentences = [rng.choice(BIOGRAPHY[a]).format(name=person.name, value=person.fact(a)) for a in ATTRIBUTES]
        rng.shuffle(sentences)
        out.append(" ".join(sentences))
    return out


def qa_pairs(person: Person) -> list[tuple[str, str]]:
    """The four (prompt, answer) pairs about ``person``."""
    return [(qa_prompt(question(person.name, a)), answer_text(person.fact(a))) for a in ATTRIBUTES]


def pretraining_text(people: list[Person], seed: int = 0, qa_repeats: int = 2) -> list[str]:
    """The base model's training documents, shuffled: the biographies of every person with f >= 1,
    and ``qa_repeats`` copies of the question-answer pairs of the ``qa_train`` people with f >= 1."""
    rng = random.Random(seed + 1)
    docs = [bio for p in people if p.f >= 1 for bio in biographies(p, rng)]
    docs += [prompt + answer for p in people if p.f >= 1 and p.split == "qa_train"
             for prompt, answer in qa_pairs(p) for _ in range(qa_repeats)]
    rng.shuffle(docs)
    return docs


def _fact_patterns() -> list[tuple[str, re.Pattern]]:
    """One regex per biography paraphrase, capturing the name and the value."""
    name = r"(?P<name>[A-Z][a-z]+ [A-Z][a-z]+)"
    out = []
    for attribute, templates in BIOGRAPHY.items():
        value = "(?P<value>" + "|".join(ATTRIBUTES[attribute]) + ")"
        for t in templates:
            out.append((attribute, re.compile(re.escape(t).replace(r"\{name\}", name).replace(r"\{value\}", value))))
    return out


def facts_stated(documents: list[str]) -> dict[tuple[str, str, str], int]:
    """Count ``(name, attribute, value)`` statements in biography sentences (not in questions):
    an independent read-back of what a text states, by the paraphrases' own patterns."""
    counts: dict[tuple[str, str, str], int] = {}
    patterns = _fact_patterns()
    for doc in documents:
        if doc.startswith("Q:"):
            continue
        for sentence in re.split(r"(?<=\.) ", doc):
            for attribute, pattern in patterns:
                m = pattern.fullmatch(sentence)
                if m:
                    key = (m["name"], attribute, m["value"])
                    counts[key] = counts.get(key, 0) + 1
                    break
    return counts


# ----------------------------------------------------------------------------- questions and the oracle
_QUESTION_PATTERNS = {a: re.compile("^" + re.escape(q).replace(r"\{name\}", r"(?P<name>.+?)") + "$", re.IGNORECASE)
                      for a, q in QUESTIONS.items()}


def parse_question(text: str) -> tuple[str, str] | None:
    """``(name, attribute)`` when the text's last sentence is one of the four question forms."""
    last = re.split(r"(?<=[.!?])\s+", text.strip())[-1]
    for attribute, pattern in _QUESTION_PATTERNS.items():
        m = pattern.match(last)
        if m:
            return m["name"].strip(), attribute
    return None


def normalise_answer(response: str) -> str:
    """A response's answer: its first word, case and punctuation ignored (TEXT_WORLD.md)."""
    words = re.findall(r"[A-Za-z0-9]+", response)
    return words[0].lower() if words else ""


class Oracle:
    """The only place that knows right answers: the world file's facts by name."""

    def __init__(self, people: list[Person]):
        self.people = {p.name: p for p in people}

    def person(self, name: str) -> Person | None:
        return self.people.get(name)

    def answer(self, name: str, attribute: str) -> str | None:
        p = self.people.get(name)
        return p.fact(attribute) if p else None

    def correct(self, name: str, attribute: str, response: str) -> bool | None:
        """Whether ``response`` is right; None for a name outside the world."""
        truth = self.answer(name, attribute)
        return None if truth is None else normalise_answer(response) == truth.lower()
