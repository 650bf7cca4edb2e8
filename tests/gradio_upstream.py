"""Each Gradio bug that ``playground/gradio_fixes.py`` works around, reproduced on Gradio as it is
(run in a fresh process that never calls ``gradio_fixes.install()``). Prints one JSON object:
``{fix: [still broken?, what was seen]}``. Used by ``tests/test_gradio_fixes.py``: once a Gradio
upgrade fixes one, its test there goes red and the workaround can go."""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def image_cache_rewritten_in_place(folder: Path):
    """Fix 1: the same image saved twice is the same file truncated and rewritten (same inode), so a
    reader in between can see it half-written; an atomic write would put a new file in place."""
    from gradio import processing_utils

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    path = processing_utils.save_pil_to_cache(image, str(folder), format="png")
    before = os.stat(path).st_ino
    assert processing_utils.save_pil_to_cache(image, str(folder), format="png") == path
    after = os.stat(path).st_ino
    return before == after, f"inode {before} -> {after}"


def updates_leak_components_into_the_session():
    """Fix 2: every ``gr.skip()`` / ``gr.update()`` for an output leaves one more component in the session."""
    from gradio_client import Client

    def skips(n):
        for _ in range(3):
            yield gr.skip()
        yield f"done {n}"

    def new_maximum(n):
        return gr.update(maximum=int(n) + 10, value=int(n))

    with gr.Blocks() as demo:
        number, text, slider = gr.Number(1), gr.Textbox(), gr.Slider(0, 5)
        gr.Button().click(skips, number, text, api_name="run")
        gr.Button().click(new_maximum, number, slider, api_name="limit")
    demo.launch(server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        sizes = []
        for n in range(3):
            client.predict(n, api_name="/run")
            client.predict(n, api_name="/limit")
            sizes.append(len(demo.state_holder.session_data[client.session_hash].blocks_config.blocks))
    finally:
        demo.close()
    return sizes != [len(demo.blocks)] * 3, f"session components {sizes}, app {len(demo.blocks)}"


def app_and_config_made_more_than_once():
    """Fix 3: building and launching one Blocks makes its server app and page config several times."""
    from gradio.blocks import Blocks
    from gradio.routes import App

    calls = {"create_app": 0, "get_config_file": 0}
    create_app, get_config_file = App.create_app, Blocks.get_config_file

    def counting_create_app(*args, **kwargs):
        calls["create_app"] += 1
        return create_app(*args, **kwargs)

    def counting_get_config_file(self):
        calls["get_config_file"] += 1
        return get_config_file(self)

    App.create_app, Blocks.get_config_file = staticmethod(counting_create_app), counting_get_config_file
    try:
        with gr.Blocks() as demo:
            gr.Button().click(lambda x: x, gr.Textbox(), gr.Textbox())
        demo.queue().launch(server_port=free_port(), prevent_thread_lock=True, quiet=True)
        demo.close()
    finally:
        App.create_app, Blocks.get_config_file = create_app, get_config_file
    return calls["create_app"] > 1 or calls["get_config_file"] > 1, str(calls)


def each_component_reads_its_signature_again():
    """Fix 4: ``component_meta`` calls ``inspect.getfullargspec`` on every construction."""
    import inspect

    from gradio import component_meta

    seen = []

    class Counting:
        def __getattr__(self, name):
            return getattr(inspect, name)

        @staticmethod
        def getfullargspec(fn):
            seen.append(fn)
            return inspect.getfullargspec(fn)

    original = component_meta.inspect
    component_meta.inspect = Counting()
    try:
        gr.Slider(0, 10, 3)
        first = len(seen)
        gr.Slider(0, 10, 3)
        gr.Slider(0, 10, 3)
    finally:
        component_meta.inspect = original
    return first > 0 and len(seen) > first, f"{first} reads for the first Slider, {len(seen)} for three"


def a_corrupt_upload_fails_before_the_tab(folder: Path):
    """Fix 5: an undecoded image input (``type="filepath"``, ``image_mode=None``) still opens the upload
    with Pillow, so a corrupt PNG fails inside Gradio, before the tab's own check."""
    from gradio import image_utils
    from gradio.data_classes import ImageData

    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    try:
        image_utils.preprocess_image(ImageData(path=str(corrupt), orig_name="corrupt.png"), cache_dir=str(folder),
                                     format="webp", image_mode=None, type="filepath")
    except Exception as err:  # noqa: BLE001 - any failure is the bug
        return True, f"{type(err).__name__}: {err}"[:200]
    return False, "the path was passed on"


def api_parameters_named_by_position():
    """Fix 6: a ``gr.api`` endpoint's parameters are labelled by position, not by their Python names,
    and docstrings' double backticks are shown raw."""
    def endpoint(prompt: str, steps: int) -> dict:
        """Run ``prompt`` for ``steps``."""
        return {}

    with gr.Blocks() as demo:
        gr.api(endpoint, api_name="endpoint")
    info = demo.get_api_info()["named_endpoints"]["/endpoint"]
    labels = [p.get("label") for p in info["parameters"]]
    broken = labels != ["prompt", "steps"] or "``" in (info.get("description") or "")
    return broken, f"labels {labels}, description {info.get('description')!r}"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checks = {
            "atomic_image_cache": lambda: image_cache_rewritten_in_place(folder / "cache"),
            "session_keeps_replaced_ids": updates_leak_components_into_the_session,
            "configured_once": app_and_config_made_more_than_once,
            "cached_signatures": each_component_reads_its_signature_again,
            "unreadable_images": lambda: a_corrupt_upload_fails_before_the_tab(folder),
            "readable_api_info": api_parameters_named_by_position,
        }
        results = {}
        for name, check in checks.items():
            try:
                results[name] = list(check())
            except Exception as err:  # noqa: BLE001 - reported, the test says which
                results[name] = [None, f"the reproduction itself failed: {type(err).__name__}: {err}"[:300]]
    print(json.dumps(results))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
