"""Agreement, semantic entropy, AUROC and calibration; input checks; ``ask`` on the base model."""

import math
import threading

import numpy as np
import pytest

from demos.hallucination import compute


def test_semantic_entropy_of_identical_samples_is_zero_and_of_n_distinct_is_log_n():
    assert compute.semantic_entropy(["Pell.", "pell", " PELL!"]) == 0
    assert compute.agreement(["Pell.", "pell", " PELL!"]) == 1
    distinct = ["Pell.", "Veltra.", "Orrin.", "Brask.", "Lumen."]
    assert compute.semantic_entropy(distinct) == pytest.approx(math.log(5))
    assert compute.agreement(distinct) == pytest.approx(0.2)
    assert compute.semantic_entropy(["a", "a", "b", "b"]) == pytest.approx(math.log(2))


def test_auroc_equals_the_pairwise_probability():
    rng = np.random.default_rng(0)
    score = rng.integers(0, 5, size=60).astype(float)  # many ties
    wrong = rng.random(60) < 0.4
    pairs = [(s_w > s_r) + 0.5 * (s_w == s_r) for s_w in score[wrong] for s_r in score[~wrong]]
    assert compute.auroc(score, wrong) == pytest.approx(np.mean(pairs))
    roc = compute.roc_curve(score, wrong)
    assert roc["fpr"][0] == roc["tpr"][0] == 0 and roc["fpr"][-1] == roc["tpr"][-1] == 1
    # the area under the step curve is the AUROC too
    area = sum((roc["fpr"][i + 1] - roc["fpr"][i]) * (roc["tpr"][i + 1] + roc["tpr"][i]) / 2
               for i in range(len(roc["fpr"]) - 1))
    assert area == pytest.approx(compute.auroc(score, wrong))


def test_reliability_bins_and_expected_calibration_error():
    r = compute.reliability([0.95, 0.95, 0.55, 0.55], [True, False, True, True])
    assert [b["n"] for b in r["bins"]] == [2, 2]
    assert r["ece"] == pytest.approx(0.5 * abs(1 - 0.55) + 0.5 * abs(0.5 - 0.95))


@pytest.mark.parametrize("params,message", [
    (dict(question=""), "question must be a non-empty text"),
    (dict(question="x" * 301), "at most 300"),
    (dict(temperature=0), "temperature must be in [0.05, 5.0]"),
    (dict(temperature=float("nan")), "temperature must be a finite number"),
    (dict(n_samples=65), "n_samples must be in 1..64"),
    (dict(n_samples=-1), "n_samples must be in 1..64"),
    (dict(seed=1e300), "seed must be in"),
    (dict(model="gpt-5"), "model must be one of base, gekhman-0"),
])
def test_bad_questions_and_settings_name_the_field(params, message):
    with pytest.raises(ValueError) as err:
        compute.check_ask(compute.AskParams(**params))
    assert message in str(err.value)


def test_ask_is_reproducible_and_has_the_contracts_keys():
    p = compute.AskParams(compute.default_question(), "base", 16, 1.0, 3)
    first, second = compute.ask(p), compute.ask(p)
    assert first == second
    assert set(first) == {"answer", "p_answer", "candidates", "samples", "agreement", "semantic_entropy"}
    assert len(first["samples"]) == 16 and set(first["candidates"]) == set(compute.tw.ATTRIBUTES["city"])
    assert 0 < sum(first["candidates"].values()) <= 1 + 1e-6
    assert first["p_answer"] == pytest.approx(first["candidates"][first["answer"]], rel=1e-4)
    other = compute.ask(compute.AskParams(p.question, "base", 16, 1.0, 4))
    assert other["answer"] == first["answer"]  # greedy does not depend on the seed


def test_a_frequent_person_is_known_and_an_unseen_one_is_made_up():
    right = compute.ask(compute.AskParams(compute.default_question(), n_samples=8))
    check = compute.check_answer(compute.default_question(), right["answer"])
    assert check["right"] and check["f"] == 32
    unseen = next(p for p in compute.oracle().people.values() if p.split == "unseen")
    q = compute.tw.question(unseen.name, "pet")
    made_up = compute.ask(compute.AskParams(q, n_samples=8))
    assert made_up["answer"].lower() in compute.tw.ATTRIBUTES["pet"]  # fluent: a valid value, for someone never seen
    assert compute.check_answer(q, made_up["answer"])["f"] == 0
    outside = compute.ask(compute.AskParams("Tell me about Zorbat Quenlip.", n_samples=2))
    assert outside["candidates"] == {} and not compute.check_answer("Tell me about Zorbat Quenlip.", "x")["checkable"]


def test_two_concurrent_requests_get_what_they_would_get_alone():
    questions = [compute.AskParams(compute.default_question(), "base", 32, 1.5, s) for s in (1, 2)]
    alone = [compute.ask(p) for p in questions]
    together: dict = {}

    def run(i):
        together[i] = compute.ask(questions[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert [together[0], together[1]] == alone


def test_the_gekhman_finding_follows_the_numbers():
    from demos.hallucination.ui import gekhman_finding

    def g(u0, u50, k0=0.99, k75=0.94):
        return {"gekhman-0": {"known_accuracy": k0, "unseen_confident": u0},
                "gekhman-50": {"known_accuracy": 0.98, "unseen_confident": u50},
                "gekhman-75": {"known_accuracy": k75, "unseen_confident": 0.9}}

    rises = gekhman_finding(g(0.39, 0.90))
    assert "raises confident answers" in rises and "39% with none, 90% with 50%" in rises and "costs knowledge" in rises
    flat = gekhman_finding(g(0.94, 0.88, k75=0.995))
    assert "do not rise" in flat and "does not cost knowledge" in flat
    assert gekhman_finding({}) == ""
