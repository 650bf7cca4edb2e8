"""Generative Playground: the app shell shared by every tab."""

import os

# Read at import time by gradio and by torch's OpenMP runtime, so set before either loads:
# - analytics stay off unless the user turns them on;
# - idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads
#   starve the one doing the work (measured: RealNVP training 374 s spinning, 29 s passive).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
