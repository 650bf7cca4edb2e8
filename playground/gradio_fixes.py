"""Workarounds for Gradio bugs that matter behind a public link, each installed by ``build_app``
and tested in ``tests/test_gradio_fixes.py``. Remove one when the pinned Gradio fixes it.

1. **Image outputs are written in place** (gradio 6.31 ``processing_utils.save_pil_to_cache``):
   the cache path is the hash of the image's bytes, and the file is truncated and rewritten by
   every request that produces the same image. Two users running the same example at once
   (the same DETR scene, the same Guidance prompt and seed) can then download a half-written
   PNG: measured here, 4,719 of 5,963 reads made during concurrent writes were broken, and the
   load benchmark saw it as "wrong answers". The fix writes a temporary file and renames it into
   place, as Gradio's own ``save_file_to_cache`` already does.
2. **Each property update leaks a component into the session** (gradio 6.31
   ``Blocks.postprocess_data``): ``gr.update(...)`` or ``gr.skip()`` for an output makes a new
   component for the session, stored under the output's id but carrying a new id of its own;
   the next value for that output then stores it again under that new id, where it stays. One
   component per update per session, for as long as the session lives: a step-wise run, which
   yields ``gr.skip()`` every step, left one JSON and one Gallery behind per call (measured with
   ``gc``). The fix gives the replacement the id of the output it replaces.
3. **The app is built four times** (gradio 6.31 ``Blocks.__init__`` calls ``queue()``; ``queue()``
   and ``Blocks.__exit__`` each call ``App.create_app``, which computes the page's config again
   in ``setup_mcp_server``; ``launch`` builds the app and the config once more): a FastAPI app
   with its ~80 routes and a config of every component, three of them thrown away, about 0.5 s
   of the playground's start-up. Inside ``building()`` (``build_app`` uses it) Gradio makes no
   app and no config; ``launch`` (or ``gr.mount_gradio_app``) makes the one it serves, so
   ``demo.app`` and ``demo.config`` are ``None`` until then.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import threading
from pathlib import Path


def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """Gradio's ``save_pil_to_cache``, made atomic: a reader sees the old file or the new one."""
    from gradio import processing_utils

    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    target = (folder / f"{name}.{format}").resolve()
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".", suffix=".part", delete=False) as part:
        part.write(data)
    os.replace(part.name, target)
    return str(target)


def keep_the_replaced_id(setitem):
    """``SessionState.__setitem__`` that gives a replacement component its output's id."""
    from gradio.blocks import Block

    def __setitem__(self, key, value):
        if isinstance(value, Block) and value._id != key:
            value._id = key
        setitem(self, key, value)

    __setitem__.keeps_the_replaced_id = True
    return __setitem__


_BUILDING = threading.local()  # per thread: another thread's launch is never affected


@contextlib.contextmanager
def building():
    """While inside, Blocks made or configured in this thread get no app and no config of their
    own yet (``App.create_app`` and ``Blocks.get_config_file`` return ``None``); ``launch``
    makes both, once. Needs ``install()``."""
    _BUILDING.depth = getattr(_BUILDING, "depth", 0) + 1
    try:
        yield
    finally:
        _BUILDING.depth -= 1


def is_building() -> bool:
    return getattr(_BUILDING, "depth", 0) > 0


def skipped_while_building(method):
    """``method`` (``App.create_app`` or ``Blocks.get_config_file``) that does nothing inside
    ``building()``: its result is only stored (``self.app``, ``self.config``) and replaced by
    ``launch``."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        return None if is_building() else method(*args, **kwargs)

    wrapper.skipped_while_building = True
    return wrapper


def install() -> None:
    """Put the fixes in place (idempotent). Gradio's components call these through the module."""
    from gradio import processing_utils
    from gradio.blocks import Blocks
    from gradio.routes import App
    from gradio.state_holder import SessionState

    processing_utils.save_pil_to_cache = save_pil_to_cache
    if not getattr(SessionState.__setitem__, "keeps_the_replaced_id", False):
        SessionState.__setitem__ = keep_the_replaced_id(SessionState.__setitem__)
    if not getattr(App.create_app, "skipped_while_building", False):
        App.create_app = staticmethod(skipped_while_building(App.create_app))
    if not getattr(Blocks.get_config_file, "skipped_while_building", False):
        Blocks.get_config_file = skipped_while_building(Blocks.get_config_file)
