"""The docs' minimal example tab (docs/example_tab/, shown in docs/adding-a-tab.md) works as the
page says: its compute matches scipy, and the shell builds, serves and calls it like any tab."""

import pytest
from scipy.special import softmax

from docs.example_tab import TAB, compute
from tests.conftest import free_port


@pytest.mark.parametrize("temperature", [0.05, 0.5, 1.0, 3.0, 10.0])
def test_softmax_with_temperature_equals_scipy(temperature):
    got = compute.softmax_with_temperature(compute.TemperatureParams(temperature))
    want = softmax([z / temperature for z in compute.LOGITS])
    assert got == pytest.approx(want.tolist(), abs=1e-12)


def test_a_temperature_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match="temperature must be in"):
        compute.softmax_with_temperature(compute.TemperatureParams(0.0))


def test_the_shell_serves_the_example_tab_and_its_endpoint():
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    from playground.app import build_app, launch_kwargs

    demo = build_app([TAB])
    demo.launch(**launch_kwargs(port=free_port()), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        result = client.predict(2.0, api_name="/temperature")
        assert result["p"] == pytest.approx(softmax([z / 2.0 for z in compute.LOGITS]).tolist())
        with pytest.raises(AppError, match="temperature must be in"):
            client.predict(99.0, api_name="/temperature")
    finally:
        demo.close()
