"""Shared test settings: offline, no analytics, deterministic threads."""

import os
import socket
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("PLAYGROUND_DEVICE", "cpu")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI (playground/__main__.py), before torch loads

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def app_url():
    """The whole app (every tab), served on a free local port for the test session."""
    from playground.app import build_app, launch_kwargs

    demo = build_app()
    demo.launch(**launch_kwargs(port=free_port()), prevent_thread_lock=True, quiet=True)
    yield demo.local_url.rstrip("/")
    demo.close()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright, one per test session: Playwright's sync API cannot be
    started twice in one thread, so every browser test (tests/e2e and the serving tests) shares it."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def client(app_url):
    """A ``gradio_client.Client`` connected to the test app."""
    from gradio_client import Client

    return Client(app_url, verbose=False)


def call_raw(app_url: str, api_name: str, data: list, timeout: float = 120) -> tuple[str, object]:
    """Call an endpoint over plain HTTP (as a stranger could): ``POST /gradio_api/call/<name>``.

    ``data`` is sent as raw JSON, so NaN and Infinity go through (gradio_client refuses them).
    Returns ``(event, payload)``: ``("complete", outputs)`` or ``("error", message)``.
    """
    import json
    import urllib.request

    body = json.dumps({"data": data}, allow_nan=True).encode()
    request = urllib.request.Request(f"{app_url}/gradio_api/call/{api_name}", data=body,
                                     headers={"Content-Type": "application/json"})
    event_id = json.loads(urllib.request.urlopen(request, timeout=timeout).read())["event_id"]
    stream = urllib.request.urlopen(f"{app_url}/gradio_api/call/{api_name}/{event_id}", timeout=timeout)
    event, payload = None, None
    for raw_line in stream.read().decode().splitlines():
        if raw_line.startswith("event:"):
            event = raw_line.split(":", 1)[1].strip()
        elif raw_line.startswith("data:") and event in ("complete", "error"):
            text = raw_line.split(":", 1)[1].strip()
            try:
                payload = json.loads(text)
            except json.JSONDecodeError:
                payload = text
    return event, payload
