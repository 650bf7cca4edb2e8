"""Liveness and readiness for a load balancer (issue 19, item 2). The drain on SIGTERM is tested
with real replicas in tests/test_replicas.py."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

from playground import serving
from tests.conftest import ROOT


def get(url: str) -> tuple[int, bytes]:
    try:
        response = urllib.request.urlopen(url, timeout=60)
        return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_liveness_answers_at_once(app_url):
    assert get(f"{app_url}/healthz") == (200, b"ok\n")


def test_readiness_lists_the_embedded_models_of_the_tabs_shown():
    assert serving.Lifecycle(["attention"]).required_models() == []
    assert serving.Lifecycle(["detr"]).required_models() == ["shapes-detr"]
    assert set(serving.Lifecycle(["guidance", "controlnet"]).required_models()) == {"shapes-ldm", "shapes-controlnet"}


READINESS = """
import json, time
from playground import serving
lifecycle = serving.Lifecycle(["attention", "detr"])
states = [lifecycle.readiness()]
while states[-1][1].get("loading"):
    time.sleep(0.05)
    states.append(lifecycle.readiness())
print(json.dumps([states[0], states[-1]]))
"""


def readiness_in_a_fresh_process(**env) -> list:
    result = subprocess.run([sys.executable, "-c", READINESS], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_readiness_is_503_while_the_models_load_then_200():
    (first_status, first), (last_status, last) = readiness_in_a_fresh_process()
    assert (first_status, first) == (503, {"ready": False, "loading": ["shapes-detr"]})
    assert (last_status, last) == (200, {"ready": True, "models": ["shapes-detr"]})


def test_readiness_says_which_model_cannot_be_loaded(tmp_path):
    _, (status, state) = readiness_in_a_fresh_process(PLAYGROUND_MODEL_SHAPES_DETR=str(tmp_path / "missing"))
    assert status == 503 and state["ready"] is False
    assert "shapes-detr" in state["unavailable"]["shapes-detr"] and "not found" in state["unavailable"]["shapes-detr"]


def test_a_draining_process_is_not_ready():
    lifecycle = serving.Lifecycle([])
    assert lifecycle.readiness() == (200, {"ready": True, "models": []})
    lifecycle.draining.set()
    assert lifecycle.readiness() == (503, {"ready": False, "draining": True})
