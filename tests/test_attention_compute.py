"""KV-cache sizes against the DeepSeek-V2 paper's Table 1, and every kind of bad input."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from demos.attention import compute
from demos.attention.compute import PRESETS, elements_per_token, parse_config


def gqa(n_layers=32, n_heads=32, head_dim=128, n_kv_heads=8):
    return {"attention": "GQA", "n_layers": n_layers, "n_heads": n_heads, "head_dim": head_dim,
            "n_kv_heads": n_kv_heads}


def test_presets_are_the_published_configs():
    shapes = {name: (c.attention, c.n_layers, c.n_heads, c.head_dim, c.n_kv_heads, c.kv_lora_rank,
                     c.rope_head_dim) for name, c in PRESETS.items()}
    assert shapes == {
        "Llama-2-7B": ("MHA", 32, 32, 128, 32, 0, 0), "Llama-2-70B": ("GQA", 80, 64, 128, 8, 0, 0),
        "Llama-3-8B": ("GQA", 32, 32, 128, 8, 0, 0), "Mistral-7B": ("GQA", 32, 32, 128, 8, 0, 0),
        "DeepSeek-67B": ("GQA", 95, 64, 128, 8, 0, 0), "Falcon-7B": ("MQA", 32, 71, 64, 1, 0, 0),
        "DeepSeek-V2": ("MLA", 60, 128, 128, 0, 512, 64),
        "DeepSeek-V2-Lite": ("MLA", 27, 16, 128, 0, 512, 64)}
    assert all(c.n_params > 1e9 for c in PRESETS.values())


@pytest.mark.parametrize("name", list(PRESETS))
def test_table1_formulas(name):
    c = PRESETS[name]
    n_h, d_h, l = c.n_heads, c.head_dim, c.n_layers
    expected = {"MHA": 2 * n_h * d_h * l, "GQA": 2 * c.n_kv_heads * d_h * l, "MQA": 2 * d_h * l,
                "MLA": (c.kv_lora_rank + c.rope_head_dim) * l}[c.attention]
    assert elements_per_token(c) == expected
    result = compute.kv_cache(name, 1000, 3, "fp16")
    assert result["elements_per_token"] == expected
    assert result["bytes_per_token"] == 2 * expected
    assert result["total_bytes"] == 2 * expected * 1000 * 3
    assert result["reduction_vs_mha"] == pytest.approx(1 - expected / (2 * n_h * d_h * l))


def test_variants_reduce_to_each_other():
    base = parse_config(json.dumps(gqa(n_kv_heads=32)))
    mha = parse_config(json.dumps({**gqa(), "attention": "MHA", "n_kv_heads": 32}))
    mqa = parse_config(json.dumps({**gqa(), "attention": "MQA", "n_kv_heads": 1}))
    assert elements_per_token(base) == elements_per_token(mha)              # n_g = n_h is MHA
    assert elements_per_token(parse_config(gqa(n_kv_heads=1))) == elements_per_token(mqa)


def test_mla_equals_gqa_with_225_groups_for_deepseek_v2():
    for name in ("DeepSeek-V2", "DeepSeek-V2-Lite"):
        assert compute.equivalent_groups(PRESETS[name]) == 2.25            # (4 + 1/2) d_h / (2 d_h)
    assert compute.kv_cache("DeepSeek-V2", 1, 1, "bf16")["equivalent_gqa_groups"] == 2.25


def test_paper_93_percent_derivation():
    d = compute.paper_reduction()
    assert d["element_reduction"] == pytest.approx(1 - 576 * 60 / (2 * 8 * 128 * 95))
    assert round(d["element_reduction"] * 100) == 82
    assert round(d["byte_reduction"] * 100, 1) == 93.3


@pytest.mark.parametrize("dtype,bits", [("fp32", 32), ("fp16", 16), ("bf16", 16), ("fp8", 8), ("int4", 4)])
def test_bytes_per_precision_and_int4_rounds_up(dtype, bits):
    odd = {"attention": "MLA", "n_layers": 1, "n_heads": 2, "head_dim": 4, "kv_lora_rank": 3,
           "rope_head_dim": 2}                                                 # 5 elements per token
    r = compute.kv_cache(json.dumps(odd), 7, 2, dtype)
    assert r["elements_per_token"] == 5
    assert r["bytes_per_token"] == math.ceil(5 * bits / 8)
    assert r["total_bytes"] == r["bytes_per_token"] * 7 * 2
    assert all(isinstance(r[k], int) for k in ("elements_per_token", "bytes_per_token", "total_bytes"))


def test_memory_curves_are_linear_in_context_and_batch():
    p = compute.CacheParams(config=PRESETS["Llama-3-8B"], batch_size=4, dtype="fp8")
    contexts = compute.context_grid(p.seq_len)
    curves = compute.memory_curves(p, contexts)
    per_token = elements_per_token(PRESETS["Llama-3-8B"])                   # fp8: 1 byte each
    np.testing.assert_array_equal(curves["GQA"], contexts * per_token * 4)
    assert np.all(curves["MHA"] == 4 * curves["GQA"])                         # 32 heads vs 8 groups
    assert np.all(curves["MQA"] * 8 == curves["GQA"])


def test_gpu_fits_is_the_largest_that_fits():
    p = compute.CacheParams(config=PRESETS["Llama-2-7B"], seq_len=4096, batch_size=2)
    per_token = compute.bytes_for(elements_per_token(p.config), p.dtype)
    weights = compute.weights_bytes(p.config, "bf16")
    assert weights == math.ceil(6.74e9 * 2)
    for row in compute.gpu_fits(p):
        free = row["gpu_gb"] * compute.GB - weights
        t = row["max_context"]
        assert t * per_token * 2 <= free < (t + 1) * per_token * 2
        b = row["max_batch"]
        assert b * per_token * 4096 <= free < (b + 1) * per_token * 4096
    huge = compute.gpu_fits(compute.CacheParams(config=PRESETS["DeepSeek-V2"]))  # 472 GB of weights
    assert all(r["max_context"] == 0 and r["max_batch"] == 0 for r in huge)
    assert all(r["max_context_cache_only"] > 0 for r in huge)


def test_same_shape_variants():
    v2 = PRESETS["DeepSeek-V2"]
    assert compute.same_shape(v2, "GQA").n_kv_heads == 8
    assert compute.same_shape(PRESETS["Falcon-7B"], "GQA").n_kv_heads == 1   # 71 heads is prime
    mla = compute.same_shape(PRESETS["Llama-2-7B"], "MLA")
    assert (mla.kv_lora_rank, mla.rope_head_dim) == (4 * 128, 64)


def test_kv_group_of_head():
    np.testing.assert_array_equal(compute.kv_group_of_head(8, 2), [0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(compute.kv_group_of_head(4, 4), [0, 1, 2, 3])


def test_json_config_accepts_dict_and_optional_keys():
    cfg = parse_config(json.dumps({**gqa(), "name": "mine", "n_params": 8e9}))
    assert (cfg.name, cfg.n_kv_heads, cfg.n_params) == ("mine", 8, 8e9)
    assert parse_config({**gqa()}) == parse_config(json.dumps(gqa()))
    assert parse_config(json.dumps({**gqa(), "attention": "MHA", "n_kv_heads": 32})).n_kv_heads == 32


BAD = [
    ("", 10, 1, "bf16", "config must be a preset name"),
    ("Llama-9", 10, 1, "bf16", "unknown preset"),
    ('{"attention": "GQA", "n_layers": 32,', 10, 1, "bf16", "not valid JSON"),
    ("[1, 2]", 10, 1, "bf16", "must be a JSON object"),
    (json.dumps({"n_layers": 32}), 10, 1, "bf16", "attention must be one of MHA, GQA, MQA, MLA"),
    (json.dumps({"attention": "GQA", "n_layers": 32, "n_heads": 32, "head_dim": 128}), 10, 1, "bf16",
     "missing key(s) n_kv_heads"),
    (json.dumps({"attention": "MLA", "n_layers": 2, "n_heads": 2, "head_dim": 2, "kv_lora_rank": 4}),
     10, 1, "bf16", "missing key(s) rope_head_dim"),
    (json.dumps({**gqa(), "n_kv_head": 8}), 10, 1, "bf16", "unknown key(s) n_kv_head"),
    (json.dumps(gqa(n_heads=32, n_kv_heads=6)), 10, 1, "bf16", "n_heads (32) must be divisible by n_kv_heads (6)"),
    (json.dumps(gqa(n_kv_heads=64)), 10, 1, "bf16", "n_kv_heads must be in 1..32"),
    (json.dumps(gqa(n_layers=0)), 10, 1, "bf16", "n_layers must be in 1..1000"),
    (json.dumps(gqa(head_dim=-4)), 10, 1, "bf16", "head_dim must be in 1..4096"),
    ('{"attention": "GQA", "n_layers": NaN, "n_heads": 32, "head_dim": 128, "n_kv_heads": 8}',
     10, 1, "bf16", "n_layers must be an integer"),
    ('{"attention": "GQA", "n_layers": 32, "n_heads": Infinity, "head_dim": 128, "n_kv_heads": 8}',
     10, 1, "bf16", "n_heads must be an integer"),
    (json.dumps(gqa(n_heads=10**30)), 10, 1, "bf16", "n_heads must be in 1..1024"),
    (json.dumps(gqa(n_layers=2.5)), 10, 1, "bf16", "n_layers must be an integer"),
    (json.dumps(gqa(n_layers="many")), 10, 1, "bf16", "n_layers must be an integer"),
    (json.dumps({**gqa(), "attention": "MQA", "n_kv_heads": 8}), 10, 1, "bf16", "n_kv_heads must be 1 for MQA"),
    (json.dumps({**gqa(), "n_params": -1}), 10, 1, "bf16", "n_params must be in"),
    ("Llama-2-7B", 0, 1, "bf16", "seq_len must be in 1..16777216"),
    ("Llama-2-7B", -5, 1, "bf16", "seq_len must be in"),
    ("Llama-2-7B", float("nan"), 1, "bf16", "seq_len must be an integer"),
    ("Llama-2-7B", float("inf"), 1, "bf16", "seq_len must be an integer"),
    ("Llama-2-7B", 10**12, 1, "bf16", "seq_len must be in 1..16777216"),
    ("Llama-2-7B", 10, 0, "bf16", "batch_size must be in 1..65536"),
    ("Llama-2-7B", 10, 1e9, "bf16", "batch_size must be in 1..65536"),
    ("Llama-2-7B", 10, 1, "fp6", "dtype must be one of fp32, fp16, bf16, fp8, int4"),
    ("Llama-2-7B", 10, 1, None, "dtype must be one of"),
]


@pytest.mark.parametrize("config,seq_len,batch_size,dtype,message", BAD)
def test_bad_input_names_the_field(config, seq_len, batch_size, dtype, message):
    with pytest.raises(ValueError, match=None) as err:
        compute.kv_cache(config, seq_len, batch_size, dtype)
    assert message in str(err.value)


def test_custom_controls_and_run_params():
    cfg = compute.config_from_controls("GQA", 32, 32, 128, 8, 512, 64, 8.0)
    assert (cfg.attention, cfg.n_kv_heads, cfg.n_params) == ("GQA", 8, 8e9)
    with pytest.raises(ValueError, match="n_params \\(billions\\)"):
        compute.config_from_controls("GQA", 32, 32, 128, 8, 512, 64, None)
    with pytest.raises(ValueError, match="max_context must be one of"):
        compute.check_run(compute.RunParams(max_context=300))
    with pytest.raises(ValueError, match="seed"):
        compute.check_run(compute.RunParams(seed=float("nan")))


def test_compute_and_ui_import_no_torch_and_compute_no_gradio():
    code = ("import sys; import demos.attention.compute, demos.attention.figures; "
            "assert 'gradio' not in sys.modules and 'torch' not in sys.modules; "
            "import gradio as gr; import demos.attention.ui as ui\n"
            "with gr.Blocks() as demo: ui.build(demo)\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120,
                   env={"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PATH": ""},
                   cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
