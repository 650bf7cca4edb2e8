"""Command line: ``python -m playground [--host --port --share --device --tabs]``."""

from __future__ import annotations

import argparse
import os
import socket
import sys

from playground import settings


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
    return parser.parse_args(argv)


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_tabs(spec: str | None) -> list[str] | None:
    from playground.app import TABS

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
        try:
            sock.bind((host, port))
        except OSError as err:
            fail(f"cannot listen on {host}:{port} ({err.strerror}); pass another --port or stop "
                 "the program using it")


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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    tabs = check_tabs(args.tabs)
    check_device(args.device)
    check_port(args.host, args.port)
    settings.mark_public(args.host, args.share)

    from playground.app import build_app, launch_kwargs

    demo = build_app(tabs)
    demo.launch(**launch_kwargs(args.host, args.port, args.share), prevent_thread_lock=True)
    if args.share and not demo.share_url:
        print("warning: --share could not create a public link (no network?); "
              f"serving locally only at {demo.local_url}", file=sys.stderr, flush=True)
    demo.block_thread()

if __name__ == "__main__":
    main()
