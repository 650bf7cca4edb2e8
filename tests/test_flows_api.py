"""The ``flow`` endpoint through gradio_client and raw HTTP; the tab's callbacks in Python."""

import json

import numpy as np
import pytest
from gradio_client.exceptions import AppError

from demos.flows import compute, ui
from tests.conftest import call_raw

SMALL = ("2_gaussians", "realnvp", 2, 100, 0)  # quick to train: the tests check shapes, not quality


def test_flow_endpoint_inputs_are_in_the_issues_order(client):
    endpoint = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/flow"]
    assert [p["parameter_name"] for p in endpoint["parameters"]] == ["data", "flow", "n_layers", "train_steps", "seed"]


def test_flow_endpoint_returns_a_normalised_log_density_on_a_wide_grid(client):
    out = client.predict(*SMALL, api_name="/flow")
    x, y, log_density = np.array(out["x"]), np.array(out["y"]), np.array(out["log_density"])
    assert log_density.shape == (len(y), len(x)) and np.isfinite(log_density).all()
    points = compute.load_points("2_gaussians", 0)[0]
    for axis, values in enumerate([x, y]):
        assert (np.diff(values) > 0).all() and np.allclose(np.diff(values), values[1] - values[0])
        mean, std = points[:, axis].mean(), points[:, axis].std()
        assert values[0] <= mean - 4 * std and values[-1] >= mean + 4 * std
    mass = np.exp(log_density).sum() * (x[1] - x[0]) * (y[1] - y[0])
    assert abs(mass - 1) < 0.02
    assert isinstance(out["train_log_likelihood"], float) and isinstance(out["heldout_log_likelihood"], float)
    assert out["n_train"] + out["n_heldout"] == compute.N_SAMPLES
    expected = compute.api_output(compute.fit(compute.FlowParams(*SMALL)))  # same inputs, same numbers
    assert out["log_density"] == json.loads(json.dumps(expected["log_density"]))
    assert out["kl_true_learned"] == pytest.approx(expected["kl_true_learned"])


def test_flow_endpoint_takes_user_points_as_json(client):
    points = np.random.default_rng(1).normal([1, -2], [0.5, 1.5], (60, 2)).round(3).tolist()
    out = client.predict(json.dumps(points), "planar", 2, 50, 3, api_name="/flow")
    assert out["n_train"] + out["n_heldout"] == 60
    assert out["true_log_density"] is None and out["kl_true_learned"] is None
    assert min(out["x"]) < -0.5 and max(out["y"]) > 2


@pytest.mark.parametrize("args,message", [
    (("swiss_roll", "realnvp", 2, 100, 0), "unknown data set 'swiss_roll'"),
    (("[[0, 1], [2, 3]]", "realnvp", 2, 100, 0), "at least 20 points"),
    (("two_moons", "glow", 2, 100, 0), "flow must be one of realnvp, planar, flow_matching"),
    (("two_moons", "realnvp", 0, 100, 0), "n_layers must be in 1..32"),
    (("two_moons", "flow_matching", 20, 100, 0), "n_layers must be in 1..16"),
    (("two_moons", "realnvp", 2, 100_000, 0), "train_steps must be in 1..5000"),
    (("two_moons", "realnvp", 2, 100, -5), "seed must be in"),
])
def test_flow_endpoint_bad_input_is_a_clear_message(client, args, message):
    with pytest.raises(AppError) as err:
        client.predict(*args, api_name="/flow")
    assert message in str(err.value)


@pytest.mark.parametrize("data,message", [
    (["two_moons", "realnvp", float("nan"), 100, 0], "n_layers must be an integer"),
    (["two_moons", "realnvp", 2, float("inf"), 0], "train_steps must be an integer"),
    (["two_moons", "realnvp", 2, 100, "seven"], "seed must be an integer"),
    (["[[0, NaN], [1, 2]]", "realnvp", 2, 100, 0], "finite"),
    ([None, "realnvp", 2, 100, 0], "data must be"),
])
def test_flow_endpoint_rejects_raw_http_garbage(app_url, data, message):
    event, payload = call_raw(app_url, "flow", data)
    assert event == "error" and message in str(payload)


def test_preview_and_layer_callbacks_render_every_view():
    outputs = ui.preview(ui.Controls("ring", "", "realnvp", 2, 100, 0))
    assert len(outputs) == 11 and "True density" in outputs[4].layout.title.text
    params = compute.FlowParams(*SMALL)
    result = compute.fit(params)
    first, last = ui.on_layer(0, params), ui.on_layer(2, params)
    assert "after 0 of 2 layers" in first[0].layout.title.text and "after 2 of 2" in last[0].layout.title.text
    assert not np.allclose(first[1].data[0].z, last[1].data[0].z)
    assert ui.on_layer(1, None) is not None  # nothing trained yet: the views stay as they are
    assert json.load(open(ui.download_file(result)))["x"] == result.x.tolist()
