"""Public-link safety of the shell: served files and upload size (issue 9, items 1-2)."""

import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from tests.conftest import call_raw


def http_status(url: str, data: bytes | None = None, headers: dict | None = None) -> int:
    try:
        return urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers or {}),
                                      timeout=30).status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.parametrize("path", [
    "/etc/passwd", "../../../../etc/passwd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "playground/app.py", "playground/models.py", "README.md", "requirements.txt",
    ".git/config", ".gitignore", ".venv/pyvenv.cfg", "assets/PROVENANCE.md",
])
def test_files_outside_the_apps_outputs_are_refused(app_url, path):
    from tests.conftest import ROOT

    assert http_status(f"{app_url}/gradio_api/file={path}") in (403, 404)
    if not path.startswith(("/", "%", "..")):
        assert http_status(f"{app_url}/gradio_api/file={ROOT / path}") in (403, 404)


@pytest.mark.parametrize("url", ["https://example.com/x.html", "http://127.0.0.1:1/", "HTTP://example.com",
                                 "//example.com/x", "file:///etc/passwd"])
@pytest.mark.parametrize("route", ["/gradio_api/file=", "/gradio_api/file/"])
def test_file_routes_never_fetch_a_url(app_url, monkeypatch, route, url):
    """Gradio would fetch a public URL and serve it from our origin: a shared app is no proxy.
    (This machine is offline, so Gradio's fetch is replaced by one that would always succeed.)"""
    import gradio.routes
    from starlette.responses import PlainTextResponse

    fetched = []

    async def fetch(url, request):
        fetched.append(url)
        return PlainTextResponse("<script>alert(1)</script>", media_type="text/html")

    monkeypatch.setattr(gradio.routes, "secure_url_stream_response", fetch)
    assert http_status(f"{app_url}{route}{url}") == 403
    assert http_status(f"{app_url}{route}{urllib.parse.quote(url, safe='')}") == 403
    assert fetched == []


@pytest.mark.parametrize("method,path", [("GET", "/gradio_api/runs"), ("GET", "/gradio_api/run-history/buckets"),
                                         ("POST", "/gradio_api/run-history/connect")])
def test_the_run_history_that_can_use_hugging_face_tokens_is_off(app_url, method, path):
    data = b"{}" if method == "POST" else None
    assert http_status(f"{app_url}{path}", data, {"Content-Type": "application/json"}) in (404, 405)


def test_uploads_over_10_mb_are_refused_with_413(app_url):
    boundary = "----playground" + uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + b"0" * (10 * 1024 * 1024 + 1024) \
        + f"\r\n--{boundary}--\r\n".encode()
    status = http_status(f"{app_url}/gradio_api/upload", body,
                         {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 413


def test_raw_http_call_works(app_url):
    event, payload = call_raw(app_url, "models", [])
    assert event == "complete" and "models" in payload[0]


def test_session_state_is_bounded_so_new_sessions_cannot_exhaust_memory(monkeypatch):
    """Every call from a new session makes Gradio keep a session state (~0.5 MB here); beyond
    ``SESSION_CAPACITY`` the least recently used are dropped."""
    from playground import settings
    from playground.app import build_app, launch_kwargs
    from tests.conftest import free_port

    monkeypatch.setattr(settings, "SESSION_CAPACITY", 5)
    demo = build_app(tabs=[])
    demo.launch(**launch_kwargs(port=free_port()), prevent_thread_lock=True, quiet=True)
    try:
        for _ in range(12):  # each raw call is a new session
            assert call_raw(demo.local_url.rstrip("/"), "models", [])[0] == "complete"
        assert 1 <= len(demo.state_holder.session_data) <= 5
    finally:
        demo.close()
