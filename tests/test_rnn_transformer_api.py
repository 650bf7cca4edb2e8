"""The ``recall`` endpoint through gradio_client and raw HTTP."""

import json

import pytest
from gradio_client.exceptions import AppError

from demos.rnn_transformer import compute
from tests.conftest import call_raw


def test_recall_through_the_client_is_what_compute_answers(client):
    text = "a 3 f 7 q 1 " + ". " * 20 + "? f"
    result = client.predict(text, api_name="/recall")
    assert result == json.loads(json.dumps(compute.answer_all(compute.parse_sequence(text))))
    assert result["distance"] == 22 and set(result["models"]) == {"rnn", "lstm", "gru", "transformer"}
    for model in result["models"].values():
        assert set(model) == {"answer", "p", "saliency"} and len(model["saliency"]) == len(text.split())
    assert client.predict(text, api_name="/recall") == result  # same input, same output


@pytest.mark.parametrize("text,message", [
    ("a 3 b 4 ? z", "the query key 'z' is not among the pairs"),
    ("a 3 a 4 ? a", "repeated key(s) a"),
    ("a 3 b 4", "exactly one '?'"),
    ("a 3 hello ? a", "unknown token(s) 'hello'"),
    (" ".join(f"{k} 1" for k in "abcdefghi") + " ? a", "at most 8"),
    ("a 3 " + ". " * 170 + "? a", "at most 160"),
])
def test_bad_sequences_through_the_client(client, text, message):
    with pytest.raises(AppError) as err:
        client.predict(text, api_name="/recall")
    assert message in str(err.value)


@pytest.mark.parametrize("data", [[None], [12], [{"a": 1}], [["a", "3"]]])
def test_non_text_over_raw_http_is_a_clear_message(app_url, data):
    event, payload = call_raw(app_url, "recall", data)
    assert event == "error", payload
    text = payload["error"] if isinstance(payload, dict) else str(payload)
    assert "sequence" in text and "Something went wrong" not in text, text
