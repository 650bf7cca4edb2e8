"""The ``kv_cache`` endpoint through gradio_client and raw HTTP; the tab's callbacks in Python."""

import json

import gradio as gr
import pytest
from gradio_client.exceptions import AppError

from demos.attention import compute, ui
from playground.ui_helpers import user_errors
from tests.conftest import call_raw


def test_kv_cache_preset_through_the_client(client):
    result = client.predict("DeepSeek-V2", 32_768, 2, "bf16", api_name="/kv_cache")
    assert result == json.loads(json.dumps(compute.kv_cache("DeepSeek-V2", 32_768, 2, "bf16")))
    assert result["elements_per_token"] == (512 + 64) * 60
    assert result["bytes_per_token"] == 2 * result["elements_per_token"]
    assert result["total_bytes"] == result["bytes_per_token"] * 32_768 * 2
    assert result["equivalent_gqa_groups"] == 2.25


def test_kv_cache_json_config_through_the_client(client):
    config = json.dumps({"attention": "GQA", "n_layers": 80, "n_heads": 64, "head_dim": 128,
                         "n_kv_heads": 8})
    result = client.predict(config, 4096, 1, "int4", api_name="/kv_cache")
    assert result["elements_per_token"] == 2 * 8 * 128 * 80
    assert result["bytes_per_token"] == 8 * 128 * 80          # half a byte per element
    assert result == client.predict("Llama-2-70B", 4096, 1, "int4", api_name="/kv_cache") | {
        "model": "custom"}


@pytest.mark.parametrize("args,message", [
    (("Llama-99", 10, 1, "bf16"), "unknown preset"),
    (('{"attention": "GQA"', 10, 1, "bf16"), "not valid JSON"),
    ((json.dumps({"attention": "GQA", "n_layers": 32, "n_heads": 32, "head_dim": 128}), 10, 1, "bf16"),
     "missing key(s) n_kv_heads"),
    ((json.dumps({"attention": "GQA", "n_layers": 32, "n_heads": 32, "head_dim": 128, "n_kv_heads": 5}),
      10, 1, "bf16"), "must be divisible by n_kv_heads"),
    (("Llama-2-7B", 0, 1, "bf16"), "seq_len must be in 1..16777216"),
    (("Llama-2-7B", 10, -3, "bf16"), "batch_size must be in 1..65536"),
    (("Llama-2-7B", 10, 1, "fp4"), "dtype must be one of fp32, fp16, bf16, fp8, int4"),
])
def test_kv_cache_bad_input_through_the_client(client, args, message):
    with pytest.raises(AppError) as err:
        client.predict(*args, api_name="/kv_cache")
    assert message in str(err.value)


@pytest.mark.parametrize("data,message", [
    (["Llama-2-7B", float("nan"), 1, "bf16"], "seq_len must be an integer"),
    (["Llama-2-7B", 10, float("inf"), "bf16"], "batch_size must be an integer"),
    (["Llama-2-7B", 1e300, 1, "bf16"], "seq_len must be in"),
    (['{"attention": "MLA", "n_layers": NaN, "n_heads": 8, "head_dim": 8, "kv_lora_rank": 8, '
      '"rope_head_dim": 4}', 10, 1, "bf16"], "n_layers must be an integer"),
    ([{"not": "a string"}, 10, 1, "bf16"], "config"),
])
def test_kv_cache_bad_input_over_raw_http(app_url, data, message):
    event, payload = call_raw(app_url, "kv_cache", data)
    assert event == "error" and message in str(payload), payload


def controls(preset="DeepSeek-V2", attention="MLA", shape=(60, 128, 128, 8, 512, 64, 236.0),
             view=(32_768, 1, "bf16", "bf16")):
    return ui.Controls(preset, attention, *shape, *view)


def test_preset_fills_the_shape_and_renders():
    out = ui.preset_changed(controls(preset="Llama-2-70B"))
    attention, n_layers, n_heads, head_dim, n_kv = (u["value"] for u in out[:5])
    assert (attention, n_layers, n_heads, head_dim, n_kv) == ("GQA", 80, 64, 128, 8)
    summary, memory, sizes, fits, heads = out[8:]
    assert "Llama-2-70B" in summary and sizes[0][0] == "GQA"
    assert len(memory.data) >= 5 and len(heads.data) >= 3


def test_context_change_changes_the_view():
    small = ui.view_changed(controls(view=(4096, 1, "bf16", "bf16")))
    large = ui.view_changed(controls(view=(131_072, 1, "bf16", "bf16")))
    assert small[0] != large[0] and small[2] != large[2]
    assert small[1].layout.shapes[0].x0 == 4096 and large[1].layout.shapes[0].x0 == 131_072


def test_each_change_computes_its_view_once(monkeypatch):
    """One validation and one of each table per change (it used to validate twice and run gpu_fits twice)."""
    from demos.attention import compute
    calls = {"check_params": 0, "gpu_fits": 0, "sizes_table": 0}
    for name in calls:
        original = getattr(compute, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)
        monkeypatch.setattr(compute, name, counted)
    ui.view_changed(controls(view=(4096, 2, "fp16", "bf16")))
    assert calls == {"check_params": 1, "gpu_fits": 1, "sizes_table": 1}
    for name in calls:
        calls[name] = 0
    ui.shape_changed(controls(preset="Custom", attention="GQA", shape=(32, 32, 128, 8, 512, 64, 7.0)))
    assert calls["gpu_fits"] == 1 and calls["sizes_table"] == 1


def test_custom_mode_errors_are_warnings_and_the_views_stay():
    """A bad shape while typing: a warning saying what is wrong, and the plots keep the last
    valid view (a failed event would blank them)."""
    on_shape, on_view = user_errors(ui.shape_changed), user_errors(ui.view_changed)
    with pytest.warns(UserWarning, match="must be divisible by n_kv_heads"):
        assert on_shape(controls(preset="Custom", attention="GQA", shape=(32, 30, 128, 8, 512, 64, 7.0))) \
            == gr.skip()
    with pytest.warns(UserWarning, match="n_layers must be in 1..1000"):
        assert on_shape(controls(preset="Custom", attention="MHA", shape=(0, 32, 128, 8, 512, 64, 7.0))) \
            == gr.skip()
    with pytest.warns(UserWarning, match="preset must be one of"):
        assert on_view(controls(preset="GPT-5")) == gr.skip()


def test_export_writes_json_and_csv():
    update = ui.export(controls(), None)
    json_path, csv_path = update["value"]
    data = json.loads(open(json_path).read())
    assert data["kv_cache"]["elements_per_token"] == 34_560
    assert open(csv_path).readline().startswith("variant,")
