"""Text World v1 (``docs/text-world.md``): fictional people, their facts, the text that states
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

import functools
import json
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from playground import settings, validate

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

# The four question forms (docs/text-world.md) and the answer each asks for.
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
    """A response's answer: its first word, case and punctuation ignored (docs/text-world.md)."""
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


WORLD_FILE = settings.ASSETS_DIR / "text_world" / "people.jsonl"
WORLD_MISSING = ("Text World's world file (assets/text_world/people.jsonl) is not on this machine: "
                 "write it with `python -m demos.hallucination.train`")


@functools.lru_cache(maxsize=1)
def oracle() -> Oracle:
    """The one oracle of every language tab: the world file's facts (read once; read-only), or a
    ``ValueError`` saying how to get the file when it is missing."""
    if not WORLD_FILE.exists():
        raise ValueError(WORLD_MISSING)
    return Oracle(load_world(WORLD_FILE))


# ----------------------------------------------------------------------------- the base model's reading
@dataclass(frozen=True)
class BaseModelConfig:
    """How the base model was trained on Text World (``python -m demos.hallucination.train``), and
    the Hallucination tab's Gekhman fine-tunes from it. Whoever reads the base model's pretraining
    documents again (the Instruction tuning tab's replay) reads them with ``seed`` and ``qa_repeats``:
    ``pretraining_text(people, seed, qa_repeats)``."""

    seed: int = 0
    pretrain_steps: int = 1600
    finetune_examples: int = 240
    finetune_epochs: int = 12
    finetune_batch: int = 16
    finetune_lr: float = 5e-4
    known_min_f: int = 4
    qa_repeats: int = 2  # copies of each question-answer pair of the qa_train people in pretraining


# ----------------------------------------------------------------------------- instructions (Alpaca's format)
ALPACA_PROMPT = ("Below is an instruction that describes a task. Write a response that appropriately completes "
                 "the request.\n\n### Instruction:\n{instruction}\n\n### Response:")
WORD_VALUES = tuple(v.lower() for values in ATTRIBUTES.values() for v in values)  # the word tasks' words
WORD_TASKS = {  # family -> (docs/text-world.md form, the program's answer as a list of words)
    "reverse": ("Reverse the words: {words}", lambda ws: ws[::-1]),
    "sort": ("Sort the words: {words}", lambda ws: sorted(ws)),
    "count": ("How many words are in: {words}", lambda ws: [str(len(ws))]),
    "first": ("What is the first word of: {words}", lambda ws: ws[:1]),
    "last": ("What is the last word of: {words}", lambda ws: ws[-1:]),
    "copy": ("Repeat the words: {words}", lambda ws: list(ws)),
}
# Every phrasing the parser knows for each family (the first is the canonical one). The
# teacher writes only some of them (``demos.instruction_tuning.self_instruct``); the rest are
# held out to measure phrasings no training example used.
PHRASINGS = {
    "reverse": ("Reverse the words: {words}", "Write these words in reverse order: {words}",
                "Reverse the order of: {words}", "Give the words backwards: {words}",
                "List these words from last to first: {words}", "Say these words in reverse: {words}"),
    "sort": ("Sort the words: {words}", "Put these words in alphabetical order: {words}",
             "Sort alphabetically: {words}", "Arrange the words from a to z: {words}",
             "Order these words alphabetically: {words}", "Alphabetize the words: {words}"),
    "count": ("How many words are in: {words}", "Count the words: {words}",
              "How many words does this list have: {words}", "Give the number of words in: {words}",
              "Tell me how many words are in: {words}", "What is the number of words in: {words}"),
    "first": ("What is the first word of: {words}", "Give the first word of: {words}",
              "Which word comes first in: {words}", "Name the first word in: {words}",
              "Say the first word of: {words}", "Tell me the first word of: {words}"),
    "last": ("What is the last word of: {words}", "Give the last word of: {words}",
             "Which word comes last in: {words}", "Name the last word in: {words}",
             "Say the last word of: {words}", "Tell me the last word of: {words}"),
    "copy": ("Repeat the words: {words}", "Copy these words: {words}", "Write the words again: {words}",
             "Say these words back: {words}", "Echo the words: {words}", "Repeat after me: {words}"),
    "city": (QUESTIONS["city"], "In which city was {name} born?", "What is the birthplace of {name}?",
             "Which town is {name} from?", "Name the city where {name} was born.", "Where is {name} from?"),
    "job": (QUESTIONS["job"], "What does {name} do for a living?", "What is the job of {name}?",
            "What work does {name} do?", "Name the job of {name}.", "What job does {name} have?"),
    "colour": (QUESTIONS["colour"], "Which colour does {name} like best?", "What is the favourite colour of {name}?",
               "What colour does {name} prefer?", "Name the favourite colour of {name}.",
               "What colour does {name} love?"),
    "pet": (QUESTIONS["pet"], "Which pet does {name} keep?", "What is the pet of {name}?",
            "What animal does {name} own?", "Name the pet of {name}.", "What animal does {name} live with?"),
}
# Courtesies an instruction may open with (any family) or, for a question, end with; the parser
# sets them aside. They are how a writer of instructions varies them beyond the phrasings.
PREFIXES = ("Please", "Now", "Quick question:", "Tell me:", "Here is a task:", "Next task:", "Help me out:",
            "Try this one:")
QUESTION_SUFFIXES = ("Be brief.", "Thank you.", "Keep it short.", "Answer in one word.", "Thanks!")
FAMILIES = tuple(PHRASINGS)
WORD_FAMILIES = tuple(WORD_TASKS)
QUESTION_FAMILIES = tuple(ATTRIBUTES)


MAX_INSTRUCTION_CHARS = 300


def check_instruction(text) -> str:
    """An instruction typed by a user (Instruction tuning's and RLHF vs DPO's), stripped; a message otherwise."""
    return validate.check_text("instruction", text, MAX_INSTRUCTION_CHARS, "Sort the words: red cat pilot")


def alpaca_prompt(instruction: str) -> str:
    """Alpaca's prompt (no input field), byte for byte ``PROMPT_DICT["prompt_no_input"]`` of Stanford
    Alpaca's ``train.py``; the response follows ``### Response:`` directly."""
    return ALPACA_PROMPT.format(instruction=instruction)


def word_list(words) -> str:
    return " ".join(words)


def _phrasing_pattern(phrasing: str) -> re.Pattern:
    body = re.escape(phrasing).replace(r"\{words\}", r"(?P<words>[a-z]+(?: [a-z]+)*)").replace(
        r"\{name\}", r"(?P<name>[A-Z][a-z]+ [A-Z][a-z]+)")
    return re.compile("^" + body.replace(r"\ ", r"\s+") + r"\s*$", re.IGNORECASE)


_PHRASING_PATTERNS = [(family, _phrasing_pattern(p)) for family, ps in PHRASINGS.items() for p in ps]


@dataclass(frozen=True)
class ParsedInstruction:
    """What an instruction asks: its family and its argument (a word list or a person's name)."""

    family: str
    words: tuple[str, ...] = ()
    name: str = ""


def parse_instruction(instruction: str) -> ParsedInstruction | None:
    """The family and argument of an instruction in any known phrasing; None when it has none.
    Word tasks take 1 to 8 lower-case words; questions a ``First Last`` name."""
    text = " ".join(instruction.split())
    for prefix in PREFIXES:
        if text.lower().startswith(prefix.lower() + " "):
            text = text[len(prefix) + 1:]
            text = text[0].upper() + text[1:]
            break
    for suffix in QUESTION_SUFFIXES:
        if text.lower().endswith(" " + suffix.lower()):
            text = text[: -len(suffix) - 1]
            break
    for family, pattern in _PHRASING_PATTERNS:
        m = pattern.match(text)
        if not m:
            continue
        if family in WORD_TASKS:
            words = tuple(m["words"].lower().split())
            if 1 <= len(words) <= 8:
                return ParsedInstruction(family, words=words)
        else:
            return ParsedInstruction(family, name=m["name"])
    return None


def program_answer(parsed: ParsedInstruction, oracle: "Oracle") -> list[str] | None:
    """The right answer's words; None for a person outside the world."""
    if parsed.family in WORD_TASKS:
        return WORD_TASKS[parsed.family][1](list(parsed.words))
    value = oracle.answer(parsed.name, parsed.family)
    return None if value is None else [value.lower()]


def response_text(answer: list[str], family: str = "") -> str:
    """A concise response: the answer's words and a full stop (``Veltra.``, ``baker.``, ``cat dog.``);
    a question's value is written as the world file writes it (cities capitalised)."""
    if family in ATTRIBUTES:
        answer = [next((v for v in ATTRIBUTES[family] if v.lower() == answer[0].lower()), answer[0])]
    return " ".join(answer) + "."


def answer_words(parsed: ParsedInstruction, response: str) -> list[str]:
    """A response's answer (docs/text-world.md): for a question its first word; for a word task its
    words before the first full stop; case and other punctuation ignored."""
    if parsed.family in WORD_TASKS:
        return re.findall(r"[a-z0-9]+", response.split(".", 1)[0].lower())
    first = normalise_answer(response)
    return [first] if first else []


def is_correct(parsed: ParsedInstruction, response: str, oracle: "Oracle") -> bool | None:
    """Whether ``response`` is right by the Text World specification's rules; None when there is no right answer."""
    truth = program_answer(parsed, oracle)
    return None if truth is None else answer_words(parsed, response) == truth


def extra_words(parsed: ParsedInstruction, response: str) -> int:
    """``extra(y)`` of docs/text-world.md: the words after the answer's full stop, or, with no full
    stop, the words beyond the answer's own."""
    words = re.findall(r"[A-Za-z0-9]+", response)
    if "." in response:
        return len(re.findall(r"[A-Za-z0-9]+", response.split(".", 1)[1]))
    n_answer = len(WORD_TASKS[parsed.family][1](list(parsed.words))) if parsed.family in WORD_TASKS else 1
    return max(0, len(words) - n_answer)


def true_reward(parsed: ParsedInstruction, response: str, oracle: "Oracle") -> float:
    """``r*(x, y) = correct(x, y) - 0.1 extra(y)`` (docs/text-world.md)."""
    return float(bool(is_correct(parsed, response, oracle))) - 0.1 * extra_words(parsed, response)
