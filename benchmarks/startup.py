"""Time to first page: the playground against a bare ``gr.Blocks`` hello world.

Each server is started as a fresh process and timed until ``GET /`` answers 200; runs
alternate between the two so machine load affects both alike. Target (issue 2): ratio <= 1.5.

    python -m benchmarks.startup [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELLO = ("import gradio as gr, sys\n"
         "with gr.Blocks() as demo:\n    gr.Markdown('Hello')\n"
         "demo.launch(server_port=int(sys.argv[1]), ssr_mode=False)\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_to_first_page(command: list[str], port: int, timeout: float = 120) -> float:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).status == 200:
                    return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"no page within {timeout} s: {' '.join(command)}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    hello, playground = [], []
    for _ in range(args.runs):
        port = free_port()
        hello.append(time_to_first_page([sys.executable, "-c", HELLO, str(port)], port))
        port = free_port()
        playground.append(time_to_first_page([sys.executable, "-m", "playground", "--port", str(port)], port))
    h, p = statistics.median(hello), statistics.median(playground)
    print(f"{'server':<22}{'median s':>10}{'runs (s)':>40}")
    print(f"{'gr.Blocks hello world':<22}{h:>10.2f}{' '.join(f'{t:.2f}' for t in hello):>40}")
    print(f"{'python -m playground':<22}{p:>10.2f}{' '.join(f'{t:.2f}' for t in playground):>40}")
    print(f"ratio playground / hello = {p / h:.2f} (target <= 1.5): {'PASS' if p / h <= 1.5 else 'FAIL'}")


if __name__ == "__main__":
    main()
