"""SDE vs ODE: bad input gives a clear ValueError quickly; the UI module does not import torch."""

import json
import subprocess
import sys

import pytest

from demos.sde_ode import compute

GOOD = dict(data="two_moons", sde="VP", score="exact", n_samples=10, n_steps=5, seed=0)


@pytest.mark.parametrize("field,value,message", [
    ("data", "", "no points"),
    ("data", "[]", "points"),
    ("data", "[[0, 1], [NaN, 2]]", "finite"),
    ("data", json.dumps([[0, 1], [float("inf"), 2]]), "finite"),
    ("data", "[[0, 1], [2]]", "pairs"),
    ("data", "[[0, 1]", "JSON"),
    ("data", "not_a_dataset", "unknown dataset"),
    ("data", json.dumps([[0.0, 0.0]] * 10_001), "at most 10000"),
    ("data", "x,y\n1,2\n3,abc", "CSV"),
    ("n_steps", 0, "n_steps"),
    ("n_steps", 2001, "n_steps"),
    ("n_steps", float("nan"), "n_steps"),
    ("n_steps", "many", "n_steps"),
    ("n_samples", 0, "n_samples"),
    ("n_samples", 10_001, "n_samples"),
    ("n_samples", 2.5, "n_samples"),
    ("sde", "VPX", "sde"),
    ("score", "guess", "score"),
    ("seed", -1, "seed"),
])
def test_bad_input_is_a_clear_message(field, value, message):
    with pytest.raises(ValueError, match=message):
        compute.api_sde_ode(**{**GOOD, field: value})


def test_good_input_and_user_points():
    out = compute.api_sde_ode(**GOOD)
    assert set(out) == {"sde", "ode", "nfe_sde", "nfe_ode"}
    assert len(out["sde"]) == len(out["ode"]) == 10
    assert (out["nfe_sde"], out["nfe_ode"]) == (5, 10)
    points = compute.api_sde_ode(**{**GOOD, "data": "[[0, 0], [1, 1], [2, 0]]", "sde": "VE"})
    assert len(points["ode"]) == 10
    csv = compute.api_sde_ode(**{**GOOD, "data": "x,y\n0,0\n1,1\n", "sde": "subVP"})
    assert len(csv["sde"]) == 10


def test_single_point_and_duplicates_work():
    out = compute.api_sde_ode(**{**GOOD, "data": "[[1, 1]]", "sde": "VE", "n_steps": 50})
    assert max(abs(x - 1) + abs(y - 1) for x, y in out["ode"]) < 0.05  # everything lands on it
    out = compute.api_sde_ode(**{**GOOD, "data": "[[0, 0], [0, 0], [1, 0], [1, 0]]", "n_steps": 20})
    assert len(out["sde"]) == 10


def test_ui_import_and_build_do_not_import_torch():
    code = ("import sys, gradio as gr; from demos.sde_ode import ui\n"
            "with gr.Blocks() as demo: ui.build(demo)\n"
            "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'torch imported'\n"
            "import demos.sde_ode.compute, demos.sde_ode.figures\n"
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=180)


def test_compute_does_not_import_gradio():
    code = "import sys; import demos.sde_ode.compute; assert 'gradio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
