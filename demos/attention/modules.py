"""MHA, GQA, MQA and MLA in torch, with a real KV cache for step-by-step decoding.

Imported lazily (only by the tab's "real run" and the tests): importing torch costs seconds.

    MultiHeadAttention        MHA: one key/value head per query head
    GroupedQueryAttention     GQA: n_g key/value heads, each shared by n_h / n_g query heads
    MultiQueryAttention       MQA: one key/value head shared by all query heads
    MultiHeadLatentAttention  MLA (DeepSeek-V2, arXiv:2405.04434, eqs. 9-19), with and without
                              the up-projections absorbed into the query and the output

Every module maps ``(x, cache) -> (y, new_cache)`` with x of shape (B, T, d_model) holding the
T tokens that follow the cached ones. Caches are tuples of tensors with the token axis at -2;
a module never modifies the cache it is given (it returns a longer one), so one cache can be
reused, e.g. to time several decode steps from the same context.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from playground.models import single_thread


def rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10_000.0) -> torch.Tensor:
    """Rotary position embedding on the last axis of ``x`` (..., T, d), d even.

    Pairs (x_2i, x_2i+1) turn by the angle position · base^(-2i/d).
    """
    d = x.shape[-1]
    freqs = base ** (-torch.arange(0, d, 2, dtype=x.dtype, device=x.device) / d)  # (d/2,)
    angles = positions.to(x.dtype)[:, None] * freqs                                # (T, d/2)
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]                                            # (..., T, d/2)
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1).flatten(-2)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q kᵀ · scale + causal mask) v, where the T_q queries are the last T_q of T_k tokens.

    q (B, H, T_q, d), k (B, H, T_k, d), v (B, H, T_k, d_v) -> (B, H, T_q, d_v).
    """
    t_q, t_k = q.shape[-2], k.shape[-2]
    scores = (q @ k.transpose(-2, -1)) * scale                                 # (B, H, T_q, T_k)
    future = torch.ones(t_q, t_k, dtype=torch.bool, device=q.device).triu(t_k - t_q + 1)
    return scores.masked_fill(future, float("-inf")).softmax(-1) @ v


def positions_after(cache: tuple | None, t: int, device) -> torch.Tensor:
    """Absolute positions of t new tokens following the cached ones: (t,)."""
    past = 0 if cache is None else cache[0].shape[-2]
    return torch.arange(past, past + t, device=device)


def cache_bytes(cache: tuple) -> int:
    """Measured bytes of a cache: the sum of its tensors' numel · element_size."""
    return sum(t.numel() * t.element_size() for t in cache)


class KVProjections(nn.Module):
    """The projections MHA, GQA and MQA share: n_h query heads, n_kv key/value heads.

    q_i = RoPE(W^Q_i x),  k_g = RoPE(W^K_g x),  v_g = W^V_g x,  u = W^O [o_1; ...; o_n_h].
    Cache per token and layer: k and v of the n_kv heads = 2·n_kv·d_h elements.
    """

    def __init__(self, d_model: int, n_heads: int, head_dim: int, n_kv_heads: int):
        super().__init__()
        if n_heads % n_kv_heads:
            raise ValueError(f"n_heads ({n_heads}) must be divisible by n_kv_heads ({n_kv_heads})")
        self.n_heads, self.head_dim, self.n_kv_heads = n_heads, head_dim, n_kv_heads
        self.W_q = nn.Linear(d_model, n_heads * head_dim, bias=False)
        self.W_k = nn.Linear(d_model, n_kv_heads * head_dim, bias=False)
        self.W_v = nn.Linear(d_model, n_kv_heads * head_dim, bias=False)
        self.W_o = nn.Linear(n_heads * head_dim, d_model, bias=False)
        self.scale = 1 / math.sqrt(head_dim)

    def heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """(B, T, n·d_h) -> (B, n, T, d_h)."""
        return x.unflatten(-1, (n, self.head_dim)).transpose(1, 2)

    def project(self, x: torch.Tensor, cache: tuple | None):
        """q (B, n_h, T, d_h) and the whole k, v (B, n_kv, T_past + T, d_h), RoPE applied."""
        pos = positions_after(cache, x.shape[1], x.device)
        q = rope(self.heads(self.W_q(x), self.n_heads), pos)
        k = rope(self.heads(self.W_k(x), self.n_kv_heads), pos)
        v = self.heads(self.W_v(x), self.n_kv_heads)
        if cache is not None:
            k, v = torch.cat([cache[0], k], -2), torch.cat([cache[1], v], -2)
        return q, k, v

    def output(self, o: torch.Tensor) -> torch.Tensor:
        """(B, n_h, T, d_h) -> (B, T, d_model)."""
        return self.W_o(o.transpose(1, 2).flatten(-2))


class MultiHeadAttention(KVProjections):
    """MHA: every query head i has its own key and value head i (2·n_h·d_h per token, layer)."""

    def __init__(self, d_model: int, n_heads: int, head_dim: int):
        super().__init__(d_model, n_heads, head_dim, n_heads)

    def forward(self, x: torch.Tensor, cache: tuple | None = None):
        q, k, v = self.project(x, cache)                                 # (B, n_h, T_k, d_h)
        return self.output(causal_attention(q, k, v, self.scale)), (k, v)


class GroupedQueryAttention(KVProjections):
    """GQA: n_h query heads share n_g key/value heads; head i reads group i // (n_h / n_g)."""

    def forward(self, x: torch.Tensor, cache: tuple | None = None):
        q, k, v = self.project(x, cache)                                 # k, v (B, n_g, T_k, d_h)
        group = self.n_heads // self.n_kv_heads
        k_h = k.repeat_interleave(group, dim=1)                          # (B, n_h, T_k, d_h)
        v_h = v.repeat_interleave(group, dim=1)
        return self.output(causal_attention(q, k_h, v_h, self.scale)), (k, v)


class MultiQueryAttention(KVProjections):
    """MQA: all query heads share one key/value head (2·d_h per token, layer), by broadcasting."""

    def __init__(self, d_model: int, n_heads: int, head_dim: int):
        super().__init__(d_model, n_heads, head_dim, 1)

    def forward(self, x: torch.Tensor, cache: tuple | None = None):
        q, k, v = self.project(x, cache)                                 # k, v (B, 1, T_k, d_h)
        return self.output(causal_attention(q, k, v, self.scale)), (k, v)


class MultiHeadLatentAttention(nn.Module):
    """MLA: keys and values come from one cached latent c^KV (d_c) per token; a decoupled RoPE key
    k^R (d_h^R) is shared by all heads (DeepSeek-V2 eqs. 9-19; queries uncompressed, as in V2-Lite).

        c^KV_t = W^DKV h_t,   k^C_t = W^UK c^KV_t,   v^C_t = W^UV c^KV_t,   k^R_t = RoPE(W^KR h_t)
        q^C_t = W^Q h_t,      q^R_t = RoPE(W^QR h_t)
        o_t,i = Σ_j softmax_j([q^C_t,i; q^R_t,i]ᵀ [k^C_j,i; k^R_j] / √(d_h + d_h^R)) v^C_j,i
        u_t = W^O [o_t,1; ...; o_t,n_h]

    Cache per token and layer: c^KV and k^R = d_c + d_h^R elements.
    """

    def __init__(self, d_model: int, n_heads: int, head_dim: int, kv_lora_rank: int, rope_head_dim: int):
        super().__init__()
        self.n_heads, self.head_dim, self.rope_head_dim = n_heads, head_dim, rope_head_dim
        self.W_DKV = nn.Linear(d_model, kv_lora_rank, bias=False)
        self.W_UK = nn.Linear(kv_lora_rank, n_heads * head_dim, bias=False)
        self.W_UV = nn.Linear(kv_lora_rank, n_heads * head_dim, bias=False)
        self.W_KR = nn.Linear(d_model, rope_head_dim, bias=False)
        self.W_Q = nn.Linear(d_model, n_heads * head_dim, bias=False)
        self.W_QR = nn.Linear(d_model, n_heads * rope_head_dim, bias=False)
        self.W_O = nn.Linear(n_heads * head_dim, d_model, bias=False)
        self.scale = 1 / math.sqrt(head_dim + rope_head_dim)

    def latents(self, x: torch.Tensor, cache: tuple | None):
        """Queries q^C (B, n_h, T, d_h), q^R (B, n_h, T, d_h^R), and the whole cache
        c^KV (B, T_k, d_c), k^R (B, T_k, d_h^R)."""
        pos = positions_after(cache, x.shape[1], x.device)
        q_c = self.W_Q(x).unflatten(-1, (self.n_heads, self.head_dim)).transpose(1, 2)
        q_r = rope(self.W_QR(x).unflatten(-1, (self.n_heads, self.rope_head_dim)).transpose(1, 2), pos)
        c_kv, k_r = self.W_DKV(x), rope(self.W_KR(x), pos)
        if cache is not None:
            c_kv, k_r = torch.cat([cache[0], c_kv], -2), torch.cat([cache[1], k_r], -2)
        return q_c, q_r, c_kv, k_r

    def forward(self, x: torch.Tensor, cache: tuple | None = None):
        """Without absorption: up-project every cached latent to per-head keys and values."""
        q_c, q_r, c_kv, k_r = self.latents(x, cache)
        heads = (self.n_heads, self.head_dim)
        k_c = self.W_UK(c_kv).unflatten(-1, heads).transpose(1, 2)                      # (B, n_h, T_k, d_h)
        v_c = self.W_UV(c_kv).unflatten(-1, heads).transpose(1, 2)
        k_r_h = k_r[:, None].expand(-1, self.n_heads, -1, -1)                          # (B, n_h, T_k, d_h^R)
        q = torch.cat([q_c, q_r], -1)
        k = torch.cat([k_c, k_r_h], -1)
        o = causal_attention(q, k, v_c, self.scale)                                    # (B, n_h, T, d_h)
        return self.W_O(o.transpose(1, 2).flatten(-2)), (c_kv, k_r)

    def absorbed_weights(self):
        """W^UK_i folded into the query, W^UV_i into the output (DeepSeek-V2 Section 2.1.2):

        q^Cᵀ_i k^C_j,i = (W^UKᵀ_i q^C_i)ᵀ c^KV_j   and   W^O_i W^UV_i Σ_j p_j c^KV_j.
        Returns W^UK as (n_h, d_h, d_c) and W^O·W^UV as (d_model, n_h, d_c).
        """
        d_c = self.W_UK.in_features
        w_uk = self.W_UK.weight.view(self.n_heads, self.head_dim, d_c)
        w_uv = self.W_UV.weight.view(self.n_heads, self.head_dim, d_c)
        w_o = self.W_O.weight.view(-1, self.n_heads, self.head_dim)                    # (d_model, n_h, d_h)
        return w_uk, torch.einsum("mhd,hdc->mhc", w_o, w_uv)

    def forward_absorbed(self, x: torch.Tensor, cache: tuple | None = None, weights=None):
        """With absorption: attention runs on the latents; no per-head key or value is formed."""
        w_uk, w_ouv = self.absorbed_weights() if weights is None else weights
        q_c, q_r, c_kv, k_r = self.latents(x, cache)
        q_lat = torch.einsum("bhtd,hdc->bhtc", q_c, w_uk)                           # (B, n_h, T, d_c)
        q = torch.cat([q_lat, q_r], -1)                                             # (B, n_h, T, d_c + d_h^R)
        k = torch.cat([c_kv, k_r], -1)[:, None]                                     # (B, 1, T_k, d_c + d_h^R)
        ctx = causal_attention(q, k, c_kv[:, None], self.scale)                     # (B, n_h, T, d_c)
        return torch.einsum("bhtc,mhc->btm", ctx, w_ouv), (c_kv, k_r)


# ----------------------------------------------------------------------------- the tab's run
class AttentionStack(nn.Module):
    """l attention layers with residuals, x <- x + attn(x): enough to give the cache l layers."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, caches: list | None = None, absorbed: bool = False, weights=None):
        """x (B, T, d_model) -> (B, T, d_model) and the new per-layer caches."""
        new_caches = []
        for i, layer in enumerate(self.layers):
            cache = None if caches is None else caches[i]
            if absorbed:
                y, cache = layer.forward_absorbed(x, cache, None if weights is None else weights[i])
            else:
                y, cache = layer(x, cache)
            x = x + y
            new_caches.append(cache)
        return x, new_caches


def make_layer(p, variant: str) -> nn.Module:
    """One attention layer of the run (``p`` a compute.RunParams)."""
    attention = variant.split()[0]
    if attention == "MLA":
        return MultiHeadLatentAttention(p.d_model, p.n_heads, p.head_dim, p.kv_lora_rank, p.rope_head_dim)
    if attention == "MHA":
        return MultiHeadAttention(p.d_model, p.n_heads, p.head_dim)
    if attention == "MQA":
        return MultiQueryAttention(p.d_model, p.n_heads, p.head_dim)
    return GroupedQueryAttention(p.d_model, p.n_heads, p.head_dim, p.n_kv_heads)


def make_stack(p, variant: str, generator: torch.Generator) -> AttentionStack:
    """An AttentionStack with weights ~ N(0, 1/fan_in) drawn from ``generator`` (no global RNG)."""
    stack = AttentionStack([make_layer(p, variant) for _ in range(p.n_layers)])
    with torch.no_grad():
        for w in stack.parameters():
            nn.init.normal_(w, std=1 / math.sqrt(w.shape[1]), generator=generator)
    return stack.eval()


@torch.no_grad()
def decode_check(stack: AttentionStack, x: torch.Tensor, prompt_len: int, absorbed: bool = False):
    """Prefill ``prompt_len`` tokens, decode the rest one token at a time with the cache.

    Returns (max |cached - full recompute| over the decoded outputs, the final caches).
    x (B, T, d_model).
    """
    full, _ = stack(x, absorbed=absorbed)                        # (B, T, d_model)
    out, caches = stack(x[:, :prompt_len], absorbed=absorbed)
    steps = [out]
    for t in range(prompt_len, x.shape[1]):
        y, caches = stack(x[:, t:t + 1], caches, absorbed=absorbed)  # one token, growing cache
        steps.append(y)
    return (torch.cat(steps, 1) - full).abs().max().item(), caches


def random_caches(stack: AttentionStack, batch: int, t: int, generator: torch.Generator) -> list:
    """Caches holding ``t`` tokens per layer with random entries (timing does not depend on them)."""
    caches = []
    for layer in stack.layers:
        if isinstance(layer, MultiHeadLatentAttention):
            shapes = [(batch, t, layer.W_DKV.out_features), (batch, t, layer.rope_head_dim)]
        else:
            shapes = [(batch, layer.n_kv_heads, t, layer.head_dim)] * 2
        caches.append(tuple(torch.randn(s, generator=generator) for s in shapes))
    return caches


@torch.no_grad()
def time_decode_step(stack: AttentionStack, caches: list, x: torch.Tensor, repeats: int,
                     absorbed: bool = False) -> float:
    """Seconds of one decode step, one new token x (B, 1, d_model) after ``caches``: the fastest
    of ``repeats`` (the one least disturbed by other load on the machine)."""
    weights = [layer.absorbed_weights() for layer in stack.layers] if absorbed else None
    stack(x, caches, absorbed=absorbed, weights=weights)         # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        stack(x, caches, absorbed=absorbed, weights=weights)
        best = min(best, time.perf_counter() - start)
    return best


def cache_rows(p, generator: torch.Generator) -> list[dict]:
    """Decode step by step with each variant; measured cache bytes beside Table 1's formula."""
    from demos.attention import compute

    tokens = p.prompt_len + p.decode_steps
    x = torch.randn(p.batch_size, tokens, p.d_model, generator=generator)  # (B, T, d_model)
    rows = []
    for variant in compute.RUN_VARIANTS:
        stack = make_stack(p, variant.split()[0], torch.Generator().manual_seed(p.seed))
        error, caches = decode_check(stack, x, p.prompt_len, absorbed="absorbed" in variant)
        elements = compute.elements_per_token(compute.run_config(p, variant))
        rows.append({"variant": variant, "tokens": tokens, "elements_per_token": elements,
                     "formula_bytes": elements * tokens * p.batch_size * 4,
                     "measured_bytes": sum(cache_bytes(c) for c in caches),
                     "cache_shapes": " + ".join(str(tuple(t.shape)) for t in caches[0]),
                     "max_abs_diff_vs_full": error})
    return rows


def decode_times(p, generator: torch.Generator, report=lambda fraction, text: None) -> dict:
    """Seconds per decoded token (fastest of ``p.repeats``) against context length, for every variant."""
    from demos.attention import compute

    contexts = [t for t in compute.RUN_CONTEXTS if t <= p.max_context]
    times = {variant: [] for variant in compute.RUN_VARIANTS}
    x = torch.randn(p.batch_size, 1, p.d_model, generator=generator)      # (B, 1, d_model)
    total, done = len(contexts) * len(times), 0
    for variant in compute.RUN_VARIANTS:
        stack = make_stack(p, variant.split()[0], torch.Generator().manual_seed(p.seed))
        for t in contexts:
            report(done / total, f"{variant}: decoding after {t} tokens")
            caches = random_caches(stack, p.batch_size, t, generator)
            times[variant].append(time_decode_step(stack, caches, x, p.repeats, "absorbed" in variant))
            done += 1
    return {"contexts": contexts, "seconds": times}


def real_run(p, report=lambda fraction, text: None) -> dict:
    """The tab's run: cache sizes from step-by-step decoding, then decode time against context."""
    generator = torch.Generator().manual_seed(p.seed)
    with single_thread():
        report(0.0, "decoding step by step")
        rows = cache_rows(p, generator)
        timing = decode_times(p, generator, lambda f, text: report(0.1 + 0.9 * f, text))
    return {"cache": rows, "timing": timing, "threads": 1, "dtype": "fp32", "torch": torch.__version__}
