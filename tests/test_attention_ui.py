"""The Attention tab's controls (issue 14): an n_kv_heads that does not divide n_heads becomes the
nearest valid one, which the box then shows and the download uses."""

import pytest

from demos.attention import ui


def custom(**changes) -> ui.Controls:
    base = ui.Controls(preset=ui.CUSTOM, attention="GQA", n_layers=80, n_heads=64, head_dim=128, n_kv_heads=8)
    return ui.Controls(**{**base.__dict__, **changes})


@pytest.mark.parametrize("typed, used", [(7, 8), (12, 8), (13, 16), (0, 1), (100, 64), (5, 4)])
def test_an_n_kv_heads_that_does_not_divide_n_heads_becomes_the_nearest_divisor(monkeypatch, typed, used):
    warnings = []
    monkeypatch.setattr(ui.gr, "Warning", warnings.append)
    snapped = ui.snap_kv_heads(custom(n_kv_heads=typed))
    assert snapped.n_kv_heads == used and f"using {used}" in warnings[0]
    assert snapped.params().config.n_kv_heads == used
    *_, box = ui.number_changed(custom(n_kv_heads=typed))
    assert box == used  # what the box is set to


@pytest.mark.parametrize("controls", [custom(), custom(attention="MLA", n_kv_heads=7),
                                      ui.Controls(n_kv_heads=7), custom(n_kv_heads=7.5), custom(n_heads=0)])
def test_valid_or_unrelated_values_are_left_as_they_are(monkeypatch, controls):
    monkeypatch.setattr(ui.gr, "Warning", lambda message: pytest.fail(message))
    assert ui.snap_kv_heads(controls) is controls


def test_the_download_uses_the_value_shown(monkeypatch):
    monkeypatch.setattr(ui.gr, "Warning", lambda message: None)
    update = ui.export(ui.snap_kv_heads(custom(n_kv_heads=7)), None)
    assert len(update["value"]) == 2
