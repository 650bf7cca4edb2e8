"""Text World: the world file, the training text and its stated frequencies, questions, the tokenizer."""

import re

import pytest

from demos.common import text_world as tw
from playground import settings

WORLD = settings.ASSETS_DIR / "text_world" / "people.jsonl"


@pytest.fixture(scope="module")
def world():
    return tw.load_world(WORLD)


def test_the_world_file_is_what_the_generator_writes(world):
    assert world == tw.make_world(0)


def test_people_follow_text_world(world):
    names = [p.name for p in world]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", n) for n in names)
    for p in world:
        for attribute, values in tw.ATTRIBUTES.items():
            assert p.fact(attribute) in values
        assert p.split in ("unseen", "bio_only", "qa_train")
        assert (p.split == "unseen") <= (p.f == 0)
    for f in (0, *tw.FREQUENCIES):
        assert sum(p.f == f for p in world) >= 30, f
    assert max(tw.FREQUENCIES) >= 32


def test_every_stated_frequency_is_what_the_training_text_holds(world):
    docs = tw.pretraining_text(world)
    counts = tw.facts_stated(docs)
    for p in world:
        for attribute in tw.ATTRIBUTES:
            assert counts.get((p.name, attribute, p.fact(attribute)), 0) == p.f, (p.name, attribute)
    assert sum(counts.values()) == 4 * sum(p.f for p in world)  # nothing else is stated
    text = " ".join(docs)
    for p in world:
        if p.f == 0:
            assert p.name not in text  # never seen: in no training text at all
        if p.split == "bio_only":
            assert f"Q: {tw.question(p.name, 'city')}" not in text


def test_the_counter_is_independent_of_the_generator():
    docs = ["Ab Cd was born in Pell. The job of Ab Cd is baker.", "Ab Cd likes red best.", "Q: Where was Ab Cd born? A: Pell."]
    assert tw.facts_stated(docs) == {("Ab Cd", "city", "Pell"): 1, ("Ab Cd", "job", "baker"): 1,
                                     ("Ab Cd", "colour", "red"): 1}


@pytest.mark.parametrize("text,parsed", [
    ("Where was Kalo Renmis born?", ("Kalo Renmis", "city")),
    ("what is Kalo Renmis's job?", ("Kalo Renmis", "job")),
    ("What is Kalo Renmis's favourite colour?", ("Kalo Renmis", "colour")),
    ("What pet does Kalo Renmis have?", ("Kalo Renmis", "pet")),
    ("Kalo Renmis was born in Pell. Where was Kalo Renmis born?", ("Kalo Renmis", "city")),
    ("Tell me about Kalo Renmis.", None),
])
def test_the_four_question_forms_are_recognised(text, parsed):
    assert tw.parse_question(text) == parsed


@pytest.mark.parametrize("response,answer", [("Veltra.", "veltra"), (" veltra is where", "veltra"), ("", ""),
                                             ("PELL!", "pell")])
def test_an_answer_is_the_first_word_case_and_punctuation_ignored(response, answer):
    assert tw.normalise_answer(response) == answer


def test_the_tokenizer_round_trips_every_name_and_loads_with_auto_tokenizer(world):
    from transformers import AutoTokenizer

    from demos.common.language_model import detokenize

    tok = AutoTokenizer.from_pretrained(str(settings.ASSETS_DIR / "text_world" / "base"))
    for p in world:
        ids = tok.encode(p.name, add_special_tokens=False)
        assert tok.unk_token_id not in ids and len(ids) == 2
        assert detokenize(tok.decode(ids)) == p.name
    q = tw.question(world[0].name, "job")
    assert detokenize(tok.decode(tok.encode(q, add_special_tokens=False))) == q
