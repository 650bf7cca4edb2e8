"""Workarounds for Gradio bugs that matter behind a public link, each installed by ``build_app``
and tested in ``tests/test_gradio_fixes.py``. Remove one when the pinned Gradio fixes it (a test
there says when).

1. **Image outputs are written in place** (gradio 6.31 ``processing_utils.save_pil_to_cache``):
   the cache path is the hash of the image's bytes, and the file is truncated and rewritten by
   every request that produces the same image. Two users running the same example at once
   (the same DETR scene, the same Guidance prompt and seed) can then download a half-written
   PNG: measured here, 4,719 of 5,963 reads made during concurrent writes were broken, and the
   load benchmark saw it as "wrong answers". The fix writes a temporary file and renames it into
   place, as Gradio's own ``save_file_to_cache`` already does.
   Upstream: no Gradio issue found (searched 2026-12-07); still broken in 6.31
   (``tests/gradio_upstream.py``: the same image is rewritten in place, same inode).
2. **Each property update leaks a component into the session** (gradio 6.31
   ``Blocks.postprocess_data``): ``gr.update(...)`` or ``gr.skip()`` for an output makes a new
   component for the session, stored under the output's id but carrying a new id of its own;
   the next value for that output then stores it again under that new id, where it stays. One
   component per update per session, for as long as the session lives: a step-wise run, which
   yields ``gr.skip()`` every step, left one JSON and one Gallery behind per call (measured with
   ``gc``). The fix gives the replacement the id of the output it replaces.
   Upstream: no Gradio issue found (searched 2026-12-07); the per-session components came with
   gradio-app/gradio#8030 ("Store configs per session in the backend"). Still broken in 6.31.
3. **The app is built four times and configured five** (gradio 6.31 ``Blocks.__init__`` calls
   ``queue()``; ``queue()`` and ``Blocks.__exit__`` each call ``App.create_app``, which computes
   the page's config again in ``setup_mcp_server``; ``__exit__`` computes it too; ``launch``
   computes it, then builds the app, which computes it once more): a FastAPI app with its ~80
   routes and a config of every component, all but one of each thrown away, about 0.5 s of the
   playground's start-up. Inside ``building()`` (``build_app`` uses it) Gradio makes no app and
   no config, so ``demo.app`` and ``demo.config`` are ``None`` until ``launch`` (or
   ``gr.mount_gradio_app``) makes the ones it serves; within ``launch`` the config is computed
   once (again only if what ``setup_mcp_server`` adds, MCP on or translations, changed).
   Upstream: no Gradio issue found (searched 2026-12-07); ``queue()`` making the app dates from
   gradio-app/gradio#3089. Still so in 6.31 (4 apps, 6 configs for one small Blocks).
4. **Every component made reads its constructor's signature again** (gradio 6.31
   ``component_meta.updateable`` calls ``inspect.getfullargspec`` on each ``__init__``, and on
   each ``gr.update`` in an event): a third of the time building the app's ~400 components took.
   The fix caches the signature per constructor (a class's ``__init__`` never changes).
   Upstream: no Gradio issue found (searched 2026-12-07); still so in 6.31.
5. **A damaged image upload is a bare "Error" and a traceback** (gradio 6.31
   ``image_utils.preprocess_image`` opens every upload with Pillow, even for an image input with
   ``type="filepath"`` and ``image_mode=None`` that only passes the path on): a corrupt PNG fails
   there, before the tab's callback, so the browser shows "Error" where the API (which reaches
   the tab's own safe decode) says what is wrong, and the server logs a traceback. The fix hands
   such an input's path on undecoded, so the tab's check speaks in both; for the other image
   inputs an unreadable upload is a ``gr.Error`` saying so, without a traceback.
   Upstream: no Gradio issue found (searched 2026-12-07); still broken in 6.31.
6. **The API page calls ``gr.api`` parameters "1st Api component"** (gradio 6.31
   ``Blocks.get_api_info`` labels them by position, and the page writes 'The input value that is
   provided in the "1st" Api component'), and shows the docstrings' reST double backticks raw. The
   fix labels each by its parameter name (the return value ``result``) and writes code in
   descriptions with single backticks; parameter names, types and the endpoints stay as they are.
   Upstream: no Gradio issue found (searched 2026-12-07); still so in 6.31.

``tests/test_gradio_fixes.py::test_gradio_still_has_the_bug_each_fix_works_around`` reproduces each
bug on Gradio as installed, without the fixes (``tests/gradio_upstream.py``): it fails for the fix
an upgrade makes unnecessary, which then goes (with its test).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
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


_STATE = threading.local()  # per thread: a build or a launch in another thread is not affected


@contextlib.contextmanager
def building():
    """While inside, Blocks made or configured in this thread get no app and no config of their
    own yet (``App.create_app`` and ``Blocks.get_config_file`` return ``None``); ``launch``
    makes both. Needs ``install()``."""
    _STATE.building = getattr(_STATE, "building", 0) + 1
    try:
        yield
    finally:
        _STATE.building -= 1


def is_building() -> bool:
    return getattr(_STATE, "building", 0) > 0


def launch_configures_once(launch):
    """``Blocks.launch`` during which the page's config is computed once (see ``configured_once``)."""

    @functools.wraps(launch)
    def wrapper(self, *args, **kwargs):
        _STATE.launching, _STATE.launch_config = self, None
        try:
            return launch(self, *args, **kwargs)
        finally:
            _STATE.launching = _STATE.launch_config = None

    wrapper.configures_once = True
    return wrapper


def configured_once(get_config_file):
    """``Blocks.get_config_file``: nothing inside ``building()`` (only stored in ``self.config``
    and replaced by ``launch``); during ``launch``, until its app is made, computed once and
    reused unless MCP or the translations changed since (nothing else in between changes it)."""

    @functools.wraps(get_config_file)
    def wrapper(self):
        if is_building():
            return None
        if getattr(_STATE, "launching", None) is not self:
            return get_config_file(self)
        mcp, i18n = getattr(self, "mcp_server", None), getattr(self, "i18n_instance", None)
        cached = _STATE.launch_config
        if cached is None or cached[0] != mcp or cached[1] is not i18n:
            cached = _STATE.launch_config = (mcp, i18n, get_config_file(self))
        return cached[2]

    wrapper.configures_once = True
    return wrapper


def app_made_by_launch(create_app):
    """``App.create_app``: nothing inside ``building()`` (only stored in ``self.app`` and replaced
    by ``launch``); the app ``launch`` makes ends its reuse of the config."""

    @functools.wraps(create_app)
    def wrapper(blocks, *args, **kwargs):
        if is_building():
            return None
        try:
            return create_app(blocks, *args, **kwargs)
        finally:
            if getattr(_STATE, "launching", None) is blocks:
                _STATE.launching = _STATE.launch_config = None

    wrapper.configures_once = True
    return wrapper


class CachedSignatures:
    """The ``inspect`` module as ``gradio.component_meta`` sees it, ``getfullargspec`` cached per
    function (constructors only: a bounded set)."""

    getfullargspec = staticmethod(functools.lru_cache(maxsize=None)(inspect.getfullargspec))

    def __getattr__(self, name):
        return getattr(inspect, name)


UNREADABLE_IMAGE = ("This file could not be read as an image (it may be damaged, or not a picture): "
                    "upload a PNG or JPEG.")


def preprocess_unreadable_images(preprocess_image):
    """``image_utils.preprocess_image`` that leaves an upload it cannot open to the tab (fix 5)."""
    @functools.wraps(preprocess_image)
    def wrapper(payload, cache_dir, format, image_mode, type):
        try:
            return preprocess_image(payload, cache_dir, format, image_mode, type)
        except Exception as err:  # noqa: BLE001 - Pillow raises several kinds for a bad file
            from gradio.exceptions import Error
            from PIL import UnidentifiedImageError

            if isinstance(err, Error) or not isinstance(err, (UnidentifiedImageError, OSError, SyntaxError)):
                raise
            if type == "filepath" and image_mode is None and getattr(payload, "path", None):
                return str(payload.path)  # the tab decodes it itself, with its own clear message
            raise Error(UNREADABLE_IMAGE, print_exception=False) from None

    wrapper.leaves_unreadable_to_the_tab = True
    return wrapper


def readable_api_info(get_api_info):
    """``Blocks.get_api_info`` with ``gr.api`` parameters named as in Python (fix 6)."""
    @functools.wraps(get_api_info)
    def wrapper(self, *args, **kwargs):
        info = get_api_info(self, *args, **kwargs)
        for endpoints in (info.get("named_endpoints", {}), info.get("unnamed_endpoints", {})):
            for endpoint in endpoints.values():
                if endpoint.get("description"):
                    endpoint["description"] = endpoint["description"].replace("``", "`")
                for parameter in endpoint.get("parameters", []):
                    if parameter.get("component") == "Api" and parameter.get("parameter_name"):
                        parameter["label"], parameter["component"] = parameter["parameter_name"], "API"
                for returned in endpoint.get("returns", []):
                    if returned.get("component") == "Api":
                        returned["label"], returned["component"] = "result", "API"
        return info

    wrapper.readable_api_info = True
    return wrapper


def install() -> None:
    """Put the fixes in place (idempotent). Gradio's components call these through the module."""
    from gradio import component_meta, image_utils, processing_utils
    from gradio.blocks import Blocks
    from gradio.routes import App
    from gradio.state_holder import SessionState

    processing_utils.save_pil_to_cache = save_pil_to_cache
    if not getattr(SessionState.__setitem__, "keeps_the_replaced_id", False):
        SessionState.__setitem__ = keep_the_replaced_id(SessionState.__setitem__)
    if not getattr(App.create_app, "configures_once", False):
        App.create_app = staticmethod(app_made_by_launch(App.create_app))
    if not getattr(Blocks.get_config_file, "configures_once", False):
        Blocks.get_config_file = configured_once(Blocks.get_config_file)
    if not getattr(Blocks.launch, "configures_once", False):
        Blocks.launch = launch_configures_once(Blocks.launch)
    if not getattr(Blocks.get_api_info, "readable_api_info", False):
        Blocks.get_api_info = readable_api_info(Blocks.get_api_info)
    component_meta.inspect = CachedSignatures()
    if not getattr(image_utils.preprocess_image, "leaves_unreadable_to_the_tab", False):
        image_utils.preprocess_image = preprocess_unreadable_images(image_utils.preprocess_image)
