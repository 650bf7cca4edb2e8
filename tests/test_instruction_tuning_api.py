"""The ``instruct`` and ``self_instruct`` endpoints through gradio_client and raw HTTP."""

import json

import pytest
from gradio_client.exceptions import AppError

from demos.common import text_world as tw
from demos.instruction_tuning import compute
from tests.conftest import call_raw


def test_instruct_through_the_client_is_what_compute_answers(client):
    result = client.predict("Sort the words: pilot goat blue", "tuned", 0, api_name="/instruct")
    assert set(result) == {"response", "prompt"}
    assert result == json.loads(json.dumps(compute.instruct(compute.InstructParams("Sort the words: pilot goat blue",
                                                                                   "tuned", 0))))
    assert result["prompt"] == tw.alpaca_prompt("Sort the words: pilot goat blue")


@pytest.mark.parametrize("model", compute.MODEL_NAMES)
def test_every_model_answers(client, model):
    result = client.predict("What is the first word of: red cat", model, 0, api_name="/instruct")
    assert isinstance(result["response"], str)


def test_self_instruct_through_the_client(client):
    result = client.predict(0.7, 40, 3, api_name="/self_instruct")
    assert result == json.loads(json.dumps(compute.self_instruct(compute.SelfInstructParams(0.7, 40, 3))))
    assert set(result) == {"kept", "rejected"} and result["kept"]


@pytest.mark.parametrize("args,message", [
    (("", "tuned", 0), "instruction must be a non-empty text"),
    (("x" * 400, "tuned", 0), "at most 300"),
    (("Sort the words: a b", "gpt-4", 0), "model must be one of"),
])
def test_bad_instruct_input_through_the_client(client, args, message):
    with pytest.raises(AppError) as err:
        client.predict(*args, api_name="/instruct")
    assert message in str(err.value)


@pytest.mark.parametrize("args,message", [
    ((1.5, 10, 0), "threshold must be in [0.0, 1.0]"),
    ((-1, 10, 0), "threshold must be in [0.0, 1.0]"),
    ((0.7, 100000, 0), "n_candidates must be in 1..2000"),
])
def test_bad_self_instruct_input_through_the_client(client, args, message):
    with pytest.raises(AppError) as err:
        client.predict(*args, api_name="/self_instruct")
    assert message in str(err.value)


@pytest.mark.parametrize("endpoint,data,message", [
    ("self_instruct", [float("nan"), 10, 0], "threshold"),
    ("self_instruct", [0.7, float("inf"), 0], "n_candidates"),
    ("instruct", [None, "tuned", 0], "instruction"),
    ("instruct", ["Sort the words: a b", "tuned", float("nan")], "seed"),
])
def test_bad_input_over_raw_http(app_url, endpoint, data, message):
    event, payload = call_raw(app_url, endpoint, data)
    text = payload["error"] if isinstance(payload, dict) else str(payload)
    assert event == "error" and message in text and "Something went wrong" not in text, text
