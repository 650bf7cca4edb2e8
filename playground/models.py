"""The one way to get a model: a small registry of ``ModelSpec`` entries and ``get(name)``.

Policy lives here and nowhere else:

* **lazy**: nothing heavy is imported and no weights are read until ``get`` is first called;
* **cached and locked**: one load per model per process, even under concurrent requests;
* **device and dtype**: ``cuda`` (fp16) if available, else ``mps`` (fp32), else ``cpu`` (fp32),
  overridable with ``--device`` / ``PLAYGROUND_DEVICE``;
* **source**: ``PLAYGROUND_MODEL_<NAME>`` (a local folder or a Hugging Face id) wins, then the
  embedded checkpoint in ``assets/``, then the spec's Hugging Face id. Weights are always
  loaded with ``use_safetensors=True``;
* **failure**: anything that stops a model from loading becomes ``ModelUnavailable``, which
  names the model, where it looked and how to get it. Tabs show it; the app keeps running;
* **availability**: ``availability(name)`` says whether a model's weights are on this machine
  without loading them, importing a model library or touching the network (the app sets the hub
  offline unless ``PLAYGROUND_ALLOW_DOWNLOADS=1``); the tabs offer only the models that are here;
* **no server paths for visitors**: messages and the Models panel name folders relative to the
  app (``assets/shapes_detr``) or by the variable that set them; the full path goes to the log.

Loaded objects are shared by every request and must be treated as read-only; per-call state
(schedulers, RNGs) is created per request by the tabs.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playground import settings, tabs
from playground.tabs import ModelSpec


LOG = logging.getLogger(__name__)


def public_text(text: str) -> str:
    """``text`` with this server's folders replaced by names a visitor may see: the assets folder
    becomes ``assets``, the app's folder ``.``, the Hugging Face cache and the home folder their
    names. Every model message a visitor can see goes through it."""
    places = [(settings.ASSETS_DIR, "assets"), (_hub_cache_dir(), "the Hugging Face cache"),
              (settings.REPO_ROOT, "."), (Path.home(), "~")]
    for folder, name in places:
        for spelling in {str(folder), str(Path(folder).resolve())}:
            if len(spelling) > 1:
                text = text.replace(spelling, name)
    return text


class ModelUnavailable(RuntimeError):
    """A model could not be loaded. ``str(err)`` is a message fit to show a user (no server path)."""

    def __init__(self, name: str, looked_in: str, how_to_get: str, cause: str = ""):
        self.name, self.looked_in, self.how_to_get, self.cause = name, looked_in, how_to_get, cause
        reason = f" ({cause})" if cause else ""
        message = f"Model '{name}' is not available{reason}. Looked in: {looked_in}. {how_to_get}"
        public = public_text(message)
        if public != message:
            LOG.warning("%s", message)  # the server's owner sees the real folders
        super().__init__(public)


class DeviceUnavailable(RuntimeError):
    """The requested device does not exist on this machine."""


class OutOfMemory(RuntimeError):
    """A model call ran out of memory; the memory was freed and the next request can run."""


@dataclass(frozen=True)
class Availability:
    """Whether a model's weights are on this machine (decided without loading or network).

    ``present``: its folder, or its snapshot in the Hugging Face cache, is here (and so are the
    models it ``needs``); ``downloads``: it is not, but ``PLAYGROUND_ALLOW_DOWNLOADS=1`` lets the
    first use download it. ``where`` and ``how_to_get`` are fit to show a visitor.
    """

    name: str
    title: str
    present: bool
    downloads: bool
    where: str
    how_to_get: str

    @property
    def usable(self) -> bool:
        return self.present or self.downloads

    @property
    def state(self) -> str:
        return ("on this machine" if self.present else "downloads on first use" if self.downloads
                else "not on this machine")

    def note(self) -> str:
        """One Markdown line for a tab: ``**Title**: not on this machine. How to get it: ...``."""
        if self.present:
            return f"**{self.title}**: on this machine ({self.where}); it loads on first use."
        if self.downloads:
            return f"**{self.title}**: downloads on first use (looked in {self.where})."
        return f"**{self.title}**: not on this machine (looked in {self.where}). How to get it: {self.how_to_get}"

    def folded_note(self) -> str:
        """``note()`` folded to one line under a model menu (HTML ``details``): the how-to opens on a click."""
        if self.usable:
            return self.note()
        return (f"<details><summary><b>{self.title}</b>: not on this machine (how to get it)</summary>\n\n"
                f"Looked in {self.where}. {self.how_to_get}\n\n</details>")


@dataclass(frozen=True)
class Source:
    """Where a model's weights come from: ``embedded`` / ``local`` folder / ``hub`` id."""

    kind: str
    location: str
    revision: str | None = None
    local_files_only: bool = True

    def pretrained_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for any ``from_pretrained``: safetensors only, offline unless allowed."""
        kwargs: dict[str, Any] = {"use_safetensors": True, "local_files_only": self.local_files_only}
        if self.revision:
            kwargs["revision"] = self.revision
        return kwargs


@dataclass
class LoadedModel:
    spec: ModelSpec
    source: Source
    device: str
    dtype: str
    model: Any
    n_params: int
    n_bytes: int
    load_seconds: float


# ---------------------------------------------------------------------------------------------
# Device policy


def resolve_device(preference: str | None = None) -> str:
    """Map ``auto|cpu|cuda|mps`` to an available device name, or raise ``DeviceUnavailable``."""
    import torch

    preference = preference or settings.device_preference()
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if preference == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable("--device cuda was requested but CUDA is not available here; use --device auto or cpu")
    if preference == "mps" and not has_mps:
        raise DeviceUnavailable("--device mps was requested but MPS is not available here; use --device auto or cpu")
    return preference


def dtype_for(device: str):
    """fp16 on CUDA, fp32 elsewhere (CPU fp16 is slow and MPS fp16 is fragile)."""
    import torch

    return torch.float16 if device == "cuda" else torch.float32


_THREADS_LOCK = threading.RLock()
_THREADS_HELD = threading.local()


@contextmanager
def single_thread():
    """Run torch on one intra-op thread, then restore the previous setting.

    Small models (a one-token decode step, a 2M-parameter DETR, the SDE tab's score MLP) gain
    nothing from more threads, and on a shared, loaded CPU OpenMP threads wait on each other:
    measured here at load 7-9 on 2 cores, one DETR image took ~270 ms on one thread and 2.5-5 s
    on two, an attention decode run 4 s against 90 s. The setting is process-wide in torch's
    API, hence the lock. Re-entering in the same thread costs nothing (no new setting), so a
    whole run can hold it around many small calls that each hold it too.
    """
    import torch

    with _THREADS_LOCK:
        if getattr(_THREADS_HELD, "active", False):
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        _THREADS_HELD.active = True
        try:
            yield
        finally:
            _THREADS_HELD.active = False
            torch.set_num_threads(before)


def _torch_modules(model: Any) -> list:
    """The ``nn.Module`` parts of a model or of a diffusers pipeline's components."""
    import torch

    if isinstance(model, torch.nn.Module):
        return [model]
    components = getattr(model, "components", None)
    if isinstance(components, dict):
        return [c for c in components.values() if isinstance(c, torch.nn.Module)]
    return []


def _size_of(model: Any) -> tuple[int, int]:
    """(parameter count, bytes of parameters and buffers)."""
    n_params = n_bytes = 0
    for module in _torch_modules(model):
        for p in module.parameters():
            n_params += p.numel()
            n_bytes += p.numel() * p.element_size()
        for b in module.buffers():
            n_bytes += b.numel() * b.element_size()
    return n_params, n_bytes


def _is_out_of_memory(err: BaseException) -> bool:
    torch = sys.modules.get("torch")  # no torch loaded: it cannot be torch's error (and stays unloaded)
    kinds = (MemoryError, torch.OutOfMemoryError) if torch is not None else (MemoryError,)
    return isinstance(err, kinds) or "out of memory" in str(err).lower()


def free_memory() -> None:
    """Return cached memory to the device after a failure (the one place that empties caches)."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        mps.empty_cache()


OUT_OF_MEMORY_HINT = "Try fewer images, fewer steps or a smaller input."


@contextmanager
def memory_guard(what: str = "This request"):
    """Run a model call; an out-of-memory error becomes ``OutOfMemory`` after freeing memory.

    The failed call's finished frames are cleared first: the tensors its locals held are
    released before the caches are emptied, so the memory really is free for the next request.
    """
    try:
        yield
    except Exception as err:  # noqa: BLE001 - only out-of-memory is translated
        if not _is_out_of_memory(err):
            raise
        traceback.clear_frames(err.__traceback__)
        del err
        free_memory()
        raise OutOfMemory(f"{what} ran out of memory and was stopped; memory was freed. "
                          f"{OUT_OF_MEMORY_HINT}") from None


# ---------------------------------------------------------------------------------------------
# Registry


class ModelRegistry:
    """Specs by name, plus a cache of loaded models guarded by one lock per model."""

    def __init__(self, specs: list[ModelSpec], assets_dir: Path | None = None):
        self._specs = {spec.name: spec for spec in specs}
        self._assets_dir = assets_dir
        self._loaded: dict[str, LoadedModel] = {}
        self._locks = {name: threading.Lock() for name in self._specs}

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def spec(self, name: str) -> ModelSpec:
        if name not in self._specs:
            raise KeyError(f"unknown model {name!r}; registered: {', '.join(self._specs) or 'none'}")
        return self._specs[name]

    def resolve_source(self, name: str) -> Source:
        """Override variable, then embedded checkpoint, then Hugging Face id."""
        spec = self.spec(name)
        override = os.environ.get(spec.override_var, "").strip()
        if override:
            path = Path(override).expanduser()
            if path.is_dir() or not _looks_like_hub_id(override):
                return Source("local", str(path))  # a missing folder fails later with a clear message
            return Source("hub", override, spec.revision, local_files_only=True)
        if spec.embedded_dir:
            assets = self._assets_dir or settings.ASSETS_DIR
            return Source("embedded", str(assets / spec.embedded_dir))
        if spec.hub_id:
            return Source("hub", spec.hub_id, spec.revision, local_files_only=True)
        raise ModelUnavailable(name, "nowhere", f"Set {spec.override_var} to a local folder.")

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def availability(self, name: str) -> Availability:
        """Are this model's weights here? Reads folders only: no load, no model library, no network."""
        spec = self.spec(name)
        try:
            source = self.resolve_source(name)
        except ModelUnavailable as err:
            return Availability(name, spec.title, False, False, err.looked_in, self._how_to_get(spec))
        if name in self._loaded:
            present = True
        elif source.kind == "hub":
            present = hub_snapshot(source.location, source.revision) is not None
        else:
            present = Path(source.location).is_dir()
        needed = [self.availability(other) for other in spec.needs]
        downloads = (not present and source.kind == "hub" and settings.downloads_allowed()
                     and all(n.usable for n in needed))
        present = present and all(n.present for n in needed)
        how = self._how_to_get(spec) + "".join(f" It needs {n.title}: {n.how_to_get}" for n in needed
                                               if not n.present)
        return Availability(name, spec.title, present, downloads, _where(source, spec), public_text(how))

    def usable_choices(self, choices: list) -> tuple[list, str]:
        """A model dropdown's ``choices`` (names or ``(label, name)`` pairs) without the models that
        cannot be used here, and a Markdown note naming those with how to get them ("" if none).
        The first choice, the tab's default (its embedded model), always stays: if even that is
        missing, running the tab says so, with how to get it."""
        kept, missing = [], []
        for i, choice in enumerate(choices):
            name = choice[1] if isinstance(choice, tuple) else choice
            available = self.availability(name)
            if available.usable or i == 0:
                kept.append(choice)
            else:
                missing.append(available)
        return kept, "\n".join(a.folded_note() for a in missing)

    def get(self, name: str) -> Any:
        """The loaded model (loading it on first use). Raises ``ModelUnavailable``."""
        return self.get_loaded(name).model

    def get_loaded(self, name: str) -> LoadedModel:
        spec = self.spec(name)
        if name in self._loaded:
            return self._loaded[name]
        with self._locks[name]:
            if name not in self._loaded:
                self._loaded[name] = self._load(spec)
        return self._loaded[name]

    def unload(self, name: str) -> None:
        """Drop a model from the cache (used when memory must be freed)."""
        with self._locks[self.spec(name).name]:
            self._loaded.pop(name, None)

    def _load(self, spec: ModelSpec) -> LoadedModel:
        source = self.resolve_source(spec.name)
        how = self._how_to_get(spec)
        if source.kind in ("embedded", "local") and not Path(source.location).is_dir():
            LOG.warning("model %s: folder not found: %s", spec.name, source.location)
            raise ModelUnavailable(spec.name, _where(source, spec), how, "folder not found")
        device = resolve_device()
        dtype = dtype_for(device)
        load_fn = _import_loader(spec.load)
        start = time.perf_counter()
        try:
            model = load_fn(source, device, dtype)
        except ModelUnavailable:
            raise
        except Exception as err:  # noqa: BLE001 - any failure to load is reported, not raised raw
            if source.kind != "hub" or settings.hub_offline():
                raise ModelUnavailable(spec.name, _where(source, spec), how, _short(err)) from err
            model = self._load_online(spec, source, device, dtype, how)
        n_params, n_bytes = _size_of(model)
        return LoadedModel(spec, source, device, str(dtype).replace("torch.", ""), model,
                           n_params, n_bytes, time.perf_counter() - start)

    def _load_online(self, spec, source, device, dtype, how):
        """Second try for a hub id that is not in the local cache: download it."""
        online = Source(source.kind, source.location, source.revision, local_files_only=False)
        try:
            return _import_loader(spec.load)(online, device, dtype)
        except Exception as err:  # noqa: BLE001
            raise ModelUnavailable(spec.name, _where(source, spec), how, _short(err)) from err

    def _how_to_get(self, spec: ModelSpec) -> str:
        parts = [spec.how_to_get] if spec.how_to_get else []
        if spec.hub_id:
            revision = f" --revision {spec.revision}" if spec.revision else ""
            parts.append(f"on a machine with network, run `huggingface-cli download {spec.hub_id}{revision}` "
                         "(or start the app with PLAYGROUND_ALLOW_DOWNLOADS=1 to download it on first use)")
        parts.append(f"or set {spec.override_var} to a local folder saved with save_pretrained, "
                     "then restart the app.")
        return "; ".join(parts)

    def info(self) -> list[dict[str, Any]]:
        """One row per registered model for the Models panel (never loads anything)."""
        rows = []
        for name, spec in self._specs.items():
            loaded = self._loaded.get(name)
            try:
                source = loaded.source if loaded else self.resolve_source(name)
                where = _where(source, spec)
            except ModelUnavailable as err:
                source, where = None, str(err)
            available = self.availability(name)
            rows.append({
                "name": name,
                "title": spec.title,
                "state": "loaded" if loaded else available.state,
                "source": source.kind if source else "none",
                "location": where,
                "how_to_get": "" if available.usable else available.how_to_get,
                "loaded": loaded is not None,
                "device": loaded.device if loaded else "",
                "dtype": loaded.dtype if loaded else "",
                "parameters": loaded.n_params if loaded else None,
                "memory_bytes": loaded.n_bytes if loaded else None,
            })
        return rows


def _looks_like_hub_id(text: str) -> bool:
    """``owner/name`` with no path-like prefix."""
    return text.count("/") == 1 and not text.startswith((".", "/", "~")) and all(text.split("/"))


def _where(source: Source, spec: ModelSpec | None = None) -> str:
    """Where a model is looked for, in words a visitor may see (no server path)."""
    if source.kind == "hub":
        return f"Hugging Face id '{source.location}' (local cache{'' if source.local_files_only else ' and hub'})"
    if source.kind == "local" and spec is not None:
        return f"the local folder set in {spec.override_var}"
    if source.kind == "embedded" and spec is not None and spec.embedded_dir:
        return f"embedded folder assets/{spec.embedded_dir}"
    return public_text(f"{source.kind} folder {source.location}")


def _hub_cache_dir() -> Path:
    """The Hugging Face hub cache, as ``huggingface_hub`` finds it (without importing it)."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return cache / "huggingface" / "hub"


def hub_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The cached snapshot folder of ``repo_id`` at ``revision`` (a branch, tag or commit), or
    ``None``: read from the cache's layout (``models--owner--name/refs``, ``snapshots``), offline."""
    folder = _hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))
    ref = folder / "refs" / (revision or "main")
    try:
        commit = ref.read_text().strip() if ref.is_file() else (revision or "")
    except OSError:
        return None
    snapshot = folder / "snapshots" / commit if commit else None
    if snapshot is None or not snapshot.is_dir() or not any(snapshot.iterdir()):
        return None
    return snapshot


def _short(err: Exception, limit: int = 300) -> str:
    text = f"{type(err).__name__}: {err}".strip().splitlines()[0]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _import_loader(path: str):
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


# The app's models: every tab's ``TAB.models``, in the order of ``tabs.TAB_IDS``.
MODELS: list[ModelSpec] = tabs.model_specs()

REGISTRY = ModelRegistry(MODELS)
get = REGISTRY.get
usable_choices = REGISTRY.usable_choices
