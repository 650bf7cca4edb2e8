"""What the Instruction tuning lesson asks, computed from the tab's compute (no gradio).

Each function takes the tab's ``Controls`` for a step's view (``demos/instruction_tuning/lesson.md``).
Questions about one instruction ask the shipped models (``compute.instruct``, greedy); questions about
held-out accuracy read the benchmark's stored evaluation (``compute.evaluation``), which the tab plots."""

from demos.common import text_world as tw
from demos.instruction_tuning import compute

# The four word tasks of the tab's Examples, in the forms docs/text-world.md gives.
FOUR_WORD_TASKS = ("Reverse the words: cat veltra red", "Sort the words: pilot goat blue ostmar",
                   "How many words are in: green dog horse", "What is the first word of: sailor caldera poet")
QUESTION_FAMILIES = set(tw.ATTRIBUTES)


def _right(instruction: str, model: str) -> bool:
    response = compute.instruct(compute.InstructParams(instruction, model))["response"]
    return bool(compute.grade(instruction, response).get("right"))


def _rows() -> dict:
    return {r["model"]: r for r in compute.evaluation()["models"]}


def base_reply(c) -> str:
    """The base model's greedy response: the program's answer, a city name (the start of an answer to
    a birthplace question), or something else."""
    response = compute.instruct(compute.InstructParams(c.instruction, "base"))["response"]
    if compute.grade(c.instruction, response).get("right"):
        return "red veltra cat. - it follows the instruction"
    first = tw.normalise_answer(response)
    if first in {v.lower() for v in tw.ATTRIBUTES["city"]}:
        return "a city name - as if asked where someone was born"
    return "something else"


def first_to_answer(c) -> str:
    """The first model, in order of tuning examples, whose greedy response is right."""
    for model in ("base", "n500", "n2000", "n8000"):
        if _right(c.instruction, model):
            return model
    return "none of them"


def fewest_for_three_of_four(c) -> str:
    """The smallest clean, filtered fine-tune that answers at least 3 of the four example word tasks."""
    for model, shown in (("n500", "500"), ("n2000", "2,000"), ("n8000", "8,000")):
        if sum(_right(i, model) for i in FOUR_WORD_TASKS) >= 3:
            return shown
    return "none of them"


def n2000_right_word_task(c) -> bool:
    """The instruction is a word task (not one of the four questions) that n2000 answers right."""
    parsed = tw.parse_instruction(c.instruction)
    return bool(parsed and parsed.family not in QUESTION_FAMILIES and _right(c.instruction, "n2000"))


def filter_off(c) -> str:
    """Stored held-out exact match of the unfiltered 8,000 against the filtered 8,000 (2 points = same)."""
    rows = _rows()
    diff = rows["n8000-unfiltered"]["exact_match"]["all"] - rows["n8000"]["exact_match"]["all"]
    if diff > 0.02:
        return "higher - more examples of the common forms"
    return "lower" if diff < -0.02 else "about the same"


def noisy_cost(c) -> str:
    """How much lower the stored word-task exact match of n8000-noisy is than n8000's."""
    rows = _rows()
    drop = rows["n8000"]["exact_match"]["group:words"] - rows["n8000-noisy"]["exact_match"]["group:words"]
    if drop <= 0.05:
        return "about the same - 80% right examples outvote 20% wrong"
    return "lower by more than 0.20" if drop > 0.20 else "lower by 0.05 to 0.20"


def knowledge_share(c) -> str:
    """The stored share of the base model's known facts that n8000 answers as instructions, nearest option."""
    share = _rows()["n8000"]["share_of_base_knowledge"]
    options = {1.0: "all of it", 0.75: "about three quarters", 0.5: "about half"}
    return options[min(options, key=lambda x: abs(x - share))]
