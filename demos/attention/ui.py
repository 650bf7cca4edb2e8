"""Attention cache tab: KV-cache sizes of MHA, GQA, MQA and MLA, who shares what, and a real run.

Run alone with ``python -m demos.attention.ui``. Imports no torch: the real run imports
``demos.attention.modules`` when its button is pressed.
"""

from __future__ import annotations

import csv
import functools
import json
from dataclasses import dataclass, replace

import gradio as gr

from demos.attention import TAB

from demos.attention import compute, figures
from playground import tempfiles
from playground.ui_helpers import (Api, Binding, Opening, api_errors, explanation, model_event, progress_steps, run_steps,
                                   user_errors)

CUSTOM = "Custom"
SHAPE_FIELDS = ("n_layers", "n_heads", "head_dim", "n_kv_heads", "kv_lora_rank", "rope_head_dim")

INTRO = """
### How big is the KV cache, and why does DeepSeek-V2's MLA make it so small?
While a transformer generates, it keeps every past token's keys and values (the **KV cache**).
Pick a model or build your own, drag the context length, and see what each attention variant
stores per token, how long a context fits on a GPU beside the weights, and which query heads
share which keys and values. Below, the four variants run for real in torch.
"""


def explanation_text() -> str:
    d = compute.paper_reduction()
    v2, ds67 = (f"{d[k]:,}".replace(",", "{,}") for k in ("deepseek_v2_elements", "deepseek_67b_elements"))
    return f"""
**Cached elements per token, over all $l$ layers** (DeepSeek-V2 paper, Table 1):

| variant | cache per token | what is shared |
|---|---|---|
| MHA | $2 n_h d_h l$ | nothing: every query head has its own key and value head |
| GQA | $2 n_g d_h l$ | $n_h / n_g$ query heads share each of $n_g$ key/value heads |
| MQA | $2 d_h l$ | all query heads share one key/value head (GQA with $n_g = 1$) |
| MLA | $(d_c + d_h^R)\\, l$ | one latent $c^{{KV}}_t$ of size $d_c$ and one RoPE key $k^R_t$ of size $d_h^R$, shared by all heads |

MLA caches $c^{{KV}}_t = W^{{DKV}} h_t$ and rebuilds each head's key and value from it:
$k^C_{{t,i}} = W^{{UK}}_i c^{{KV}}_t$, $v^C_{{t,i}} = W^{{UV}}_i c^{{KV}}_t$. Because
$q_i^\\top W^{{UK}}_i c = (W^{{UK\\top}}_i q_i)^\\top c$, $W^{{UK}}$ can be **absorbed** into the query
and $W^{{UV}}$ into the output $W^O$, so decoding never forms per-head keys or values. RoPE does not
commute with that trick, hence the small decoupled key $k^R_t$ shared by all heads.
With DeepSeek-V2's $d_c = 4 d_h$ and $d_h^R = d_h/2$, MLA stores $4.5\\, d_h l$ per token: the
same as **GQA with 2.25 groups**, while the paper reports quality above MHA.

Bytes: fp32 4, fp16/bf16 2, fp8 1, int4 ½ per element; bytes per token $= \\lceil$elements$\\cdot$bits$/8\\rceil$,
total $=$ bytes per token $\\cdot T \\cdot B$. GB means $10^9$ bytes. "What fits" subtracts the weights
($N \\cdot$ bits$/8$) from the GPU and ignores activations and framework overhead: an upper bound.

**Where the paper's "93.3% smaller KV cache than DeepSeek 67B" comes from (derived by us; the paper
does not spell out this arithmetic).** DeepSeek 67B (GQA, $l = 95$, $n_g = 8$, $d_h = 128$) caches
{d['deepseek_67b_elements']:,} elements per token; DeepSeek-V2 (MLA, $l = 60$, $d_c + d_h^R = 576$)
caches {d['deepseek_v2_elements']:,}. Element counts alone give a reduction of
**{d['element_reduction']:.1%}**. The paper also quantizes DeepSeek-V2's KV cache to about
{d['v2_bits']} bits per element on average (Section 3.2.3); against a {d['ds67_bits']}-bit cache for
DeepSeek 67B: $1 - {v2} \\cdot {d['v2_bits']} / ({ds67} \\cdot {d['ds67_bits']})$
$=$ **{d['byte_reduction']:.1%}**, the paper's figure.
"""


def paper_note() -> str:
    d = compute.paper_reduction()
    return (f"*Derived (our arithmetic; see \"What am I looking at?\")*: the paper's **93.3%** smaller "
            f"KV cache for DeepSeek-V2 against DeepSeek 67B is {d['element_reduction']:.1%} from element "
            f"counts ({d['deepseek_v2_elements']:,} vs {d['deepseek_67b_elements']:,} per token) and "
            f"{d['byte_reduction']:.1%} once DeepSeek-V2's cache is stored at ~{d['v2_bits']} bits per "
            f"element against {d['ds67_bits']}.")


# ----------------------------------------------------------------------------- inputs -> params
_DEFAULT = compute.PRESETS[compute.DEFAULT_PRESET]


@dataclass(frozen=True)
class Controls:
    """The tab's controls: a preset or a custom shape (every symbol of the formula, N in billions),
    then the context, the batch and both precisions. ``params()`` is the one place they become a
    validated ``CacheParams``."""

    preset: str = compute.DEFAULT_PRESET
    attention: str = _DEFAULT.attention
    n_layers: int = _DEFAULT.n_layers
    n_heads: int = _DEFAULT.n_heads
    head_dim: int = _DEFAULT.head_dim
    n_kv_heads: int = 8
    kv_lora_rank: int = _DEFAULT.kv_lora_rank
    rope_head_dim: int = _DEFAULT.rope_head_dim
    n_params_billion: float = round(_DEFAULT.n_params / 1e9, 3)
    seq_len: int = compute.CacheParams.seq_len
    batch_size: int = compute.CacheParams.batch_size
    dtype: str = compute.CacheParams.dtype
    weight_dtype: str = compute.CacheParams.weight_dtype

    def config(self) -> compute.AttentionConfig:
        """The chosen preset, or the custom numbers."""
        if self.preset == CUSTOM:
            return compute.config_from_controls(self.attention, self.n_layers, self.n_heads, self.head_dim,
                                                self.n_kv_heads, self.kv_lora_rank, self.rope_head_dim,
                                                self.n_params_billion)
        return compute.parse_config(compute.check_choice("preset", self.preset, [*compute.PRESETS, CUSTOM]))

    def params(self) -> compute.CacheParams:
        return compute.check_params(compute.CacheParams(self.config(), self.seq_len, self.batch_size, self.dtype,
                                                        self.weight_dtype))


def snap_kv_heads(c: Controls) -> Controls:
    """GQA needs n_g to divide n_h: in Custom mode an n_kv_heads that does not becomes the nearest
    divisor, with a warning, and the box is set to it (issue 14: the box kept 7 while the summary
    used 8, and the download failed). Anything else wrong is left to ``params()`` to name."""
    if c.preset != CUSTOM or c.attention != "GQA":
        return c
    try:
        n_h, n_g = int(c.n_heads), int(c.n_kv_heads)
    except (TypeError, ValueError, OverflowError):
        return c
    low, high = compute.LIMITS["n_heads"]
    if n_h != c.n_heads or n_g != c.n_kv_heads or not low <= n_h <= high or (n_g >= 1 and n_h % n_g == 0):
        return c
    valid = compute.divisors(n_h)
    used = min(valid, key=lambda d: (abs(d - n_g), d))
    gr.Warning(f"n_kv_heads = {n_g} does not divide n_heads = {n_h}: using {used} "
               f"(valid: {', '.join(map(str, valid))}).")
    return replace(c, n_kv_heads=used)


def api_args(c: Controls) -> dict:
    """The kv_cache call: the preset's name, or the custom shape as a JSON object."""
    cfg = c.config()
    if c.preset == CUSTOM:
        shape = {"attention": cfg.attention, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "head_dim": cfg.head_dim}
        shape.update({"GQA": {"n_kv_heads": cfg.n_kv_heads},
                      "MLA": {"kv_lora_rank": cfg.kv_lora_rank, "rope_head_dim": cfg.rope_head_dim}}.get(cfg.attention, {}))
        config = json.dumps(shape)
    else:
        config = c.preset
    return {"config": config, "seq_len": c.seq_len, "batch_size": c.batch_size, "dtype": c.dtype}


# ----------------------------------------------------------------------------- formatting
def headline(view: compute.CacheView) -> str:
    p, r = view.params, view.numbers
    c = p.config
    shape = {"MLA": f"d_c = {c.kv_lora_rank}, d_h^R = {c.rope_head_dim}",
             "GQA": f"n_g = {c.n_kv_heads}"}.get(c.attention, f"n_g = {c.n_kv_heads}")
    return (f"**{c.name}** ({c.attention}; l = {c.n_layers}, n_h = {c.n_heads}, d_h = {c.head_dim}, {shape}): "
            f"**{r['elements_per_token']:,}** elements per token = **{r['bytes_per_token']:,} bytes** "
            f"per token at {p.dtype}; T = {p.seq_len:,} × B = {p.batch_size} → **{r['total_gb']:.3g} GB**. "
            f"Same cache as GQA with **{r['equivalent_gqa_groups']:.3g}** groups; "
            f"**{r['reduction_vs_mha']:.1%}** smaller than MHA of the same shape "
            f"({r['mha_elements_per_token']:,} elements).")


SIZE_HEADERS = ["variant", "model / shape", "formula", "elements / token", "bytes / token",
                "cache at T×B (GB)", "= GQA with n_g", "reduction vs MHA", "capability (paper)"]
FIT_HEADERS = ["GPU", "weights (GB)", "room left (GB)", "longest T at batch B",
               "largest B at context T", "longest T, cache alone"]


def sizes_rows(view: compute.CacheView) -> list[list]:
    return [[r["variant"], r["model"], r["formula"], f"{r['elements_per_token']:,}",
             f"{r['bytes_per_token']:,}", f"{r['cache_bytes'] / compute.GB:,.3f}",
             f"{r['gqa_groups']:g}", f"{r['reduction_vs_mha']:.1%}", r["capability"]]
            for r in view.sizes]


def fits_rows(view: compute.CacheView) -> list[list]:
    def fmt(n):
        return f"{int(n):,}" if n > 0 else "does not fit"

    return [[r["gpu"], f"{r['weights_gb']:,.1f}", f"{r['free_gb']:,.1f}", fmt(r["max_context"]),
             fmt(r["max_batch"]), fmt(r["max_context_cache_only"])] for r in view.fits]


def views(view: compute.CacheView) -> tuple:
    """What a context / batch / precision change re-renders, from one computed view."""
    return headline(view), figures.memory_figure(view), sizes_rows(view), fits_rows(view)


def shape_updates(cfg: compute.AttentionConfig, interactive: bool) -> list:
    """Control updates showing ``cfg``; fields another variant needs keep a valid default."""
    gqa, mla = compute.same_shape(cfg, "GQA"), compute.same_shape(cfg, "MLA")
    values = {"n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "head_dim": cfg.head_dim,
              "n_kv_heads": gqa.n_kv_heads, "kv_lora_rank": mla.kv_lora_rank,
              "rope_head_dim": mla.rope_head_dim}
    visible = {"n_kv_heads": cfg.attention == "GQA", "kv_lora_rank": cfg.attention == "MLA",
               "rope_head_dim": cfg.attention == "MLA"}
    updates = [gr.update(value=cfg.attention, interactive=interactive)]
    updates += [gr.update(value=values[f], interactive=interactive, visible=visible.get(f, True))
                for f in SHAPE_FIELDS]
    return updates + [gr.update(value=round(cfg.n_params / 1e9, 3), interactive=interactive)]


# ----------------------------------------------------------------------------- callbacks
# Each takes the controls (``binding.event``) and computes the view once.
def view_changed(c: Controls) -> tuple:
    """Context, batch or a precision changed: the shape and its head diagram stay."""
    return views(compute.cache_view(c.params()))


def shape_changed(c: Controls) -> tuple:
    """A custom number changed: everything, head diagram included, re-renders."""
    view = compute.cache_view(c.params())
    return (*views(view), figures.heads_figure(view.params.config))


def number_changed(c: Controls) -> tuple:
    """A custom number typed: ``shape_changed`` with the n_kv_heads used, which the box then shows."""
    c = snap_kv_heads(c)
    return (*shape_changed(c), c.n_kv_heads)


SHOWN_FOR = {"n_kv_heads": ("GQA",), "kv_lora_rank": ("MLA",), "rope_head_dim": ("MLA",)}  # the fields a variant needs


def attention_changed(c: Controls) -> tuple:
    """Custom mode's variant changed: show the fields it needs (``SHOWN_FOR``), then re-render."""
    return (*[gr.update(visible=c.attention in SHOWN_FOR[f]) for f in SHOWN_FOR], *shape_changed(c))


def preset_changed(c: Controls) -> tuple:
    """A preset fills (and locks) the shape controls; Custom unlocks them with their values."""
    p = c.params()  # a preset's numbers, not the (locked) shape controls
    return (*shape_updates(p.config, interactive=c.preset == CUSTOM), *views(compute.cache_view(p)),
            figures.heads_figure(p.config))


@api_errors
def kv_cache_api(config: str, seq_len: int, batch_size: int, dtype: str) -> dict:
    """KV-cache size of one model: config = a preset name or a JSON object (see README)."""
    return compute.kv_cache(config, seq_len, batch_size, dtype)


def run_rows(result: dict) -> list[list]:
    return [[r["variant"], r["cache_shapes"], f"{r['tokens']}", f"{r['elements_per_token']:,}",
             f"{r['formula_bytes']:,}", f"{r['measured_bytes']:,}",
             "yes" if r["formula_bytes"] == r["measured_bytes"] else "NO",
             f"{r['max_abs_diff_vs_full']:.1e}"] for r in result["cache"]]


RUN_HEADERS = ["module", "cache shapes per layer", "tokens T", "formula elements / token (l = 2)",
               "formula bytes (fp32 · T)", "measured bytes", "match", "max |cached − full recompute|"]


def absorption_note(timing: dict) -> str:
    """One sentence on what absorbing W^UK and W^UV did to MLA's decode time at the longest context."""
    t = timing["contexts"][-1]
    naive, absorbed = timing["seconds"]["MLA"][-1], timing["seconds"]["MLA (absorbed)"][-1]
    return (f"At T = {t:,}, MLA took {naive * 1e3:.2f} ms per token rebuilding every head's keys and "
            f"values from the cached latents, and {absorbed * 1e3:.2f} ms with the up-projections absorbed "
            f"({naive / absorbed:.1f}x).")


@user_errors
def on_run(max_context, seed, progress=gr.Progress()):
    """The torch run (button): measured cache bytes and decode time per token. Step-wise
    (``stepwise``): a closed tab ends it at its next measurement and frees the model slot."""
    p = compute.check_run(compute.RunParams(max_context=max_context, seed=seed))
    from demos.attention import modules  # torch: imported only when a run is asked for

    result = yield from run_steps(lambda on_step, should_stop: modules.real_run(
        p, report=progress_steps(on_step, should_stop, progress)))
    note = (f"Ran on this machine's CPU with torch {result['torch']}, {result['threads']} thread, fp32: "
            f"d_model = {p.d_model}, l = {p.n_layers}, n_h = {p.n_heads}, d_h = {p.head_dim}, "
            f"n_g = {p.n_kv_heads}, d_c = {p.kv_lora_rank}, d_h^R = {p.rope_head_dim}; "
            f"{p.prompt_len} prompt tokens, then {p.decode_steps} decoded one at a time. "
            "Times are the fastest of several steps; other load on the machine makes them noisy. "
            + absorption_note(result["timing"]))
    yield (gr.update(value=run_rows(result), visible=True),
           gr.update(value=figures.timing_figure(result["timing"]), visible=True), note, result)


def export(c: Controls, run: dict | None):
    """Write what the tab shows to a JSON file (with the last run, if any) and the sizes to CSV."""
    view = compute.cache_view(c.params())
    data = {"kv_cache": view.numbers, "weight_dtype": view.params.weight_dtype, "sizes": view.sizes,
            "gpu_fits": view.fits, "paper_93_3_derivation": compute.paper_reduction(), "real_run": run}
    folder = tempfiles.output_folder("attention_")
    (folder / "kv_cache.json").write_text(json.dumps(data, indent=2, default=str))
    with open(folder / "kv_cache_sizes.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(data["sizes"][0]))
        writer.writeheader()
        writer.writerows(data["sizes"])
    return gr.update(value=[str(folder / "kv_cache.json"), str(folder / "kv_cache_sizes.csv")],
                     visible=True)


# ----------------------------------------------------------------------------- layout
def attention_control(cfg: compute.AttentionConfig) -> gr.Radio:
    return gr.Radio(list(compute.ATTENTIONS), value=cfg.attention, label="attention variant",
                    interactive=False, scale=1,
                    info="MHA (own k,v per head), GQA (n_g groups), MQA (one k,v), MLA (latent)")


def number_controls(cfg: compute.AttentionConfig) -> dict:
    """The custom mode's numbers: every symbol of the formula, and N."""
    info = {"n_layers": "l: transformer layers", "n_heads": "n_h: query heads per layer",
            "head_dim": "d_h: dimension of one head",
            "n_kv_heads": "n_g: key/value heads (GQA); n_h must be divisible by n_g",
            "kv_lora_rank": "d_c: MLA's cached latent c^KV per token and layer",
            "rope_head_dim": "d_h^R: MLA's decoupled RoPE key, shared by all heads"}
    start = [u["value"] for u in shape_updates(cfg, interactive=False)]
    shown = {"n_kv_heads": cfg.attention == "GQA", "kv_lora_rank": cfg.attention == "MLA",
             "rope_head_dim": cfg.attention == "MLA"}
    numbers = {}
    with gr.Row():
        for field, value in zip(SHAPE_FIELDS, start[1:]):
            low, high = compute.LIMITS[field]
            numbers[field] = gr.Number(value=value, label=field, info=info[field], precision=0,
                                       minimum=low, maximum=high, interactive=False,
                                       visible=shown.get(field, True), min_width=140)
        numbers["n_params_billion"] = gr.Number(value=start[-1], label="n_params (billions)", minimum=0,
                                                interactive=False, min_width=140,
                                                info="N: total parameters, for the weights' memory")
    return numbers


def view_controls(p: compute.CacheParams) -> dict:
    seq_len = gr.Slider(256, 131_072, value=p.seq_len, step=256, label="context length T (seq_len)",
                        elem_id="attention-seq-len",
                        info="T: tokens cached per sequence (the API accepts up to 16,777,216)")
    batch_size = gr.Slider(1, 256, value=p.batch_size, step=1, label="batch size B (batch_size)",
                           info="B: sequences decoded at once; the cache grows as T·B")
    dtype = gr.Radio(list(compute.PRECISIONS), value=p.dtype, label="cache precision (dtype)",
                     info="bits per cached element: fp32 32, fp16/bf16 16, fp8 8, int4 4")
    weight_dtype = gr.Radio(list(compute.PRECISIONS), value=p.weight_dtype, label="weights precision",
                            info="bits per parameter N, for the weights beside the cache")
    return {"seq_len": seq_len, "batch_size": batch_size, "dtype": dtype, "weight_dtype": weight_dtype}


def run_section() -> tuple:
    """The real torch run: controls, outputs (hidden until the first run) and its state."""
    with gr.Accordion("Run it: MHA, GQA, MQA and MLA in torch, with a real KV cache", open=False,
                      elem_id="attention-run"):
        return _run_controls()


def _run_controls() -> tuple:
    """What the run's closed accordion holds (its detail is not needed to read the cache's size)."""
    gr.Markdown("Small modules (2 layers, 8 heads of 32 dims) decode token by token on this machine's "
                "CPU. The table compares the cache tensors' measured bytes with the formula and "
                "checks cached decoding against full recomputation; the plot times one decode step "
                "against the context length, MLA with and without the absorbed up-projections. Each "
                "step reads the whole cache (and here also copies it: the cache grows by `torch.cat`), "
                "so time follows the cache's bytes; MLA without absorption also rebuilds every head's "
                "keys and values from the latents at every step.")
    with gr.Row():
        max_context = gr.Dropdown(list(compute.RUN_CONTEXTS), value=compute.RunParams.max_context,
                                  label="longest context timed (max_context)",
                                  info="T: decode time is measured at 256, 512, ... up to this")
        seed = gr.Number(value=0, precision=0, minimum=0, label="seed",
                         info="weights and inputs ~ N(0, ·) from this seed")
        button = gr.Button("Run the attention modules (torch, CPU)", variant="primary")
    note = gr.Markdown()
    table = gr.Dataframe(headers=RUN_HEADERS, visible=False, interactive=False, wrap=True,
                         elem_id="attention-run-table",
                         column_widths=["11%", "26%", "7%", "12%", "12%", "11%", "7%", "14%"],
                         label="cache after step-by-step decoding: measured vs formula")
    plot = gr.Plot(visible=False, label="decode time per token", elem_id="attention-run-plot")
    last_run = gr.JSON(visible=False)  # not gr.State: a State makes every page hold a heartbeat open
    return button, [max_context, seed], [table, plot, note, last_run]


@dataclass(frozen=True)
class Views:
    """What the shape and view controls show: the headline, the memory plot, the two tables and the heads."""

    summary: gr.Markdown
    memory: gr.Plot
    sizes: gr.Dataframe
    fits: gr.Dataframe
    heads: gr.Plot

    @property
    def outputs(self) -> list:
        """Every view but the heads, in the events' order."""
        return [self.summary, self.memory, self.sizes, self.fits]


def build(demo: gr.Blocks) -> Binding:
    p = compute.CacheParams()
    gr.Markdown(INTRO)
    with gr.Row(equal_height=True):
        preset = gr.Dropdown([*compute.PRESETS, CUSTOM], value=compute.DEFAULT_PRESET, scale=1,
                             label="model (preset)",
                             info="published layer/head/dimension numbers; Custom makes every number editable")
        attention = attention_control(p.config)
    numbers = number_controls(p.config)
    view, v = view_section(p)
    explanation(explanation_text())
    binding = Binding(Controls, preset=preset, attention=attention, **numbers, **view, check=Controls.params,
                      api=Api("kv_cache", api_args, note="the endpoint takes no weights precision (only the "
                              "cache's size depends on the four inputs)"))
    gr.Examples([["DeepSeek-V2", 131_072, 1, "bf16"], ["DeepSeek-67B", 131_072, 1, "bf16"],
                 ["Llama-2-70B", 4_096, 32, "fp16"], ["Falcon-7B", 2_048, 64, "fp16"],
                 ["Llama-3-8B", 8_192, 16, "fp8"]], inputs=[preset, *[view[k] for k in ("seq_len", "batch_size", "dtype")]],
                label="Examples: a model, a context length, a batch, a precision")
    run_button, run_inputs, run_outputs = run_section()
    with gr.Row():
        export_button = gr.Button("Download what you see (JSON + CSV)", size="sm")
    files = gr.File(label="download", file_count="multiple", visible=False)
    on_preset = wire(binding, v.outputs, v.heads)
    run_button.click(on_run, run_inputs, run_outputs, api_visibility="private", **model_event())
    last_run = run_outputs[-1]
    export_button.click(binding.event(exported, extra=[last_run], name="on_export"), binding.inputs_with(last_run),
                        files, api_visibility="private")
    gr.api(kv_cache_api, api_name="kv_cache")
    opening = Opening(opening_figures, [v.memory, v.heads])
    shape = [binding.components[k] for k in ("attention", *SHAPE_FIELDS, "n_params_billion")]
    binding.on_open(opening, on_preset, [*shape, *v.outputs, v.heads])
    return binding


def view_section(p: compute.CacheParams) -> tuple[dict, Views]:
    """The view controls (``{field: component}``) beside the headline and the memory plot, then
    the tables and the heads."""
    view0 = compute.cache_view(p)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            view = view_controls(p)
        with gr.Column(scale=2):
            summary = gr.Markdown(headline(view0), elem_id="attention-summary")
            memory = gr.Plot(label="KV cache against context length",
                             elem_id="attention-memory")
    sizes = gr.Dataframe(value=sizes_rows(view0), headers=SIZE_HEADERS, interactive=False, wrap=True,
                         elem_id="attention-sizes",
                         label="KV cache per token, each variant at this model's shape (paper's Table 1)")
    gr.Markdown(paper_note())
    fits = gr.Dataframe(value=fits_rows(view0), headers=FIT_HEADERS, interactive=False, wrap=True,
                        label="What fits on one GPU beside the weights (upper bounds: activations ignored)")
    with gr.Accordion("Which query heads share which keys and values (a picture)", open=False,
                      elem_id="attention-heads"):
        heads = gr.Plot(label="which query heads share which keys and values")
    return view, Views(summary, memory, sizes, fits, heads)


def exported(c: Controls, last_run: dict | None):
    """Download what you see (``binding.event(exported, extra=[last_run])``)."""
    return export(snap_kv_heads(c), last_run)


@functools.lru_cache(maxsize=1)
def opening_figures() -> tuple:
    """The default model's two plots: drawn on page load, not at build (the app's start-up
    budget); cached per process."""
    p = compute.CacheParams()
    return figures.memory_figure(compute.cache_view(p)), figures.heads_figure(p.config)


def wire(binding: Binding, view_outputs: list, heads):
    """Connect the controls: a preset fills the shape; numbers re-render in Custom mode. Every event
    takes ``binding.inputs`` and computes the view once. Returns the preset's event."""
    c = binding.components
    shape = [c[k] for k in ("attention", *SHAPE_FIELDS, "n_params_billion")]
    private = {"api_visibility": "private", "trigger_mode": "always_last"}
    on_preset = binding.event(preset_changed)
    c["preset"].change(on_preset, binding.inputs, [*shape, *view_outputs, heads], **private)
    c["attention"].input(binding.event(attention_changed), binding.inputs,
                         [*[c[f] for f in SHOWN_FOR], *view_outputs, heads], **private)
    on_shape, on_view = binding.event(number_changed), binding.event(view_changed)
    for name in (*SHAPE_FIELDS, "n_params_billion"):
        c[name].input(on_shape, binding.inputs, [*view_outputs, heads, c["n_kv_heads"]], **private)
    for name in ("seq_len", "batch_size", "dtype", "weight_dtype"):
        c[name].change(on_view, binding.inputs, view_outputs, **private)
    return on_preset


if __name__ == "__main__":
    from playground import theme

    with gr.Blocks(title=TAB.title) as _demo:
        build(_demo)
    _demo.launch(**theme.launch_kwargs())
