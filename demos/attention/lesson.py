"""What the Attention cache lesson asks, computed from the tab's compute (no gradio).

Each function takes the tab's ``Controls`` for a step's view (``demos/attention/lesson.md``)."""

from demos.attention import compute


def cache_gb(controls) -> float:
    """The KV cache of B sequences of T tokens, in GB (10^9 bytes)."""
    return compute.cache_numbers(controls.params())["total_gb"]


def smaller_than_mha(controls) -> str:
    """How many times smaller than MHA at the same shape the model's cache is, as the option reads."""
    ratio = 1 / (1 - compute.cache_numbers(controls.params())["reduction_vs_mha"])
    return "the same size" if round(ratio) == 1 else f"{round(ratio)}x smaller"


def gqa_groups(controls) -> float:
    """MLA's cache expressed as the number of GQA groups that would cache as much."""
    return compute.cache_numbers(controls.params())["equivalent_gqa_groups"]


def fits_24gb(controls) -> bool:
    """Weights and a cache of B sequences of T tokens fit on the 24 GB GPU."""
    p = controls.params()
    return compute.gpu_fits(p)[0]["max_context"] >= p.seq_len
