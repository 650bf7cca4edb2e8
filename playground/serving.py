"""The app behind a load balancer (issue 19): liveness and readiness routes, and a graceful stop.

* ``GET /healthz``: 200 ``ok`` while the process serves HTTP (cheap: no model, no queue).
* ``GET /readyz``: the first call starts loading, in the background, the embedded models of the
  tabs shown (a model belongs to the tab whose ``demos/<tab>/`` holds its loader); 503 with
  ``{"ready": false, "loading": [...]}`` until they are loaded, then 200 with ``{"ready": true}``;
  503 with ``{"ready": false, "unavailable": {model: message}}`` if one cannot be loaded, and
  503 with ``{"ready": false, "draining": true}`` once the process is stopping. Optional models
  (Hugging Face checkpoints a tab can switch to) are never loaded by it.
* **Drain** (``drain``, on SIGTERM): new work (joining the queue, ``/call``, ``/run``, uploads) gets
  503 and a message; runs in flight and their downloads go on; once nothing is in flight, or after
  ``PLAYGROUND_DRAIN_TIMEOUT_S``, the server closes.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time

NEW_WORK = re.compile(r"^/gradio_api/(queue/join|call/|run/|api/|upload)")
# Downloads in flight (a result's files, fetched just after it completes). Not the event streams:
# a run's stream is counted as the run, and a stream a client left open (or one no run feeds)
# must not hold a stopping server for its whole timeout.
DOWNLOAD = re.compile(r"^/gradio_api/file[=/]")
DRAINING_MESSAGE = "This server is restarting: reload the page to continue on another one."


class Lifecycle:
    """One process's serving state: readiness of the tabs' models, requests in flight, draining."""

    def __init__(self, tabs: list[str]):
        self.tabs = list(tabs)
        self.draining = threading.Event()
        self.in_flight = 0
        self._lock = threading.Lock()
        self._models: dict[str, str] | None = None  # name -> "loading" | "loaded" | message

    # -- readiness -----------------------------------------------------------------------------
    def required_models(self) -> list[str]:
        """The embedded models the tabs shown declare (``TAB.models``): what must load before the
        replica takes traffic."""
        from playground import tabs

        return [spec.name for tab_id in self.tabs for spec in tabs.get(tab_id).models if spec.embedded_dir]

    def readiness(self) -> tuple[int, dict]:
        if self.draining.is_set():
            return 503, {"ready": False, "draining": True}
        with self._lock:
            if self._models is None:
                self._models = {name: "loading" for name in self.required_models()}
                threading.Thread(target=self._load_models, daemon=True, name="playground-readiness").start()
            state = dict(self._models)
        unavailable = {n: s for n, s in state.items() if s not in ("loading", "loaded")}
        if unavailable:
            return 503, {"ready": False, "unavailable": unavailable}
        loading = [n for n, s in state.items() if s == "loading"]
        if loading:
            return 503, {"ready": False, "loading": loading}
        return 200, {"ready": True, "models": sorted(state)}

    def _load_models(self) -> None:
        from playground import models

        for name in list(self._models or {}):
            try:
                models.REGISTRY.get_loaded(name)
                outcome = "loaded"
            except models.ModelUnavailable as err:
                outcome = str(err)
            except Exception as err:  # noqa: BLE001 - reported by /readyz, never raised
                outcome = f"Model '{name}' failed to load ({type(err).__name__}: {str(err)[:200]})"
            with self._lock:
                self._models[name] = outcome

    # -- drain ---------------------------------------------------------------------------------
    def busy(self, demo) -> int:
        """Runs queued or running, plus downloads in flight."""
        queue = demo._queue
        return len(queue) + queue.get_active_worker_count() + self.in_flight

    def drain(self, demo, timeout_s: float, quiet_s: float = 2.0, poll_s: float = 0.05) -> bool:
        """Refuse new work, wait until nothing has been in flight for ``quiet_s`` (a client fetches
        a result's files just after it completes) or ``timeout_s`` passed, then close ``demo``.
        True if everything in flight finished."""
        self.draining.set()
        start, idle_since = time.monotonic(), None
        print(f"draining: {self.busy(demo)} runs and requests in flight; up to {timeout_s:.0f} s",
              file=sys.stderr, flush=True)
        while time.monotonic() - start < timeout_s:
            if self.busy(demo):
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= quiet_s:
                break
            time.sleep(poll_s)
        finished = not self.busy(demo)
        if not finished:
            print(f"draining: timed out after {timeout_s:.0f} s with {self.busy(demo)} still in flight",
                  file=sys.stderr, flush=True)
        demo.close(verbose=False)
        return finished


async def _respond(send, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"cache-control", b"no-store"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class Serving:
    """ASGI middleware: ``/healthz`` and ``/readyz``; during a drain, 503 for new work; counts
    the downloads in flight."""

    def __init__(self, app, lifecycle: Lifecycle):
        self.app, self.lifecycle = app, lifecycle

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, lifecycle = scope.get("path", ""), self.lifecycle
        if path == "/healthz":
            return await _respond(send, 200, b"ok\n", b"text/plain")
        if path == "/readyz":
            status, state = lifecycle.readiness()
            return await _respond(send, status, json.dumps(state).encode(), b"application/json")
        if lifecycle.draining.is_set() and scope.get("method") == "POST" and NEW_WORK.match(path):
            return await _respond(send, 503, json.dumps({"detail": DRAINING_MESSAGE}).encode(),
                                  b"application/json")
        counted = bool(DOWNLOAD.match(path))
        if counted:
            with lifecycle._lock:
                lifecycle.in_flight += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            if counted:
                with lifecycle._lock:
                    lifecycle.in_flight -= 1
