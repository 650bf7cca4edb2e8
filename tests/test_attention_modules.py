"""The torch attention modules against trusted references (DESIGN.md §2.8)."""

import pytest
import torch
import torch.nn.functional as F

from demos.attention import compute, modules

D_MODEL, N_HEADS, HEAD_DIM = 48, 6, 8


def x_and_gen(batch=2, tokens=11, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, tokens, D_MODEL, generator=gen, dtype=torch.float64), gen


def init(module, gen):
    with torch.no_grad():
        for w in module.parameters():
            w.copy_(torch.randn(w.shape, generator=gen, dtype=torch.float64) / w.shape[1] ** 0.5)
    return module.double().eval()


def test_causal_attention_equals_sdpa():
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 7, 5, generator=gen, dtype=torch.float64) for _ in range(3))
    ours = modules.causal_attention(q, k, v, 5 ** -0.5)
    torch.testing.assert_close(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_mha_equals_sdpa():
    x, gen = x_and_gen()
    mha = init(modules.MultiHeadAttention(D_MODEL, N_HEADS, HEAD_DIM), gen)
    y, _ = mha(x)
    q, k, v = mha.project(x, None)
    reference = mha.output(F.scaled_dot_product_attention(q, k, v, is_causal=True))
    torch.testing.assert_close(y, reference)


def test_gqa_with_n_heads_groups_equals_mha():
    x, gen = x_and_gen()
    mha = init(modules.MultiHeadAttention(D_MODEL, N_HEADS, HEAD_DIM), gen)
    gqa = modules.GroupedQueryAttention(D_MODEL, N_HEADS, HEAD_DIM, N_HEADS).double()
    gqa.load_state_dict(mha.state_dict())
    torch.testing.assert_close(gqa(x)[0], mha(x)[0])


def test_mqa_equals_gqa_with_one_group():
    x, gen = x_and_gen()
    mqa = init(modules.MultiQueryAttention(D_MODEL, N_HEADS, HEAD_DIM), gen)
    gqa = modules.GroupedQueryAttention(D_MODEL, N_HEADS, HEAD_DIM, 1).double()
    gqa.load_state_dict(mqa.state_dict())
    torch.testing.assert_close(mqa(x)[0], gqa(x)[0])


def test_gqa_equals_sdpa_with_repeated_heads():
    x, gen = x_and_gen()
    gqa = init(modules.GroupedQueryAttention(D_MODEL, N_HEADS, HEAD_DIM, 2), gen)
    q, k, v = gqa.project(x, None)
    k, v = k.repeat_interleave(3, 1), v.repeat_interleave(3, 1)
    reference = gqa.output(F.scaled_dot_product_attention(q, k, v, is_causal=True))
    torch.testing.assert_close(gqa(x)[0], reference)


def layers():
    return {
        "MHA": modules.MultiHeadAttention(D_MODEL, N_HEADS, HEAD_DIM),
        "GQA": modules.GroupedQueryAttention(D_MODEL, N_HEADS, HEAD_DIM, 3),
        "MQA": modules.MultiQueryAttention(D_MODEL, N_HEADS, HEAD_DIM),
        "MLA": modules.MultiHeadLatentAttention(D_MODEL, N_HEADS, HEAD_DIM, 16, 4),
    }


@pytest.mark.parametrize("name", ["MHA", "GQA", "MQA", "MLA"])
def test_cached_decoding_equals_full_recompute(name):
    x, gen = x_and_gen(tokens=12)
    layer = init(layers()[name], gen)
    full, _ = layer(x)
    out, cache = layer(x[:, :5])                       # prefill 5 tokens
    steps = [out]
    for t in range(5, 12):                             # then one token at a time
        y, cache = layer(x[:, t:t + 1], cache)
        steps.append(y)
    torch.testing.assert_close(torch.cat(steps, 1), full)
    assert cache[0].shape[-2] == 12


def test_mla_absorbed_equals_mla():
    x, gen = x_and_gen(tokens=9)
    mla = init(layers()["MLA"], gen)
    torch.testing.assert_close(mla.forward_absorbed(x)[0], mla(x)[0])
    # and with a cache: decode the last 4 tokens from the absorbed path
    _, cache = mla(x[:, :5])
    torch.testing.assert_close(mla.forward_absorbed(x[:, 5:], cache)[0], mla(x)[0][:, 5:])


def test_stack_decode_check_and_cache_bytes_match_formula():
    p = compute.RunParams(d_model=32, n_heads=4, head_dim=8, n_kv_heads=2, kv_lora_rank=16,
                          rope_head_dim=4, prompt_len=3, decode_steps=5, max_context=256, repeats=1)
    rows = modules.cache_rows(p, torch.Generator().manual_seed(0))
    assert [r["variant"] for r in rows] == list(compute.RUN_VARIANTS)
    for row in rows:
        assert row["measured_bytes"] == row["formula_bytes"], row
        assert row["max_abs_diff_vs_full"] < 1e-4, row
    by_name = {r["variant"]: r["elements_per_token"] for r in rows}
    assert by_name == {"MHA": 2 * 4 * 8 * 2, "GQA": 2 * 2 * 8 * 2, "MQA": 2 * 8 * 2,
                       "MLA": (16 + 4) * 2, "MLA (absorbed)": (16 + 4) * 2}


def test_decode_times_shape():
    p = compute.RunParams(d_model=32, n_heads=4, head_dim=8, n_kv_heads=2, kv_lora_rank=16,
                          rope_head_dim=4, max_context=512, repeats=1)
    timing = modules.decode_times(p, torch.Generator().manual_seed(0))
    assert timing["contexts"] == [256, 512]
    for seconds in timing["seconds"].values():
        assert len(seconds) == 2 and all(s > 0 for s in seconds)
