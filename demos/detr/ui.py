"""DETR tab: object queries and Hungarian matching, made visible.

Run alone with ``python -m demos.detr.ui``. Imports no torch: the model runs in ``compute``'s
functions, which import ``demos.detr.model`` (torch, transformers) on first use.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from demos.detr import compute, figures
from playground import settings, tempfiles
from playground.models import usable_choices
from playground.ui_helpers import Api, Binding, File, Opening, api_errors, explanation, model_event
from demos.detr import TAB


EXAMPLES_DIR = settings.ASSETS_DIR / "detr_examples"
DEFAULT_OUTPUTS = EXAMPLES_DIR / "default_outputs.json"  # written by demos/detr/make_examples.py
P = compute.DetrParams()

INTRO = """
### DETR: detection as set prediction
A fixed set of **object queries** each predicts a class (or **∅ no object**) and a box; there is no
anchor and no NMS. Make a **new random scene** (its ground truth is known, so the Hungarian matching
used in training is shown below) or upload an image. The embedded model was trained by this project
on Shapes World (circles, squares, triangles); `detr-resnet-50` (COCO) works when its weights are present.
"""

EXPLANATION = r"""
**Prediction.** $N$ queries $\to$ $N$ pairs $(\hat p_j, \hat b_j)$: $\hat p_j$ a softmax over the $K$
classes and $\varnothing$, $\hat b_j = (c_x, c_y, w, h)$ as fractions of the image. Query $j$ is shown when
$\max_{c \ne \varnothing} \hat p_j(c) \ge \tau$. The attention map is the last decoder layer's
cross-attention of query $j$ over the backbone's feature map (mean over heads).

**Matching (training).** Ground truth $y = \{(c_i, b_i)\}_{i=1}^M$, $M \le N$. The optimal one-to-one
assignment is
$$\hat\sigma = \arg\min_{\sigma} \sum_{i=1}^{M} C_{i\,\sigma(i)}, \quad
C_{ij} = -w_{class}\,\hat p_j(c_i) + w_{L1}\,\lVert b_i - \hat b_j \rVert_1 - w_{GIoU}\,\mathrm{GIoU}(b_i, \hat b_j)$$
with $(w_{class}, w_{L1}, w_{GIoU}) = (1, 5, 2)$ in the paper, found exactly by the Hungarian algorithm
(`scipy.optimize.linear_sum_assignment`). $\mathrm{GIoU} = \mathrm{IoU} - |E \setminus (A \cup B)|/|E|$,
$E$ the smallest box enclosing both.

**Loss.** Matched queries learn their object; the other $N - M$ learn $\varnothing$ (weighted by
`eos_coef`):
$$\mathcal L = \underbrace{\tfrac{\sum_j -w_j \log \hat p_j(c_{\sigma^{-1}(j)})}{\sum_j w_j}}_{\text{class}}
+ \underbrace{\tfrac{w_{L1}}{M}\sum_i \lVert b_i - \hat b_{\hat\sigma(i)} \rVert_1}_{L1}
+ \underbrace{\tfrac{w_{GIoU}}{M}\sum_i \big(1 - \mathrm{GIoU}(b_i, \hat b_{\hat\sigma(i)})\big)}_{GIoU}$$
Because each object is matched to exactly one query, a second query on the same object is pushed to
$\varnothing$: that is how DETR learns not to predict duplicates, without NMS.
Changing the weights here changes the cost, possibly the assignment, and the loss terms.
"""


# ----------------------------------------------------------------------------- formatting
def detection_views(result: compute.DetrResult, threshold: float, query: int) -> tuple:
    """Annotated image, JSON, queries plot, queries table, attention map."""
    found = compute.detections_json(result, threshold)
    header, rows = compute.query_rows(result, threshold)
    query = min(int(query), len(rows) - 1)
    return (compute.draw_detections(result.image, found), found,
            figures.queries_figure(result, threshold, query),
            pd.DataFrame(rows, columns=header), compute.attention_overlay(result, query))


def matching_views(result: compute.DetrResult, truth, weights) -> tuple:
    """Cost heatmap, matching image, loss plot; or a message when there is no ground truth."""
    if truth is None:
        message = "Ground truth is known only for generated scenes: press “New random scene”."
        return figures.empty_figure(message, 420), None, figures.empty_figure(message)
    if result.model != "shapes-detr":
        message = "The matching needs the Shapes World model (its classes are the scene's)."
        return figures.empty_figure(message, 420), None, figures.empty_figure(message)
    matching = compute.match_scene(result, truth, weights)
    return (figures.cost_figure(matching, truth.labels), compute.draw_matching(result, truth, matching),
            figures.loss_figure(matching.loss))


def download(result: compute.DetrResult, truth, p: compute.DetrParams) -> str:
    """Write what the tab shows to a JSON file and return its path."""
    matching = None
    if truth is not None and result.model == "shapes-detr":
        matching = compute.match_scene(result, truth, p.weights)
    path = tempfiles.output_folder("detr_") / "detr.json"
    path.write_text(compute.report_json(result, p.threshold, matching))
    return str(path)


EXAMPLE_IMAGE = "assets/detr_examples/scene_2x.png"  # the snippet's file: yours instead


def api_args(p: compute.DetrParams) -> dict:
    return {"image": File(EXAMPLE_IMAGE), "threshold": p.threshold}


API_NOTE = ("the endpoint takes an image file and the threshold, and always runs the embedded shapes-detr "
            "(the random scenes, the query shown and the matching weights are this tab's)")


def all_views(result, truth, p: compute.DetrParams) -> tuple:
    """Every output of a new run, in ``build``'s ``everything`` order."""
    query_max = len(result.logits) - 1
    return (*detection_views(result, p.threshold, min(p.query, query_max)),
            *matching_views(result, truth, p.weights), download(result, truth, p),
            gr.update(maximum=query_max, value=min(p.query, query_max)), {"result": result, "truth": truth})


@functools.lru_cache(maxsize=1)
def default_views() -> tuple:
    """The tab's opening state from the stored outputs of the default scene (no torch), or
    placeholders when they are missing. Sent on page load, not at build (the app's start-up
    budget: the matching imports scipy, the views draw images and plots); cached per process."""
    try:
        result, truth = compute.result_from_json(DEFAULT_OUTPUTS.read_text())
    except (OSError, ValueError, KeyError):
        message = "Press “New random scene” to run DETR."
        image, _ = compute.random_scene(P.seed)
        return (image, None, None, figures.empty_figure(message), None, None,
                figures.empty_figure(message, 420), None, figures.empty_figure(message), None, P.query, {})
    views = all_views(result, truth, P)
    return (result.image, *views[:-2], P.query, views[-1])


DOWNLOAD = 9  # default_views()'s download file


def opening_views() -> tuple:
    """``default_views()``, its download written again if it is gone: the temp folder's sweeper
    deletes files older than ``PLAYGROUND_TEMP_MAX_AGE_S``, and a missing file would fail the
    page load's event (every opening view with it)."""
    views = default_views()
    state = views[-1]
    if views[DOWNLOAD] is not None and not Path(views[DOWNLOAD]).is_file() and state:
        views = (*views[:DOWNLOAD], download(state["result"], state["truth"], P), *views[DOWNLOAD + 1:])
    return views


# ----------------------------------------------------------------------------- callbacks
# Each gets the validated ``DetrParams`` of the controls (the tab's Binding) and what else it needs.
def new_scene(p: compute.DetrParams, progress=gr.Progress()):
    progress(0.1, desc="Loading the model (first time only)")
    image, truth = compute.random_scene(p.seed)
    result = compute.run_detr(image, p.model)
    return (image, *all_views(result, truth, p))


def next_seed(seed) -> int:
    """"New random scene" moves to the next seed (the same seed is the same scene)."""
    try:
        return (int(seed) + 1) % (compute.MAX_SEED + 1)
    except (TypeError, ValueError, OverflowError):
        return P.seed


def detect(p: compute.DetrParams, image, state=None, progress=gr.Progress()):
    """Detect on the image shown; keep the ground truth if it is still the generated scene."""
    progress(0.1, desc="Running DETR")
    array = compute.load_image(image)
    truth = (state or {}).get("truth")
    previous = (state or {}).get("result")
    if truth is not None and (previous is None or previous.image.shape != array.shape
                              or not (previous.image == array).all()):
        truth = None
    return all_views(compute.run_detr(array, p.model), truth, p)


def _state_result(state):
    if not state or state.get("result") is None:
        raise ValueError("Nothing detected yet: make a new random scene or upload an image.")
    return state["result"], state.get("truth")


def threshold_changed(p: compute.DetrParams, state):
    result, truth = _state_result(state)
    return (*detection_views(result, p.threshold, min(p.query, len(result.logits) - 1)), download(result, truth, p))


def query_changed(p: compute.DetrParams, state):
    result, _ = _state_result(state)
    query = compute.check_int("query", p.query, 0, len(result.logits) - 1)
    return compute.attention_overlay(result, query), figures.queries_figure(result, p.threshold, query)


def weights_changed(p: compute.DetrParams, state):
    result, truth = _state_result(state)
    return (*matching_views(result, truth, p.weights), download(result, truth, p))


@api_errors
def api_detect(image, threshold):
    """The public ``detect`` endpoint: (image file, threshold) -> (annotated image, detections)."""
    return compute.detect(image, threshold)


# ----------------------------------------------------------------------------- layout
def examples() -> list[list[str]]:
    return [[str(p)] for p in sorted(EXAMPLES_DIR.glob("*.png"))]


@dataclass
class Inputs:
    """The scene and detection controls (left) and the annotated image (right)."""

    image_in: gr.Image
    seed: gr.Number
    new_scene_btn: gr.Button
    model: gr.Dropdown
    threshold: gr.Slider
    detect_btn: gr.Button
    annotated: gr.Image


@dataclass
class Queries:
    """Every query's predictions and one query's cross-attention."""

    queries_plot: gr.Plot
    query: gr.Slider
    attention: gr.Image
    query_table: gr.Dataframe


@dataclass
class Matching:
    """Hungarian matching: the cost weights and what they give, and the downloads."""

    w_class: gr.Slider
    w_l1: gr.Slider
    w_giou: gr.Slider
    cost_plot: gr.Plot
    matching_img: gr.Image
    loss_plot: gr.Plot
    found_json: gr.JSON
    download_file: gr.File


def build(demo: gr.Blocks) -> Binding:
    gr.Markdown(INTRO)
    state = gr.State({})
    i, q, m = inputs_row(), queries_rows(), matching_rows()
    explanation(EXPLANATION)
    example_set = (gr.Examples(examples(), inputs=[i.image_in], label="Example images (no ground truth)",
                               elem_id="detr-examples") if examples() else None)
    binding = Binding(compute.DetrParams, model=i.model, threshold=i.threshold, seed=i.seed, query=q.query,
                      w_class=m.w_class, w_l1=m.w_l1, w_giou=m.w_giou, check=compute.DetrParams.checked,
                      api=Api("detect", api_args, note=API_NOTE),
                      note="The link carries the settings and the scene's seed, not an uploaded image.")
    wire(demo, binding, state, i, q, m, example_set)
    api_endpoint()
    return binding


def inputs_row() -> Inputs:
    with gr.Row():
        with gr.Column(scale=1):
            image_in = gr.Image(label="Image", elem_id="detr-image", type="filepath", image_mode=None,
                               sources=["upload", "clipboard"], height=320)  # compute decodes, safely
            with gr.Row():
                seed = gr.Number(value=P.seed, elem_id="detr-seed", precision=0, minimum=0, maximum=compute.MAX_SEED, label="Seed",
                                 info="seed of the random Shapes World scene")
                new_scene_btn = gr.Button("New random scene", variant="primary", elem_id="detr-new-scene")
            choices, missing = usable_choices(list(compute.MODEL_CHOICES))  # only the models that are here
            model = gr.Dropdown(choices, value=P.model, label="Model", elem_id="detr-model",
                                info="shapes-detr: embedded, 12 queries N; detr-resnet-50: COCO, 100 queries")
            gr.Markdown(missing, visible=bool(missing), elem_classes="gp-missing-model")
            threshold = gr.Slider(0, 1, value=P.threshold, step=0.01, label="Score threshold τ", elem_id="detr-threshold",
                                  info="show query j when max_c p̂_j(c) ≥ τ (c ≠ ∅)")
            detect_btn = gr.Button("Detect on this image")
        with gr.Column(scale=1):
            annotated = gr.Image(label="Detections (label, score)", elem_id="detr-annotated", type="pil", height=420, interactive=False)
    return Inputs(image_in, seed, new_scene_btn, model, threshold, detect_btn, annotated)


def queries_rows() -> Queries:
    with gr.Row():
        with gr.Column(scale=3):
            queries_plot = gr.Plot(label="Every query", elem_id="detr-queries")
        with gr.Column(scale=2):
            query = gr.Slider(0, 11, value=P.query, step=1, label="Query j", elem_id="detr-query",
                              info="the query whose decoder cross-attention is shown")
            attention = gr.Image(label="Cross-attention of query j (last decoder layer)", elem_id="detr-attention", type="pil",
                                 height=300, interactive=False)
    query_table = gr.Dataframe(label="Every query's prediction (boxes in the image's pixels)", elem_id="detr-table", interactive=False,
                               max_height=260)
    return Queries(queries_plot, query, attention, query_table)


def matching_rows() -> Matching:
    gr.Markdown("### Hungarian matching (generated scenes: the ground truth is known)")
    with gr.Row():
        w_class = gr.Slider(0, 10, value=P.w_class, step=0.1, label="w_class",
                            info="weight of -p̂_j(c_i) in the cost C_ij")
        w_l1 = gr.Slider(0, 10, value=P.w_l1, step=0.1, label="w_L1", info="weight of ‖b_i − b̂_j‖₁")
        w_giou = gr.Slider(0, 10, value=P.w_giou, step=0.1, label="w_GIoU", info="weight of −GIoU(b_i, b̂_j)")
    with gr.Row():
        cost_plot = gr.Plot(label="Cost matrix and assignment", elem_id="detr-cost")
        matching_img = gr.Image(label="Optimal assignment σ*: ground truth (GT) ↔ query", type="pil", height=420,
                                interactive=False)
    with gr.Accordion("Loss terms, the detections as JSON, download", open=False, elem_id="detr-more"):
        with gr.Row():  # closed: the page stays short (benchmarks/pages.py)
            loss_plot = gr.Plot(label="Loss terms")
            with gr.Column():
                found_json = gr.JSON(label="Detections (JSON, as the API returns them)", elem_id="detr-json")
                download_file = gr.File(label="Download everything shown (JSON)", interactive=False)
    return Matching(w_class, w_l1, w_giou, cost_plot, matching_img, loss_plot, found_json, download_file)


def checked(fn):
    """``fn`` given the checked Params (``DetrParams.checked``)."""
    @functools.wraps(fn)
    def with_checked_params(p: compute.DetrParams, *more, **keywords):
        return fn(p.checked(), *more, **keywords)

    return with_checked_params


def wire(demo: gr.Blocks, binding: Binding, state: gr.State, i: Inputs, q: Queries, m: Matching, example_set) -> None:
    detection_out = [i.annotated, m.found_json, q.queries_plot, q.query_table, q.attention]
    matching_out = [m.cost_plot, m.matching_img, m.loss_plot]
    everything = [*detection_out, *matching_out, m.download_file, q.query, state]
    on_new_scene = binding.event(checked(new_scene))
    on_detect = binding.event(checked(detect), extra=[i.image_in, state])
    private = {"api_visibility": "private"}
    i.new_scene_btn.click(next_seed, i.seed, i.seed, queue=False, **private).then(
        on_new_scene, binding.inputs, [i.image_in, *everything], **private, **model_event())
    i.seed.submit(on_new_scene, binding.inputs, [i.image_in, *everything], **private, **model_event())
    i.detect_btn.click(on_detect, binding.inputs_with(i.image_in, state), everything, **private, **model_event())
    on_image = binding.event(checked(detect), extra=[i.image_in])
    i.image_in.upload(on_image, binding.inputs_with(i.image_in), everything, **private, **model_event())
    if example_set is not None:  # a clicked example is detected at once (not shown beside old boxes)
        example_set.load_input_event.then(on_image, binding.inputs_with(i.image_in), everything, **private,
                                          **model_event())
    i.model.change(on_detect, binding.inputs_with(i.image_in, state), everything, **private, **model_event())
    i.threshold.release(binding.event(checked(threshold_changed), extra=[state]), binding.inputs_with(state),
                        [*detection_out, m.download_file], **private)
    q.query.release(binding.event(checked(query_changed), extra=[state]), binding.inputs_with(state),
                    [q.attention, q.queries_plot], **private)
    on_weights = binding.event(checked(weights_changed), extra=[state])
    for weight in (m.w_class, m.w_l1, m.w_giou):
        weight.release(on_weights, binding.inputs_with(state), [*matching_out, m.download_file], **private)
    opening = Opening(opening_views, [i.image_in, *everything])
    binding.on_open(opening, on_new_scene, [i.image_in, *everything], **model_event())  # a link: its scene


def api_endpoint() -> None:
    """The public endpoint: an image file (not decoded by Gradio, so bad files get our message)."""
    with gr.Row(visible=False):
        api_image = gr.File(label="image", type="filepath")
        api_threshold = gr.Number(label="threshold", value=P.threshold)
        api_annotated = gr.Image(label="annotated", type="pil")
        api_json = gr.JSON(label="detections")
        api_button = gr.Button("detect")
    api_button.click(api_detect, [api_image, api_threshold], [api_annotated, api_json], api_name="detect",
                     **model_event())


if __name__ == "__main__":
    from playground import theme

    with gr.Blocks(title=TAB.title) as _demo:
        build(_demo)
    _demo.launch(**theme.launch_kwargs())
