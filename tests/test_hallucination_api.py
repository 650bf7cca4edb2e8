"""The ``ask`` endpoint through gradio_client and raw HTTP."""

import json

import pytest
from gradio_client.exceptions import AppError

from demos.hallucination import compute
from tests.conftest import call_raw


def test_ask_through_the_client_is_what_compute_answers(client):
    q = compute.default_question()
    result = client.predict(q, "base", 16, 1.0, 7, api_name="/ask")
    assert result == json.loads(json.dumps(compute.ask(compute.AskParams(q, "base", 16, 1.0, 7))))
    assert client.predict(q, "base", 16, 1.0, 7, api_name="/ask") == result
    assert set(result) == {"answer", "p_answer", "candidates", "samples", "agreement", "semantic_entropy"}


def test_a_fine_tune_answers_through_the_client(client):
    result = client.predict(compute.default_question(), "gekhman-50", 4, 0.7, 0, api_name="/ask")
    assert len(result["samples"]) == 4


@pytest.mark.parametrize("args,message", [
    (("", "base", 4, 1.0, 0), "question must be a non-empty text"),
    (("x" * 400, "base", 4, 1.0, 0), "at most 300"),
    (("Where was A B born?", "base", 65, 1.0, 0), "n_samples must be in 1..64"),
    (("Where was A B born?", "base", 4, 0, 0), "temperature must be in [0.05, 5.0]"),
    (("Where was A B born?", "base", 4, -1.0, 0), "temperature must be in"),
    (("Where was A B born?", "llama-70b", 4, 1.0, 0), "model must be one of"),
])
def test_bad_input_through_the_client(client, args, message):
    with pytest.raises(AppError) as err:
        client.predict(*args, api_name="/ask")
    assert message in str(err.value)


@pytest.mark.parametrize("data,message", [
    (["Where was A B born?", "base", 4, float("nan"), 0], "temperature"),
    (["Where was A B born?", "base", float("inf"), 1.0, 0], "n_samples"),
    ([None, "base", 4, 1.0, 0], "question"),
])
def test_bad_input_over_raw_http(app_url, data, message):
    event, payload = call_raw(app_url, "ask", data)
    text = payload["error"] if isinstance(payload, dict) else str(payload)
    assert event == "error" and message in text and "Something went wrong" not in text, text
