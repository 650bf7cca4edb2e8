"""Command line: ``python -m playground [--host --port --share --device --tabs --root-path]``."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading

from playground import settings, tempfiles


TRUE = {"1", "true", "yes", "on"}


def configure_environment(environ=os.environ) -> None:
    """The server process's environment, set before gradio or torch is imported (both read it then):

    - analytics stay off unless the user turns them on;
    - idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning threads
      starve the one doing the work (measured: RealNVP training 374 s spinning, 29 s passive);
    - the Hugging Face hub is offline unless the owner opts in to downloads
      (``PLAYGROUND_ALLOW_DOWNLOADS=1``): a model that is not here fails at once with how to get
      it, instead of the hub being retried for ~25-45 s per request (huggingface_hub reads it at
      import).

    Only the command line calls it (and whatever starts the app as it does): importing
    ``playground`` changes nothing in the process.
    """
    environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if environ.get("PLAYGROUND_ALLOW_DOWNLOADS", "").strip().lower() not in TRUE:
        environ["HF_HUB_OFFLINE"] = "1"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m playground",
                                     description="Generative Playground: live demos of generative models.")
    parser.add_argument("--host", default=settings.DEFAULT_HOST,
                        help="interface to listen on (default %(default)s; 0.0.0.0 for your network)")
    parser.add_argument("--port", type=int, default=settings.DEFAULT_PORT, help="port (default %(default)s)")
    parser.add_argument("--share", action="store_true", help="also create a public gradio.live link")
    parser.add_argument("--device", choices=settings.DEVICE_CHOICES, default=None,
                        help="where models run (default: PLAYGROUND_DEVICE or auto = cuda, then mps, then cpu)")
    parser.add_argument("--tabs", default=None,
                        help="comma-separated subset of tab ids to show (default: all)")
    parser.add_argument("--root-path", default="",
                        help="the sub-path a reverse proxy serves the app under, e.g. /playground (default: none)")
    return parser.parse_args(argv)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_tabs(spec: str | None) -> list[str] | None:
    from playground.tabs import TAB_IDS as TABS

    if spec is None:
        return None
    tabs = [t.strip() for t in spec.split(",") if t.strip()]
    unknown = [t for t in tabs if t not in TABS]
    if unknown or not tabs:
        fail(f"unknown tab id(s) {', '.join(unknown) or '(none given)'}; choose from: {', '.join(TABS)}")
    return tabs


def check_port(host: str, port: int) -> None:
    if not 0 < port < 65536:
        fail(f"--port must be in 1..65535, got {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # As the server itself binds: a port whose last connections linger in TIME-WAIT (a replica
        # that just crashed) is free at once, while a port something listens on is still refused.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            fail(f"cannot listen on {host}:{port} ({err.strerror}); pass another --port or stop "
                 "the program using it")


def check_root_path(path: str) -> str:
    """The sub-path without its trailing ``/`` (``""`` for none); a malformed one is a one-line error."""
    path = path.strip()
    if not path or path == "/":
        return ""
    if not path.startswith("/") or any(c in path for c in " ?#\\") or "//" in path or "/../" in path + "/":
        fail(f"--root-path must be a path like /playground (a leading '/', no spaces, '?', '#' or '..'), "
             f"got {path[:60]!r}")
    return path.rstrip("/")


def stop_on_sigterm(demo, lifecycle) -> None:
    """SIGTERM drains (no new work, runs in flight finish, at most ``PLAYGROUND_DRAIN_TIMEOUT_S``),
    then the server closes and the process exits 0; a second SIGTERM stops at once."""
    def on_sigterm(signum, frame):
        if lifecycle.draining.is_set():
            raise KeyboardInterrupt
        threading.Thread(target=lifecycle.drain, args=(demo, settings.DRAIN_TIMEOUT_S), daemon=True,
                         name="playground-drain").start()

    signal.signal(signal.SIGTERM, on_sigterm)


def check_device(device: str | None) -> None:
    if device is None:
        return
    os.environ["PLAYGROUND_DEVICE"] = device
    if device in ("cuda", "mps"):
        from playground.models import DeviceUnavailable, resolve_device

        try:
            resolve_device(device)
        except DeviceUnavailable as err:
            fail(str(err))


def build_app_or_fail(build_app, tabs):
    """The app; a broken lesson file stops the start with its one-line error (file and step)."""
    from playground.lessons import LessonError

    try:
        return build_app(tabs)
    except LessonError as err:
        fail(f"lesson: {err}")


def main(argv: list[str] | None = None) -> None:
    configure_environment()  # first: before anything below imports gradio or torch
    args = parse_args(argv)
    root_path = check_root_path(args.root_path)
    tempfiles.configure_process()  # before Gradio reads GRADIO_TEMP_DIR
    tabs = check_tabs(args.tabs)
    check_device(args.device)
    check_port(args.host, args.port)
    settings.mark_public(args.host, args.share)

    from playground.app import build_app, launch_kwargs
    from playground.serving import Lifecycle
    from playground.tabs import TAB_IDS

    demo = build_app_or_fail(build_app, tabs)
    lifecycle = Lifecycle(tabs or TAB_IDS)
    demo.launch(**launch_kwargs(args.host, args.port, args.share, root_path, lifecycle), prevent_thread_lock=True)
    stop_on_sigterm(demo, lifecycle)
    tempfiles.Cleaner().start()
    if args.share and not demo.share_url:
        print("warning: --share could not create a public link (no network?); "
              f"serving locally only at {demo.local_url}", file=sys.stderr, flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
