"""Public-link safety of every endpoint's inputs (hardening issue: numbers and images).

Numbers: every numeric parameter of every public endpoint, found in the running app's API info,
is sent over raw HTTP as NaN, +-Infinity, +-1e300 and a string; each must come back as a clear
error naming the field or its range, quickly, never as a result or a generic message.

Images: files that decode to a huge size are refused before their pixels are decoded (measured
as the peak memory of a fresh process); corrupt, grayscale, RGBA, palette and 1 x 1 images give
a result or a clear message on both image endpoints.
"""

import json
import re
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import ROOT, call_raw

GENERIC = "Something went wrong"
BAD_NUMBERS = [float("nan"), float("inf"), float("-inf"), 1e300, -1e300, "abc"]
SKETCH = ROOT / "assets" / "examples" / "controlnet" / "circle.png"
SCENE = ROOT / "assets" / "detr_examples" / "scene.png"
FILE_INPUTS = {("controlnet", "sketch"): SKETCH, ("detect", "image"): SCENE}
VALID = {  # a quick valid call per endpoint (the API info's examples, "..." and 3, are not valid)
    "sde_ode": {"data": "two_moons", "sde": "VP", "score": "exact", "n_samples": 20, "n_steps": 5, "seed": 0},
    "flow": {"data": "2_gaussians", "flow": "realnvp", "n_layers": 1, "train_steps": 5, "seed": 0},
    "guidance": {"prompt": "a red circle", "mode": "cfg", "guidance_scale": 5.0, "n_images": 1, "steps": 2,
                 "seed": 0},
    "controlnet": {"prompt": "a red circle", "conditioning_scale": 1.0, "guidance_scale": 5.0, "steps": 2,
                   "seed": 0},
    "kv_cache": {"config": "Llama-2-7B", "seq_len": 4096, "batch_size": 1, "dtype": "bf16"},
    "detect": {"threshold": 0.5},
    "recall": {"sequence": "a 3 f 7 . . ? f"},
    "sd_internals": {"prompt": "a red circle", "steps": 2, "seed": 0},
    "ask": {"question": "Where was Zorbat Quenlip born?", "model": "base", "n_samples": 2, "temperature": 1.0, "seed": 0},
    "instruct": {"instruction": "Sort the words: red cat", "model": "tuned", "seed": 0},
    "self_instruct": {"threshold": 0.7, "n_candidates": 16, "seed": 0},
    "preference_bandit": {"beta": 0.5, "n_candidates": 8, "n_pairs": 200, "tau": 1.0, "seed": 0},
    "preference": {"instruction": "Sort the words: red cat", "method": "dpo", "beta": 0.1, "n_samples": 2, "seed": 0},
    "lesson_check": {"lesson_id": "attention", "step": 2, "answer": "8x smaller"},
}
TEXT_ONLY = {"recall"}  # endpoints whose only inputs are text (no number to send NaN to)
BAD_JSON_NUMBERS = [  # numbers inside the JSON strings that data and config accept
    ("sde_ode", "data", "[[0, NaN], [1, 1]]"), ("sde_ode", "data", "[[0, Infinity], [1, 1]]"),
    ("sde_ode", "data", "[[0, 1e300], [1, 1]]"), ("sde_ode", "data", '[[0, "abc"], [1, 1]]'),
    ("flow", "data", json.dumps([[i, 1e300] for i in range(30)])),
    ("flow", "data", "[" + ", ".join(f"[{i}, -Infinity]" for i in range(30)) + "]"),
    ("kv_cache", "config", '{"attention": "GQA", "n_layers": 1e300, "n_heads": 32, "head_dim": 128, '
                           '"n_kv_heads": 8}'),
    ("kv_cache", "config", '{"attention": "GQA", "n_layers": 32, "n_heads": Infinity, "head_dim": 128, '
                           '"n_kv_heads": 8}'),
    ("kv_cache", "config", '{"attention": "GQA", "n_layers": 32, "n_heads": 32, "head_dim": "abc", '
                           '"n_kv_heads": 8}'),
]


def readme_endpoints() -> dict[str, bool]:
    """The README's API table: endpoint name -> whether it takes inputs."""
    text = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `/(\w+)` \| ([^|]+) \|", text, flags=re.M)
    return {name: inputs.strip() != "none" for name, inputs in rows}


ENDPOINTS_WITH_INPUTS = sorted(name for name, has_inputs in readme_endpoints().items() if has_inputs)


@pytest.fixture(scope="module")
def api_info(app_url) -> dict:
    """The running app's public named endpoints and their parameters."""
    import urllib.request

    info = json.loads(urllib.request.urlopen(f"{app_url}/gradio_api/info", timeout=30).read())
    return {name.lstrip("/"): ep["parameters"] for name, ep in info["named_endpoints"].items()
            if ep.get("api_visibility", "public") == "public"}


def upload(app_url: str, path) -> dict:
    """Upload a file over plain HTTP; the FileData a raw call sends for it."""
    import httpx

    with open(path, "rb") as f:
        server_path = httpx.post(f"{app_url}/gradio_api/upload", files={"files": f}).json()[0]
    return {"path": server_path, "meta": {"_type": "gradio.FileData"}}


@pytest.fixture(scope="module")
def uploaded(app_url) -> dict:
    """The example files, uploaded once: (endpoint, parameter) -> FileData."""
    return {key: upload(app_url, path) for key, path in FILE_INPUTS.items()}


def valid_data(endpoint: str, parameters: list[dict], uploaded: dict) -> list:
    """The valid call's data in the API's order (a KeyError means a new parameter lacks a value here)."""
    values = {**VALID[endpoint], **{p: v for (e, p), v in uploaded.items() if e == endpoint}}
    return [values[p["parameter_name"]] for p in parameters]


def is_number(parameter: dict) -> bool:
    return parameter["type"].get("type") in ("number", "integer")


def assert_clear(event, message, names: tuple[str, ...], context: str) -> None:
    """An error (not a result), with a short user message naming the field or its range."""
    assert event == "error", f"{context}: accepted, got {event} {str(message)[:200]}"
    text = str(message.get("error") if isinstance(message, dict) else message or "")
    assert text.strip() and text != "None", f"{context}: empty error message"
    assert GENERIC not in text and "Traceback" not in text, f"{context}: not a user message: {text[:300]}"
    names_it = any(n.lower() in text.lower() for n in names)
    has_range = re.search(r"\d\s*\.\.\s*-?\d|\[\s*-?[\d.e+]+\s*,\s*-?[\d.e+]+\s*\]", text)
    assert names_it or has_range, f"{context}: names neither the field nor the range: {text[:300]}"


def test_every_endpoint_with_inputs_is_in_the_readme_and_covered(api_info):
    with_inputs = {name for name, parameters in api_info.items() if parameters}
    assert with_inputs == set(ENDPOINTS_WITH_INPUTS) == set(VALID)
    assert set(api_info) == set(readme_endpoints())


@pytest.mark.parametrize("endpoint", ENDPOINTS_WITH_INPUTS)
def test_the_valid_baseline_call_succeeds(app_url, api_info, uploaded, endpoint):
    event, payload = call_raw(app_url, endpoint, valid_data(endpoint, api_info[endpoint], uploaded))
    assert event == "complete", payload


@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=repr)
@pytest.mark.parametrize("endpoint", ENDPOINTS_WITH_INPUTS)
def test_every_numeric_input_refuses_nan_infinity_huge_and_text(app_url, api_info, uploaded, endpoint, bad):
    parameters = api_info[endpoint]
    numeric = [i for i, p in enumerate(parameters) if is_number(p)]
    assert bool(numeric) != (endpoint in TEXT_ONLY), f"{endpoint}: numeric parameters {numeric}"
    for i in numeric:
        name = parameters[i]["parameter_name"]
        data = valid_data(endpoint, parameters, uploaded)
        data[i] = bad
        event, message = call_raw(app_url, endpoint, data)
        assert_clear(event, message, (name, name.replace("_", " ")), f"{endpoint}.{name}={bad!r}")


@pytest.mark.parametrize("endpoint, name, text", BAD_JSON_NUMBERS, ids=lambda v: str(v)[:40])
def test_numbers_inside_json_inputs_are_refused(app_url, api_info, uploaded, endpoint, name, text):
    parameters = api_info[endpoint]
    data = valid_data(endpoint, parameters, uploaded)
    data[[p["parameter_name"] for p in parameters].index(name)] = text
    event, message = call_raw(app_url, endpoint, data)
    names = ("finite", "coordinate", "points", "n_layers", "n_heads", "head_dim")
    assert_clear(event, message, names, f"{endpoint}.{name}")


# ---------------------------------------------------------------------------------------------
# Images

IMAGE_INPUTS = {"detect": "image", "controlnet": "sketch"}  # endpoint -> its image parameter
OPENERS = {  # the code each endpoint runs on its file before any model: module, function, a valid file
    "detect": ("demos.detr.compute", "image_array", SCENE),
    "controlnet": ("demos.controlnet.compute", "sketch_to_condition", SKETCH),
}
MEASURE = """
import json, resource, sys
from PIL import Image
if sys.argv[4] == "off":
    Image.MAX_IMAGE_PIXELS = None  # Pillow's own bomb check gone: the tab's check must still refuse
module = __import__(sys.argv[1], fromlist=[sys.argv[2]])
open_file = getattr(module, sys.argv[2])
open_file(sys.argv[3])  # warm up: imports and first-call allocations are not the image's cost
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
try:
    open_file(sys.argv[5]); outcome = "ok"
except ValueError as err:
    outcome = str(err)
print(json.dumps({"grew_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024,
                  "outcome": outcome}))
"""


PILLOW_DEFAULT_LIMIT = int(1024 * 1024 * 1024 // 4 // 3)  # Pillow's MAX_IMAGE_PIXELS, before the app's


def solid_png(path, width: int, height: int):
    """A valid 1-bit white PNG of width x height, written row by row (a few kB for 12000 x 12000)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), b"\x00" + b"\xff" * ((width + 7) // 8)  # filter 0, then pixels
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grey
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    path = solid_png(tmp_path_factory.mktemp("huge") / "huge.png", 12_000, 12_000)
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, PILLOW_DEFAULT_LIMIT
    try:
        with pytest.warns(Image.DecompressionBombWarning), Image.open(path) as im:  # Pillow only warns
            assert im.size == (12_000, 12_000) and im.mode == "1" and path.stat().st_size < 100_000
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return path


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory) -> dict:
    """endpoint -> {kind: path}: corrupt files and unusual modes of each endpoint's example."""
    import random

    folder = tmp_path_factory.mktemp("odd")
    files = {}
    for endpoint, (_, _, example) in OPENERS.items():
        base = Image.open(example).convert("RGB")
        kinds = {"truncated": example.read_bytes()[: example.stat().st_size // 2],
                 "random": random.Random(0).randbytes(5000)}
        files[endpoint] = {kind: folder / f"{endpoint}_{kind}.png" for kind in [*kinds, "L", "RGBA", "P", "1", "1x1"]}
        for kind, content in kinds.items():
            files[endpoint][kind].write_bytes(content)
        for mode in ("L", "RGBA", "P", "1"):
            base.convert(mode).save(files[endpoint][mode])
        base.resize((1, 1)).save(files[endpoint]["1x1"])
    return files


def call_with_image(app_url, api_info, uploaded, endpoint: str, path) -> tuple[str, object]:
    """The valid call of ``endpoint`` with its image replaced by the file at ``path``."""
    parameters = api_info[endpoint]
    data = valid_data(endpoint, parameters, uploaded)
    data[[p["parameter_name"] for p in parameters].index(IMAGE_INPUTS[endpoint])] = upload(app_url, path)
    return call_raw(app_url, endpoint, data, timeout=60)


def test_the_image_endpoints_are_the_ones_with_file_inputs(api_info):
    files = {(name, p["parameter_name"]) for name, parameters in api_info.items() for p in parameters
             if p["python_type"]["type"] == "filepath"}
    assert files == set(IMAGE_INPUTS.items()) == set(FILE_INPUTS)


@pytest.mark.parametrize("endpoint", sorted(IMAGE_INPUTS))
def test_a_12000_pixel_square_png_is_refused_over_http(app_url, api_info, uploaded, huge_png, endpoint):
    event, message = call_with_image(app_url, api_info, uploaded, endpoint, huge_png)
    assert_clear(event, message, ("megapixels", "too large"), f"{endpoint} 12000 x 12000")


def peak_growth(endpoint: str, path, pillow_limit: str = "default") -> dict:
    """Open ``path`` the way ``endpoint`` does, in a fresh process: peak RSS growth (MB), outcome."""
    module, function, example = OPENERS[endpoint]
    done = subprocess.run([sys.executable, "-c", MEASURE, module, function, str(example), pillow_limit, str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("pillow_limit", ["default", "off"])
@pytest.mark.parametrize("endpoint", sorted(IMAGE_INPUTS))
def test_a_12000_pixel_square_png_is_refused_without_a_memory_spike(huge_png, endpoint, pillow_limit):
    """Refused from the header, not decoded (12000 x 12000 RGB would be 432 MB), also with
    Pillow's own ``MAX_IMAGE_PIXELS`` switched off."""
    measured = peak_growth(endpoint, huge_png, pillow_limit)
    assert measured["outcome"] != "ok" and re.search("megapixels|too large", measured["outcome"]), measured
    assert measured["grew_mb"] < 100, measured


def test_a_controlnet_sketch_just_under_the_limit_is_shrunk_before_any_float_copy(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (7000, 7000), 255).save(path)  # 49 MP, under the 50 MP limit; 49 MB decoded
    measured = peak_growth("controlnet", path)
    assert "draw an outline first" in measured["outcome"] and measured["grew_mb"] < 150, measured


def test_shrinking_a_large_rgba_sketch_first_gives_the_same_condition(tmp_path):
    """Downscaling the 8-bit upload before compositing equals compositing the full image first."""
    import numpy as np

    from demos.controlnet import compute

    ink = np.asarray(Image.open(SKETCH).convert("L").resize((1500, 1200)))  # dark strokes on white
    rgba = np.zeros((1200, 1500, 4), dtype=np.uint8)
    rgba[..., 3] = 255 - ink  # black strokes, transparent paper
    path = tmp_path / "large_rgba.png"
    Image.fromarray(rgba).save(path)
    np.testing.assert_allclose(compute.sketch_to_condition(str(path)), compute.sketch_to_condition(rgba), atol=0.02)


EXPECTED = {"truncated": "error", "random": "error", "L": "complete", "RGBA": "complete", "P": "complete",
            "1": "complete", "1x1": "either"}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
@pytest.mark.parametrize("endpoint", sorted(IMAGE_INPUTS))
def test_corrupt_and_unusual_images_over_http(app_url, api_info, uploaded, odd_files, endpoint, kind):
    event, message = call_with_image(app_url, api_info, uploaded, endpoint, odd_files[endpoint][kind])
    if EXPECTED[kind] == "complete":
        assert event == "complete", message
    elif event != "complete" or EXPECTED[kind] == "error":
        assert_clear(event, message, ("image", "sketch", "outline"), f"{endpoint} {kind}")


def image_inputs(app_url) -> dict[str, dict]:
    """Every image component that some event reads (the UI's too): label -> props."""
    import urllib.request

    config = json.loads(urllib.request.urlopen(f"{app_url}/config", timeout=30).read())
    read = {i for dependency in config["dependencies"] for i in dependency["inputs"]}
    return {c["props"].get("label") or c["props"].get("elem_id") or str(c["id"]): c["props"]
            for c in config["components"] if c["id"] in read and c["type"] in ("image", "imageeditor")}


@pytest.mark.parametrize("label", ["Image", "Upload an outline (dark strokes on light paper, any size)",
                                   "Upload any picture"])
def test_the_upload_components_hand_over_the_file_undecoded(app_url, label):
    """``type="filepath"`` with ``image_mode=None``: Gradio opens only the header and passes the
    path on, so the tab's compute applies its size check before any pixel is decoded."""
    props = image_inputs(app_url)[label]
    assert props["type"] == "filepath" and props.get("image_mode") is None, props


SKETCHPAD = "Sketch an outline (brush ready: just draw)"


def test_only_the_fixed_size_sketchpad_is_decoded_by_gradio(app_url):
    """Every other image input reaches the tab's size check undecoded (type="filepath")."""
    decoded = {label for label, props in image_inputs(app_url).items()
               if props["type"] != "filepath" or props.get("image_mode") is not None}
    assert decoded == {SKETCHPAD}
    assert image_inputs(app_url)[SKETCHPAD]["canvas_size"] == [256, 256]


def test_a_huge_sketchpad_value_is_refused_by_the_pillow_backstop_without_a_memory_spike(huge_png):
    """Gradio decodes the sketchpad itself (its preprocess silences Pillow's warning); the app's
    process-wide limit (``settings.limit_image_pixels``) refuses 12000 x 12000 from the header."""
    code = f"""
import resource, gradio as gr
from gradio.data_classes import FileData
from PIL import Image
from playground import settings
settings.limit_image_pixels()
editor = gr.ImageEditor(type="numpy", image_mode="RGBA")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    editor.convert_and_format_image(FileData(path={str(huge_png)!r}))
    print("decoded")
except Image.DecompressionBombError:
    print("refused", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    outcome, *grew = done.stdout.split()
    assert outcome == "refused", done.stdout + done.stderr[-2000:]
    assert float(grew[0]) < 100


@pytest.mark.parametrize("endpoint,args,expected", [
    ("kv_cache", ["[" * 100_000 + "]" * 100_000, 1024, 1, "fp16"], "nested too deeply"),
    ("sde_ode", ["[" * 100_000 + "]" * 100_000, "VP", "exact", 10, 10, 0], "nested too deeply"),
    ("flow", ["[" * 100_000 + "]" * 100_000, "realnvp", 2, 50, 0], "nested too deeply"),
    ("kv_cache", ["x" * 1_000_000, 1024, 1, "fp16"], "1,000,000 characters"),
    ("guidance", ["a red circle", "x" * 1_000_000, 5.0, 1, 2, 0], "1,000,000 characters"),
    ("flow", ["x" * 1_000_000, "realnvp", 2, 50, 0], "1,000,000 characters"),
    ("recall", ["a 3 " * 250_000 + "? a"], "at most 160 are allowed"),
    ("recall", ["x" * 1_000_000], "unknown token(s) 'xxxxxxxxxx"),
    ("ask", ["x" * 1_000_000, "base", 2, 1.0, 0], "1,000,000 characters"),
    ("instruct", ["x" * 1_000_000, "tuned", 0], "1,000,000 characters"),
])
def test_huge_or_deeply_nested_text_gets_a_short_clear_message(app_url, endpoint, args, expected):
    """A megabyte of text or JSON nested 100,000 deep: refused fast, and the message does not
    echo the input back."""
    event, message = call_raw(app_url, endpoint, args)
    text = message["error"] if isinstance(message, dict) else str(message)
    assert event == "error" and expected in text and len(text) < 400, text
