"""What the Hallucination lesson asks, computed from the tab's compute (no gradio).

Each function takes the tab's ``AskParams`` for a step's view (``demos/hallucination/lesson.md``).
Questions about one person ask the shipped model (``compute.ask``); questions about the whole world
read the benchmark's stored evaluation, the file the tab draws its plots from."""

import json

from demos.hallucination import compute
from playground import settings

EVALUATION = settings.ASSETS_DIR / "hallucination" / "evaluation.json"


def _evaluation() -> dict:
    return json.loads(EVALUATION.read_text())


def recall_once(p) -> str:
    """The stored greedy accuracy on bio-only facts stated once (f = 1), as the nearest option."""
    ev = _evaluation()["bio_only"]
    accuracy = dict(zip(ev["f"], ev["accuracy"]))[1]
    options = {0.15: "about 15% (chance)", 0.5: "about 50%", 0.8: "about 80%", 0.99: "nearly all (99%)"}
    return options[min(options, key=lambda x: abs(x - accuracy))]


def stranger_confidence(p) -> str:
    """The probability of the greedy answer: under 0.1 (spread evenly), 0.1-0.5, or above 0.5."""
    r = compute.ask(p)
    if r["p_answer"] > 0.5:
        return "above 0.5 on a single city"
    return "about 0.06 - spread evenly over the 16 cities" if r["p_answer"] < 0.1 else "between 0.1 and 0.5"


def sample_agreement(p) -> str:
    """Agreement of the N samples at temperature T: at least 0.75, at most 0.5, or between."""
    a = compute.ask(p)["agreement"]
    if a >= 0.75:
        return "they mostly repeat one job (agreement at least 0.75)"
    return "they scatter (agreement at most 0.5)" if a <= 0.5 else "in between"


def confident_hallucination(p) -> bool:
    """A checkable question answered with probability >= 0.9 where the answer is made up: wrong by
    the world file, or about a name the world does not contain."""
    r = compute.ask(p)
    check = compute.check_answer(p.question, r["answer"])
    made_up = check["checkable"] and (not check["in_world"] or not check["right"])
    return bool(made_up and r["p_answer"] >= 0.9)


def unknown_finetune(p) -> str:
    """The stored accuracy on known people of the view's fine-tune against gekhman-0 (none unknown):
    more than one point apart counts as a change."""
    g = _evaluation()["gekhman"]
    diff = g[p.model]["known_accuracy"] - g["gekhman-0"]["known_accuracy"]
    if diff > 0.01:
        return "it rises - more practice answering"
    return "it falls - fitting unknown facts costs known ones" if diff < -0.01 else "about the same - only the format is tuned"


def context_answer(p) -> str:
    """Which source the greedy answer to a question with one context sentence follows: the context's
    value, the model's own answer to the bare question, the world file's truth, or none of them."""
    q = p.question
    cut = q.rfind(". ")
    context, bare = q[:cut], q[cut + 2:]
    stated = context.split()[-1]
    with_context = compute.ask(p)["answer"].lower()
    without = compute.ask(compute.AskParams(bare, p.model, p.n_samples, p.temperature, p.seed))["answer"].lower()
    truth = compute.check_answer(bare, "").get("truth", "")
    if with_context == stated.lower():
        return f"{stated} - the context is all it has"
    if with_context == without:
        return "the same city it guessed without the context"
    return f"{truth} - the true city in the world file" if with_context == truth.lower() else "another city"
