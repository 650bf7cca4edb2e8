"""Plain constants for the app, each overridable by a ``PLAYGROUND_*`` environment variable.

Read at call time (the functions below), so the CLI and tests can set the environment
before building the app without reloading modules.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = Path(os.environ.get("PLAYGROUND_ASSETS", REPO_ROOT / "assets"))

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860

# Launch settings for a public link (issue 2).
QUEUE_MAX_SIZE = int(os.environ.get("PLAYGROUND_QUEUE_MAX_SIZE", "64"))
MODEL_CONCURRENCY_ID = "models"  # one shared slot pool for every model-backed event
MODEL_CONCURRENCY_LIMIT = int(os.environ.get("PLAYGROUND_MODEL_CONCURRENCY", "2"))
DEFAULT_CONCURRENCY_LIMIT = int(os.environ.get("PLAYGROUND_CONCURRENCY", "4"))
MAX_FILE_SIZE = "10mb"
# Gradio keeps a state per session (a copy of the page's config and the last outputs, about 0.5 MB
# here); the least recently used sessions beyond this many are dropped, which bounds the memory
# that strangers opening new sessions can take.
SESSION_CAPACITY = int(os.environ.get("PLAYGROUND_SESSION_CAPACITY", "512"))
MAX_IMAGE_PIXELS = 50_000_000  # see limit_image_pixels

# A server that runs for weeks (issue 19). Temp folder: see playground/tempfiles.py.
TEMP_MAX_AGE_S = float(os.environ.get("PLAYGROUND_TEMP_MAX_AGE_S", str(6 * 3600)))  # longer than a lecture
TEMP_MAX_MB = float(os.environ.get("PLAYGROUND_TEMP_MAX_MB", "1000"))
TEMP_KEEP_S = float(os.environ.get("PLAYGROUND_TEMP_KEEP_S", "1800"))  # the size limit never deletes younger files
TEMP_SWEEP_S = float(os.environ.get("PLAYGROUND_TEMP_SWEEP_S", "300"))
# On SIGTERM: no new work, runs in flight get this long to finish, then the process exits.
DRAIN_TIMEOUT_S = float(os.environ.get("PLAYGROUND_DRAIN_TIMEOUT_S", "60"))

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def device_preference() -> str:
    """The requested device: ``auto`` (default), ``cpu``, ``cuda`` or ``mps``."""
    value = os.environ.get("PLAYGROUND_DEVICE", "auto").strip().lower()
    if value not in DEVICE_CHOICES:
        raise ValueError(f"PLAYGROUND_DEVICE must be one of {', '.join(DEVICE_CHOICES)}, got {value!r}")
    return value


def model_override_var(model_name: str) -> str:
    """Environment variable that overrides one model's source, e.g. ``PLAYGROUND_MODEL_SD15``."""
    return "PLAYGROUND_MODEL_" + "".join(c if c.isalnum() else "_" for c in model_name).upper()


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def downloads_allowed() -> bool:
    """Whether a model missing here may be downloaded from the Hugging Face hub on first use: only
    when the owner opts in with ``PLAYGROUND_ALLOW_DOWNLOADS=1`` (the command line otherwise sets
    ``HF_HUB_OFFLINE=1`` before the hub library loads, ``playground.__main__.configure_environment``,
    so nothing waits on the network)."""
    allowed = os.environ.get("PLAYGROUND_ALLOW_DOWNLOADS", "").strip().lower() in {"1", "true", "yes", "on"}
    return allowed and not hub_offline()


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def mark_public(host: str, share: bool) -> None:
    """Record, for the model loaders, that this server is reachable by strangers
    (``--share``, or a ``--host`` other than this machine)."""
    if share or host not in LOCAL_HOSTS:
        os.environ["PLAYGROUND_PUBLIC"] = "1"


def safety_checker_required() -> bool:
    """Real Stable Diffusion checkpoints keep their safety checker. Only the owner of a private
    server may opt out (``PLAYGROUND_SD_SAFETY_CHECKER=off``); a public one never runs without it."""
    opted_out = os.environ.get("PLAYGROUND_SD_SAFETY_CHECKER", "on").strip().lower() == "off"
    return not opted_out or os.environ.get("PLAYGROUND_PUBLIC") == "1"


def limit_image_pixels() -> None:
    """Pillow warns above ``MAX_IMAGE_PIXELS`` and refuses above twice as many, for every decode in
    the process, Gradio's own included: the backstop behind each tab's size check (a 12000 x 12000
    PNG of a few kB is refused from its header, before any pixel is decoded)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
