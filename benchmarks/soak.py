"""Soak: many requests that write files, and the size of the app's temp folder over time (issue 19).

Starts the app with its own temp folder and small limits (so the run is short), sends
``--requests`` calls that each leave new files behind (Guidance images with a new seed each time,
ControlNet with an upload and a new image, DETR with an upload), and prints, every ``--every``
requests, the folder's size and file count beside everything written so far. Without cleaning
the folder would hold all that was written; with it, its size levels off under the limit plus
what the last ``PLAYGROUND_TEMP_KEEP_S`` seconds wrote.

    python -m benchmarks.soak [--requests 600] [--every 50] [--max-mb 0.2] [--keep-s 5] [--max-age-s 120] [--sweep-s 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.load import ROOT, rss_mb, start_server


class Watcher:
    """Lists the folder every ``interval`` seconds: its size now, and every file ever seen."""

    def __init__(self, folder: Path, interval: float = 0.5):
        self.folder, self.interval = folder, interval
        self.seen: dict[str, int] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def snapshot(self) -> tuple[int, int]:
        total = count = 0
        for dirpath, _, names in os.walk(self.folder):
            for name in names:
                path = os.path.join(dirpath, name)
                try:
                    size = os.lstat(path).st_size
                except OSError:
                    continue
                self.seen[path] = max(size, self.seen.get(path, 0))
                total, count = total + size, count + 1
        return total, count

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.snapshot()

    def written(self) -> int:
        return sum(self.seen.values())


def requests(client, n: int):
    """``n`` calls, cycling through three endpoints that write files."""
    from gradio_client import handle_file

    sketch = handle_file(str(sorted((ROOT / "assets/examples/controlnet").glob("*.png"))[0]))
    scene = handle_file(str(ROOT / "assets/detr_examples/scene.png"))
    for i in range(n):
        kind = i % 3
        if kind == 0:
            client.predict("a red circle", "cfg", 3.0, 2, 4, i, api_name="/guidance")
        elif kind == 1:
            client.predict(sketch, "a blue square", 1.0, 3.0, 4, i, api_name="/controlnet")
        else:
            client.predict(scene, 0.5, api_name="/detect")
        yield i + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--max-mb", type=float, default=0.2)
    parser.add_argument("--keep-s", type=float, default=5.0)
    parser.add_argument("--max-age-s", type=float, default=120.0)
    parser.add_argument("--sweep-s", type=float, default=2.0)
    parser.add_argument("--port", type=int, default=7898)
    args = parser.parse_args()
    from gradio_client import Client

    folder = Path(tempfile.mkdtemp(prefix="playground-soak-"))
    env = {"PLAYGROUND_TEMP_DIR": str(folder), "PLAYGROUND_TEMP_MAX_MB": str(args.max_mb),
           "PLAYGROUND_TEMP_KEEP_S": str(args.keep_s), "PLAYGROUND_TEMP_MAX_AGE_S": str(args.max_age_s),
           "PLAYGROUND_TEMP_SWEEP_S": str(args.sweep_s)}
    proc = start_server(args.port, env)
    watcher = Watcher(folder)
    watcher.thread.start()
    print(f"temp folder {folder}; limit {args.max_mb} MB, never younger than {args.keep_s:g} s, "
          f"at most {args.max_age_s:g} s old, swept every {args.sweep_s:g} s")
    print(f"{'requests':>9}{'seconds':>9}{'folder MB':>11}{'files':>7}{'written MB':>12}{'RSS MB':>8}")
    start = time.monotonic()
    try:
        client = Client(f"http://127.0.0.1:{args.port}/", verbose=False)
        for done in requests(client, args.requests):
            if done % args.every == 0 or done == args.requests:
                size, count = watcher.snapshot()
                print(f"{done:>9}{time.monotonic() - start:>9.0f}{size / 1e6:>11.2f}{count:>7}"
                      f"{watcher.written() / 1e6:>12.2f}{rss_mb(proc.pid):>8.0f}", flush=True)
    finally:
        watcher.stopped.set()
        proc.terminate()
        proc.wait(timeout=120)
    left = sum(1 for _ in folder.rglob("*") if _.is_file())
    print(f"after the server stopped: {left} files left in the folder")
    folder.rmdir() if not any(folder.iterdir()) else None


if __name__ == "__main__":
    main()
