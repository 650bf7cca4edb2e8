"""KV-cache sizes of MHA, GQA, MQA and MLA (pure Python/numpy, no torch: it must be instant).

Symbols follow the DeepSeek-V2 paper (arXiv:2405.04434), Table 1:

    l      n_layers        number of transformer layers
    n_h    n_heads         query heads per layer
    d_h    head_dim        dimension of one head
    n_g    n_kv_heads      key/value heads (groups) in GQA
    d_c    kv_lora_rank    MLA's compressed latent c_t^KV
    d_h^R  rope_head_dim   MLA's decoupled RoPE key k_t^R (shared by all heads)

KV cache per token, in elements, over all layers:

    MHA  2 * n_h * d_h * l        every query head has its own key and value
    GQA  2 * n_g * d_h * l        n_h / n_g query heads share one key/value head
    MQA  2 * d_h * l              all query heads share one key/value head (GQA with n_g = 1)
    MLA  (d_c + d_h^R) * l        one latent and one RoPE key, shared by all heads

Bytes: ``bytes_per_token = ceil(elements_per_token * bits / 8)`` (only int4 can round: half a
byte per element, rounded up per token); ``total_bytes = bytes_per_token * seq_len * batch_size``.
Memory sizes are decimal: 1 GB = 1e9 bytes, as GPU vendors label their cards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from playground.validate import check_choice, check_float, check_int, parse_json, shown

ATTENTIONS = ("MHA", "GQA", "MQA", "MLA")
# Bits per stored element of each precision.
PRECISION_BITS = {"fp32": 32, "fp16": 16, "bf16": 16, "fp8": 8, "int4": 4}
PRECISIONS = tuple(PRECISION_BITS)
# The Table 1 "capability" column of the DeepSeek-V2 paper.
CAPABILITY = {"MHA": "Strong", "GQA": "Moderate", "MQA": "Weak", "MLA": "Stronger"}
FORMULA = {"MHA": "2·n_h·d_h·l", "GQA": "2·n_g·d_h·l", "MQA": "2·d_h·l", "MLA": "(d_c + d_h^R)·l"}
GPUS = (("24 GB (RTX 4090, A10)", 24), ("40 GB (A100 40GB)", 40), ("80 GB (A100/H100 80GB)", 80),
        ("141 GB (H200)", 141))
GB = 10**9

# Valid range of every integer field: (low, high). Beyond these a request is refused.
LIMITS = {"n_layers": (1, 1_000), "n_heads": (1, 1_024), "head_dim": (1, 4_096),
          "n_kv_heads": (1, 1_024), "kv_lora_rank": (1, 65_536), "rope_head_dim": (1, 4_096),
          "seq_len": (1, 16_777_216), "batch_size": (1, 65_536)}
MAX_PARAMS = 1e14  # parameters (100 trillion), for the weights-memory estimate
CONFIG_KEYS = ("attention", "n_layers", "n_heads", "head_dim", "n_kv_heads", "kv_lora_rank",
               "rope_head_dim", "n_params", "name")


@dataclass(frozen=True)
class AttentionConfig:
    """One model's attention shape. ``n_kv_heads`` is n_h for MHA, 1 for MQA, 0 for MLA."""

    name: str = "custom"
    attention: str = "MLA"
    n_layers: int = 60          # l
    n_heads: int = 128          # n_h
    head_dim: int = 128         # d_h
    n_kv_heads: int = 0         # n_g (GQA); n_h (MHA); 1 (MQA); unused (MLA)
    kv_lora_rank: int = 0       # d_c (MLA only)
    rope_head_dim: int = 0      # d_h^R (MLA only)
    n_params: float = 0.0       # total parameters, for the weights' memory (0 = unknown)


def _preset(name, attention, l, n_h, d_h, n_g=0, d_c=0, d_r=0, n_params=0.0) -> AttentionConfig:
    if attention == "MHA":
        n_g = n_h
    if attention == "MQA":
        n_g = 1
    return AttentionConfig(name, attention, l, n_h, d_h, n_g, d_c, d_r, n_params)


# Published configs (sources per line). Parameter counts, used only for the weights' memory: for
# the dense models recounted from config.json (embeddings, attention, MLP; norms are negligible),
# which agrees with the figures their model cards give; for DeepSeek-V2 and -Lite the paper's
# total (all experts: every one must be in memory, though only 21B / 2.4B are active per token).
PRESETS = {
    # meta-llama/Llama-2-7b-hf config.json: 32 layers, 32 heads, hidden 4096 (d_h 128), no GQA;
    # 6.74B parameters (Llama 2 paper, arXiv:2307.09288).
    "Llama-2-7B": _preset("Llama-2-7B", "MHA", 32, 32, 128, n_params=6.74e9),
    # meta-llama/Llama-2-70b-hf config.json: 80 layers, 64 heads, num_key_value_heads 8,
    # hidden 8192 (d_h 128); 68.98B parameters.
    "Llama-2-70B": _preset("Llama-2-70B", "GQA", 80, 64, 128, 8, n_params=68.98e9),
    # meta-llama/Meta-Llama-3-8B config.json: 32 layers, 32 heads, 8 kv heads, hidden 4096;
    # 8.03B parameters.
    "Llama-3-8B": _preset("Llama-3-8B", "GQA", 32, 32, 128, 8, n_params=8.03e9),
    # mistralai/Mistral-7B-v0.1 config.json: 32 layers, 32 heads, 8 kv heads, hidden 4096;
    # 7.24B parameters.
    "Mistral-7B": _preset("Mistral-7B", "GQA", 32, 32, 128, 8, n_params=7.24e9),
    # deepseek-ai/deepseek-llm-67b-base config.json and DeepSeek LLM paper (arXiv:2401.02954)
    # Table 2: 95 layers, 64 heads, 8 kv heads, hidden 8192 (d_h 128); 67.4B parameters.
    "DeepSeek-67B": _preset("DeepSeek-67B", "GQA", 95, 64, 128, 8, n_params=67.4e9),
    # tiiuae/falcon-7b config.json: 32 layers, 71 heads, multi_query, hidden 4544 (d_h 64);
    # 6.92B parameters counted with tied embeddings (model card: "7B").
    "Falcon-7B": _preset("Falcon-7B", "MQA", 32, 71, 64, n_params=6.92e9),
    # deepseek-ai/DeepSeek-V2 config.json and paper Section 3.1.2: 60 layers, 128 heads,
    # qk_nope_head_dim = v_head_dim = 128, kv_lora_rank 512, qk_rope_head_dim 64; 236B parameters.
    "DeepSeek-V2": _preset("DeepSeek-V2", "MLA", 60, 128, 128, d_c=512, d_r=64, n_params=236e9),
    # deepseek-ai/DeepSeek-V2-Lite config.json and paper Appendix B: 27 layers, 16 heads,
    # d_h 128, kv_lora_rank 512, qk_rope_head_dim 64; 15.7B parameters.
    "DeepSeek-V2-Lite": _preset("DeepSeek-V2-Lite", "MLA", 27, 16, 128, d_c=512, d_r=64,
                                n_params=15.7e9),
}
DEFAULT_PRESET = "DeepSeek-V2"


@dataclass(frozen=True)
class CacheParams:
    """Everything the tab's sizes view depends on."""

    config: AttentionConfig = PRESETS[DEFAULT_PRESET]
    seq_len: int = 32_768       # T, tokens in the context
    batch_size: int = 1         # B, sequences served at once
    dtype: str = "bf16"         # precision of the cached keys/values
    weight_dtype: str = "bf16"  # precision of the weights (for "what fits")


# ----------------------------------------------------------------------------- validation
def check_config(cfg: AttentionConfig) -> AttentionConfig:
    """Validate every field of ``cfg`` (ranges, divisibility); return it normalised."""
    attention = check_choice("attention", cfg.attention, ATTENTIONS)
    n_layers = check_int("n_layers", cfg.n_layers, *LIMITS["n_layers"])
    n_heads = check_int("n_heads", cfg.n_heads, *LIMITS["n_heads"])
    head_dim = check_int("head_dim", cfg.head_dim, *LIMITS["head_dim"])
    n_params = check_float("n_params", cfg.n_params, 0.0, MAX_PARAMS)
    n_kv, d_c, d_r = {"MHA": n_heads, "MQA": 1}.get(attention, 0), 0, 0
    if attention == "GQA":
        n_kv = check_int("n_kv_heads", cfg.n_kv_heads, 1, n_heads)
        if n_heads % n_kv:
            raise ValueError(f"n_heads ({n_heads}) must be divisible by n_kv_heads ({n_kv}); "
                             f"valid n_kv_heads: {', '.join(map(str, divisors(n_heads)))}")
    if attention == "MLA":
        d_c = check_int("kv_lora_rank", cfg.kv_lora_rank, *LIMITS["kv_lora_rank"])
        d_r = check_int("rope_head_dim", cfg.rope_head_dim, *LIMITS["rope_head_dim"])
    return AttentionConfig(str(cfg.name)[:64], attention, n_layers, n_heads, head_dim, n_kv,
                           d_c, d_r, n_params)


def divisors(n: int) -> list[int]:
    """The divisors of ``n`` (the valid n_kv_heads for n_h = n)."""
    return [d for d in range(1, n + 1) if n % d == 0]


def config_from_dict(obj: dict) -> AttentionConfig:
    """An AttentionConfig from the API's JSON object (see ``CONFIG_KEYS``), validated."""
    unknown = sorted(set(obj) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"config has unknown key(s) {', '.join(unknown)}; "
                         f"valid keys: {', '.join(CONFIG_KEYS)}")
    attention = check_choice("attention", obj.get("attention"), ATTENTIONS)
    required = ["n_layers", "n_heads", "head_dim"] + {
        "GQA": ["n_kv_heads"], "MLA": ["kv_lora_rank", "rope_head_dim"]}.get(attention, [])
    missing = [key for key in required if key not in obj]
    if missing:
        raise ValueError(f"config for {attention} is missing key(s) {', '.join(missing)} "
                         f"(required: attention, {', '.join(required)})")
    cfg = check_config(AttentionConfig(
        str(obj.get("name", "custom")), attention, obj["n_layers"], obj["n_heads"], obj["head_dim"],
        obj.get("n_kv_heads", 0), obj.get("kv_lora_rank", 0), obj.get("rope_head_dim", 0),
        obj.get("n_params", 0.0)))
    # MHA and MQA fix n_kv_heads; a contradicting value is a mistake worth naming.
    if attention in ("MHA", "MQA") and "n_kv_heads" in obj:
        expected = cfg.n_kv_heads
        given = check_int("n_kv_heads", obj["n_kv_heads"], 1, LIMITS["n_kv_heads"][1])
        if given != expected:
            raise ValueError(f"n_kv_heads must be {expected} for {attention} "
                             f"({'n_heads' if attention == 'MHA' else 'one shared head'}), got {given}")
    return cfg


def parse_config(config: Any) -> AttentionConfig:
    """A preset name, a JSON object (as text or dict), or an AttentionConfig -> validated config."""
    if isinstance(config, AttentionConfig):
        return check_config(config)
    if isinstance(config, dict):
        return config_from_dict(config)
    if not isinstance(config, str) or not config.strip():
        raise ValueError(f"config must be a preset name ({', '.join(PRESETS)}) or a JSON object; "
                         f"got {shown(config)}")
    text = config.strip()
    if text in PRESETS:
        return PRESETS[text]
    if not text.startswith(("{", "[")):
        raise ValueError(f"config: unknown preset {shown(text)}; presets: {', '.join(PRESETS)} "
                         "(or pass a JSON object)")
    try:
        obj = parse_json("config", text)
    except ValueError as err:
        raise ValueError(f"{err}; expected an object with keys {', '.join(CONFIG_KEYS[:7])}") from None
    if not isinstance(obj, dict):
        raise ValueError("config must be a JSON object, e.g. "
                         '{"attention": "GQA", "n_layers": 32, "n_heads": 32, "head_dim": 128, '
                         '"n_kv_heads": 8}')
    return config_from_dict(obj)


def check_params(params: CacheParams) -> CacheParams:
    """Validate a whole CacheParams (config, T, B and both precisions)."""
    return CacheParams(parse_config(params.config),
                       check_int("seq_len", params.seq_len, *LIMITS["seq_len"]),
                       check_int("batch_size", params.batch_size, *LIMITS["batch_size"]),
                       check_choice("dtype", params.dtype, PRECISIONS),
                       check_choice("weight_dtype", params.weight_dtype, PRECISIONS))


# ----------------------------------------------------------------------------- sizes
def elements_per_layer(cfg: AttentionConfig) -> int:
    """Cached elements per token in one layer: 2·n_g·d_h (MHA, GQA, MQA) or d_c + d_h^R (MLA)."""
    if cfg.attention == "MLA":
        return cfg.kv_lora_rank + cfg.rope_head_dim
    return 2 * cfg.n_kv_heads * cfg.head_dim


def elements_per_token(cfg: AttentionConfig) -> int:
    """Table 1 of DeepSeek-V2: cached elements per token over all l layers."""
    return elements_per_layer(cfg) * cfg.n_layers


def bytes_for(elements: int, dtype: str) -> int:
    """Bytes to store ``elements`` values at ``dtype``: ceil(elements · bits / 8)."""
    return -(-elements * PRECISION_BITS[dtype] // 8)


def equivalent_groups(cfg: AttentionConfig) -> float:
    """n_g of the GQA with the same cache: elements / (2·d_h·l); 2.25 for DeepSeek-V2's MLA."""
    return elements_per_token(cfg) / (2 * cfg.head_dim * cfg.n_layers)


def same_shape(cfg: AttentionConfig, attention: str) -> AttentionConfig:
    """``cfg``'s l, n_h, d_h with another attention variant, for comparison.

    GQA keeps the model's n_g if it has one, else the largest divisor of n_h up to 8;
    MLA keeps the model's d_c, d_h^R if it has them, else DeepSeek-V2's d_c = 4·d_h, d_h^R = d_h/2.
    """
    if attention == cfg.attention:
        return cfg
    n_kv = {"MHA": cfg.n_heads, "MQA": 1, "MLA": 0}.get(attention)
    if attention == "GQA":
        n_kv = cfg.n_kv_heads if cfg.attention == "GQA" else max(
            d for d in divisors(cfg.n_heads) if d <= 8)
    mla = cfg.attention == "MLA"
    d_c = cfg.kv_lora_rank if mla else 4 * cfg.head_dim
    d_r = cfg.rope_head_dim if mla else max(1, cfg.head_dim // 2)
    if attention != "MLA":
        d_c = d_r = 0
    return replace(cfg, name=f"{attention} ({cfg.name} shape)", attention=attention,
                   n_kv_heads=n_kv, kv_lora_rank=d_c, rope_head_dim=d_r)


def kv_cache(config: Any, seq_len: Any, batch_size: Any, dtype: Any) -> dict:
    """The ``kv_cache`` endpoint: validated inputs -> the cache's size as plain JSON numbers."""
    return cache_numbers(check_params(CacheParams(config, seq_len, batch_size, dtype)))


def cache_numbers(p: CacheParams) -> dict:
    """``kv_cache``'s numbers for already validated params."""
    cfg = p.config
    elements = elements_per_token(cfg)
    per_token = bytes_for(elements, p.dtype)
    mha = elements_per_token(same_shape(cfg, "MHA"))
    return {
        "model": cfg.name, "attention": cfg.attention, "formula": FORMULA[cfg.attention],
        "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "head_dim": cfg.head_dim,
        "n_kv_heads": cfg.n_kv_heads if cfg.attention != "MLA" else None,
        "kv_lora_rank": cfg.kv_lora_rank or None, "rope_head_dim": cfg.rope_head_dim or None,
        "seq_len": p.seq_len, "batch_size": p.batch_size, "dtype": p.dtype,
        "bits_per_element": PRECISION_BITS[p.dtype],
        "elements_per_token_per_layer": elements_per_layer(cfg),
        "elements_per_token": elements, "bytes_per_token": per_token,
        "total_bytes": per_token * p.seq_len * p.batch_size,
        "total_gb": per_token * p.seq_len * p.batch_size / GB,
        "mha_elements_per_token": mha, "reduction_vs_mha": 1 - elements / mha,
        "equivalent_gqa_groups": equivalent_groups(cfg),
        "rounding": "bytes_per_token = ceil(elements_per_token * bits / 8); "
                    "total_bytes = bytes_per_token * seq_len * batch_size",
    }


def sizes_table(p: CacheParams) -> list[dict]:
    """One row per variant at the chosen model's shape (the model's own variant first)."""
    order = [p.config.attention] + [a for a in ATTENTIONS if a != p.config.attention]
    mha = elements_per_token(same_shape(p.config, "MHA"))
    rows = []
    for attention in order:
        cfg = same_shape(p.config, attention)
        elements = elements_per_token(cfg)
        per_token = bytes_for(elements, p.dtype)
        rows.append({"variant": attention, "model": cfg.name, "formula": FORMULA[attention],
                     "elements_per_token": elements, "bytes_per_token": per_token,
                     "cache_bytes": per_token * p.seq_len * p.batch_size,
                     "gqa_groups": equivalent_groups(cfg), "reduction_vs_mha": 1 - elements / mha,
                     "capability": CAPABILITY[attention]})
    return rows


def context_grid(seq_len: int, points: int = 48) -> np.ndarray:
    """Context lengths for the memory plot: log-spaced from 128 to 4x beyond the chosen T."""
    top = max(2**20, 4 * seq_len)
    return np.unique(np.round(np.geomspace(128, top, points)).astype(np.int64))  # (P,)


def memory_curves(p: CacheParams, contexts: np.ndarray) -> dict[str, np.ndarray]:
    """Cache bytes against context length for each variant at the model's shape: (P,) each."""
    curves = {}
    for attention in ATTENTIONS:
        per_token = bytes_for(elements_per_token(same_shape(p.config, attention)), p.dtype)
        curves[attention] = contexts.astype(np.float64) * per_token * p.batch_size
    return curves


def weights_bytes(cfg: AttentionConfig, weight_dtype: str) -> int:
    """Memory of the model's weights: n_params · bits / 8 (0 when n_params is unknown)."""
    return bytes_for(int(round(cfg.n_params)), weight_dtype)


def gpu_fits(p: CacheParams) -> list[dict]:
    """For each GPU: the longest context at batch B and the largest batch at context T that
    fit beside the weights: free = GPU - weights;  T_max = floor(free / (bytes_per_token · B)).

    Activations and framework overhead are ignored, so these are upper bounds.
    """
    per_token = bytes_for(elements_per_token(p.config), p.dtype)
    weights = weights_bytes(p.config, p.weight_dtype)
    rows = []
    for label, size_gb in GPUS:
        free = size_gb * GB - weights
        rows.append({"gpu": label, "gpu_gb": size_gb, "weights_gb": weights / GB,
                     "free_gb": max(free, 0) / GB,
                     "max_context": free // (per_token * p.batch_size) if free > 0 else 0,
                     "max_batch": free // (per_token * p.seq_len) if free > 0 else 0,
                     "max_context_cache_only": size_gb * GB // (per_token * p.batch_size)})
    return rows


@dataclass(frozen=True)
class CacheView:
    """Everything the tab's sizes view shows for one ``CacheParams``, computed once per change
    (the figures and tables only format it)."""

    params: CacheParams  # validated
    numbers: dict  # cache_numbers: what the kv_cache endpoint returns
    sizes: list[dict]  # sizes_table
    fits: list[dict]  # gpu_fits
    contexts: np.ndarray  # (P,) context_grid
    curves: dict[str, np.ndarray]  # memory_curves: (P,) bytes per variant


def cache_view(p: CacheParams) -> CacheView:
    """The sizes view of validated params (``check_params``: done once, by the caller)."""
    contexts = context_grid(p.seq_len)
    return CacheView(p, cache_numbers(p), sizes_table(p), gpu_fits(p), contexts, memory_curves(p, contexts))


def kv_group_of_head(n_heads: int, n_kv_heads: int) -> np.ndarray:
    """Which key/value head each query head reads: head i -> i // (n_h / n_g). Shape (n_h,)."""
    return np.arange(n_heads) // (n_heads // n_kv_heads)


def paper_reduction() -> dict:
    """Derived: how DeepSeek-V2's "KV cache reduced by 93.3%" against DeepSeek 67B can arise.

    Elements alone:  1 - (d_c + d_h^R)·60 / (2·8·128·95) = 1 - 34,560 / 194,560 ≈ 82.2%.
    The paper also stores the cache at about 6 bits per element (Section 3.2.3) against
    16-bit (bf16) for DeepSeek 67B:  1 - 34,560·6 / (194,560·16) ≈ 93.3%.
    """
    v2 = elements_per_token(PRESETS["DeepSeek-V2"])
    ds67 = elements_per_token(PRESETS["DeepSeek-67B"])
    return {"deepseek_v2_elements": v2, "deepseek_67b_elements": ds67,
            "element_reduction": 1 - v2 / ds67, "v2_bits": 6, "ds67_bits": 16,
            "byte_reduction": 1 - v2 * 6 / (ds67 * 16)}


# ----------------------------------------------------------------------------- the real run
RUN_VARIANTS = ("MHA", "GQA", "MQA", "MLA", "MLA (absorbed)")
RUN_CONTEXTS = (256, 512, 1024, 2048, 4096, 8192, 16384)


@dataclass(frozen=True)
class RunParams:
    """Small dimensions for the torch run on CPU (``demos.attention.modules``)."""

    d_model: int = 256
    n_layers: int = 2           # l
    n_heads: int = 8            # n_h
    head_dim: int = 32          # d_h
    n_kv_heads: int = 2         # n_g for the GQA module
    kv_lora_rank: int = 128     # d_c = 4·d_h, as in DeepSeek-V2
    rope_head_dim: int = 16     # d_h^R = d_h/2, as in DeepSeek-V2
    batch_size: int = 1
    prompt_len: int = 16        # tokens prefilled before step-by-step decoding
    decode_steps: int = 48      # tokens decoded one at a time (cache grows by one each step)
    max_context: int = 8192     # the decode-time curve runs over RUN_CONTEXTS up to this
    repeats: int = 10           # timed decode steps per context (fastest reported)
    seed: int = 0


def check_run(p: RunParams) -> RunParams:
    """Validate the user-facing fields of a run (the rest are fixed small dimensions)."""
    max_context = check_int("max_context", p.max_context, RUN_CONTEXTS[0], RUN_CONTEXTS[-1])
    if max_context not in RUN_CONTEXTS:
        raise ValueError(f"max_context must be one of {', '.join(map(str, RUN_CONTEXTS))}; "
                         f"got {max_context}")
    return replace(p, max_context=max_context, seed=check_int("seed", p.seed, 0, 2**31 - 1),
                   repeats=check_int("repeats", p.repeats, 1, 50))


def run_config(p: RunParams, variant: str) -> AttentionConfig:
    """The AttentionConfig of one module in the run, for the formula beside the measurement."""
    attention = variant.split()[0]
    n_kv = {"MHA": p.n_heads, "GQA": p.n_kv_heads, "MQA": 1}.get(attention, 0)
    mla = attention == "MLA"
    return AttentionConfig(variant, attention, p.n_layers, p.n_heads, p.head_dim, n_kv,
                           p.kv_lora_rank if mla else 0, p.rope_head_dim if mla else 0)


def config_from_controls(attention: Any, n_layers: Any, n_heads: Any, head_dim: Any, n_kv_heads: Any,
                         kv_lora_rank: Any, rope_head_dim: Any, n_params_billion: Any) -> AttentionConfig:
    """The custom mode's controls -> a validated AttentionConfig (n_params given in billions).

    n_kv_heads is read only for GQA (MHA fixes it to n_h, MQA to 1); d_c, d_h^R only for MLA.
    """
    billions = check_float("n_params (billions)", n_params_billion, 0.0, MAX_PARAMS / 1e9)
    obj = {"name": "Custom", "attention": attention, "n_layers": n_layers, "n_heads": n_heads,
           "head_dim": head_dim, "kv_lora_rank": kv_lora_rank, "rope_head_dim": rope_head_dim,
           "n_params": billions * 1e9}
    if attention == "GQA":
        obj["n_kv_heads"] = n_kv_heads
    return config_from_dict(obj)
