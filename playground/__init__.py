"""Generative Playground: the app shell shared by every tab."""

import os

# Read at import time by gradio and by torch's OpenMP runtime, so set before either loads:
# - analytics stay off unless the user turns them on;
# - idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads
#   starve the one doing the work (measured: RealNVP training 374 s spinning, 29 s passive).
# - the Hugging Face hub is offline unless the owner opts in to downloads
#   (PLAYGROUND_ALLOW_DOWNLOADS=1): a model that is not here fails at once with how to get it,
#   instead of the hub being retried for ~25-45 s per request (huggingface_hub reads it at import).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if os.environ.get("PLAYGROUND_ALLOW_DOWNLOADS", "").strip().lower() not in {"1", "true", "yes", "on"}:
    os.environ["HF_HUB_OFFLINE"] = "1"
