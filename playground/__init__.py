"""Generative Playground: the app shell shared by every tab."""

import os

# Gradio reads this at import time: analytics stay off unless the user turns them on.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
