"""The ``sde_ode`` endpoint through gradio_client on the full app."""

import pytest


def test_api_returns_samples_and_nfe(client):
    args = ("8_gaussians", "VP", "exact", 300, 40, 5)
    out = client.predict(*args, api_name="/sde_ode")
    assert set(out) == {"sde", "ode", "nfe_sde", "nfe_ode"}
    assert len(out["sde"]) == len(out["ode"]) == 300 and len(out["sde"][0]) == 2
    assert out["nfe_sde"] == 40 and out["nfe_ode"] == 80
    assert client.predict(*args, api_name="/sde_ode") == out  # same inputs, same output


def test_api_accepts_json_points_and_rejects_bad_input(client):
    out = client.predict("[[0, 0], [2, 2]]", "VE", "exact", 20, 30, 0, api_name="/sde_ode")
    assert len(out["ode"]) == 20
    with pytest.raises(Exception, match="n_steps"):
        client.predict("two_moons", "VP", "exact", 10, 0, 0, api_name="/sde_ode")
    with pytest.raises(Exception, match="finite"):
        client.predict("[[0, NaN]]", "VP", "exact", 10, 5, 0, api_name="/sde_ode")
