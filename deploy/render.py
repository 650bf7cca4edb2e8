"""Fill in ``deploy/nginx.conf.template`` or ``deploy/haproxy.cfg.template`` (standard library only).

    python deploy/render.py nginx --ports 7861,7862 --listen 127.0.0.1:8080 --run-dir deploy/run \\
        [--root-path /playground] [--foreground] [--out deploy/run/nginx.conf]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = {"nginx": HERE / "nginx.conf.template", "haproxy": HERE / "haproxy.cfg.template"}


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def ports_of(text: str) -> list[int]:
    try:
        ports = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        fail(f"--ports must be comma-separated port numbers, got {text[:60]!r}")
    if not ports or not all(0 < p < 65536 for p in ports):
        fail(f"--ports must be port numbers in 1..65535, got {text[:60]!r}")
    return ports


def render(kind: str, ports: list[int], listen: str, run_dir: Path, root_path: str = "",
           foreground: bool = False) -> str:
    """The configuration text for ``kind`` (``nginx`` or ``haproxy``)."""
    root_path = root_path.rstrip("/")
    if root_path and not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", root_path):
        fail(f"--root-path must be a path like /playground, got {root_path[:60]!r}")
    if kind == "nginx":
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;" for p in ports)
        extras = "" if not root_path else (
            "        # Served under a sub-path: the site's root sends visitors there; browsers ask for /favicon.ico\n"
            f"        location = / {{ return 302 {root_path}/; }}\n"
            "        location = /favicon.ico { proxy_pass http://playground_replicas/favicon.ico; }")
        fields = {"SERVERS": servers, "LOCATION": f"{root_path}/", "ROOT_PATH_OR_NONE": root_path or "(none)",
                  "ROOT_PATH_EXTRAS": extras,
                  "DAEMON": "daemon off;" if foreground else ""}
    else:
        servers = "\n".join(f"    server r{i} 127.0.0.1:{p} cookie r{i} check inter 2s"
                            for i, p in enumerate(ports, 1))
        rules = "" if not root_path else (
            f"    http-request redirect location {root_path}/ code 302 if {{ path {root_path} }}\n"
            f"    http-request deny deny_status 404 unless {{ path_beg {root_path}/ }}\n"
            f"    http-request replace-path {root_path}(/.*) \\1")
        fields = {"SERVERS": servers, "ROOT_PATH_RULES": rules}
    fields.update(LISTEN=listen, RUN_DIR=str(run_dir.resolve()))
    text = TEMPLATES[kind].read_text()
    for name, value in fields.items():
        text = text.replace("{{" + name + "}}", value)
    leftover = re.findall(r"\{\{\w+\}\}", text)
    assert not leftover, leftover
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(TEMPLATES))
    parser.add_argument("--ports", required=True, help="the replicas' ports, e.g. 7861,7862")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="address:port the balancer listens on")
    parser.add_argument("--run-dir", default=str(HERE / "run"), help="PID file, logs and nginx's temp folders")
    parser.add_argument("--root-path", default="", help="serve the app under this sub-path, e.g. /playground")
    parser.add_argument("--foreground", action="store_true", help="nginx: `daemon off;` (tests, systemd)")
    parser.add_argument("--out", default=None, help="write here instead of standard output")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    if args.kind == "nginx":
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (run_dir / "nginx-temp" / sub).mkdir(parents=True, exist_ok=True)
    text = render(args.kind, ports_of(args.ports), args.listen, run_dir, args.root_path, args.foreground)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
