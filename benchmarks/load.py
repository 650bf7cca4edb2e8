"""Load test: N simultaneous users, each with its own ``gradio_client``, calling every endpoint.

1. A reference answer for each user's requests is computed first, one call at a time.
2. Then ``--rounds`` rounds: all users call every endpoint at once; every answer is compared with
   that user's reference (a mixed-up or wrong answer is counted, and the first one is shown;
   numbers and pixels are compared with a small tolerance, see ``FLOAT_TOLERANCE``),
   latency is recorded. A user keeps its client (its Gradio session) across rounds, as a person
   keeps a browser tab.
3. The server's resident memory is read after each round; it must not grow between rounds.

Only "queue full" is an acceptable error. Prints p50/p95 latency per endpoint and error counts.

    python -m benchmarks.load --users 12 [--rounds 2] [--url http://127.0.0.1:7860]
    python -m benchmarks.load --users 12 --url http://127.0.0.1:8080/ --pid-files 'deploy/run/replica-*/pid'

With ``--url`` it loads an app it did not start (e.g. replicas behind nginx, ``deploy/replicas.sh``);
``--pid-files`` (a glob) names the processes whose memory is read, and behind a balancer that sets
``X-Replica`` the table also says how many users (sessions) each replica served.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"


@dataclass
class Scenario:
    """One endpoint: how user ``u`` calls it (``args(u)``), and whether the tab exists."""

    api_name: str
    tab: str
    args: Callable[[int], tuple]


def _example(pattern: str) -> Any:
    from gradio_client import handle_file

    files = sorted(ASSETS.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no example input matches assets/{pattern}")
    return handle_file(str(files[0]))


SCENARIOS = [
    Scenario("kv_cache", "attention", lambda u: (
        ["Llama-2-7B", "Llama-3-8B", "DeepSeek-V2", "Falcon-7B"][u % 4], 1024 * (u + 1), 1 + u % 3, "fp16")),
    Scenario("sde_ode", "sde_ode", lambda u: ("two_moons", "VP", "exact", 300, 100, u)),
    Scenario("flow", "flows", lambda u: ("8_gaussians", "realnvp", 4, 100, u)),
    Scenario("guidance", "guidance", lambda u: ("a red circle", "cfg", 5.0, 2, 10, u)),
    Scenario("controlnet", "controlnet", lambda u: (_example("examples/controlnet/*.png"), "a blue square", 1.0, 5.0, 10, u)),
    Scenario("detect", "detr", lambda u: (_example("detr_examples/scene.png"), 0.5)),
]

TIMING_WORDS = ("time", "seconds", "latency", "_ms", "_s")
# Torch's floating-point results depend slightly on its intra-op thread count, which the short
# one-thread sections (``models.single_thread``: DETR, the attention run) change process-wide
# for a moment; so answers are compared with a tolerance. Another user's answer (another seed)
# is far outside it: a mixed-up answer still counts as wrong.
FLOAT_TOLERANCE = 1e-4  # relative
PIXEL_TOLERANCE = (1.0, 16, 0.01)  # mean |difference| in levels, a large difference, its largest share


@dataclass(frozen=True, eq=False)
class Pixels:
    """An image answer: its RGB pixels (H, W, 3) uint8."""

    array: Any


def fingerprint(value: Any) -> Any:
    """A comparable form of an answer: timings dropped, image files replaced by their pixels."""
    if isinstance(value, dict):
        if "path" in value and isinstance(value.get("path"), str):
            return fingerprint(value["path"])
        return {k: fingerprint(v) for k, v in sorted(value.items())
                if not any(w in k.lower() for w in TIMING_WORDS)}
    if isinstance(value, (list, tuple)):
        return [fingerprint(v) for v in value]
    if isinstance(value, str) and os.path.isfile(value):
        return _file_content(value)
    return value


def _file_content(path: str) -> Any:
    try:
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            return Pixels(np.asarray(image.convert("RGB")))
    except Exception:  # noqa: BLE001 - not an image: hash the bytes
        return "file:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def difference(expected: Any, got: Any, exact: bool = False, where: str = "") -> str | None:
    """Where two fingerprints differ (beyond the tolerances unless ``exact``), or None."""
    import numpy as np

    where = where or "answer"
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in sorted(expected.keys() | got.keys(), key=str):
            found = difference(expected.get(key), got.get(key), exact, f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return f"{where}: {len(expected)} items != {len(got)}"
        return next((d for i, (a, b) in enumerate(zip(expected, got))
                     if (d := difference(a, b, exact, f"{where}[{i}]"))), None)
    if isinstance(expected, Pixels) and isinstance(got, Pixels):
        a, b = expected.array.astype(np.int16), got.array.astype(np.int16)
        if a.shape != b.shape:
            return f"{where}: image {a.shape} != {b.shape}"
        diff = np.abs(a - b)
        mean_limit, large, share_limit = (0, 1, 0.0) if exact else PIXEL_TOLERANCE
        share = float((diff >= large).mean())
        if diff.mean() > mean_limit or share > share_limit:
            return f"{where}: pixels differ by {diff.mean():.2f} levels on average, {share:.1%} by {large}+"
        return None
    if isinstance(expected, float) and isinstance(got, float) and not exact:
        return None if abs(expected - got) <= FLOAT_TOLERANCE * max(1.0, abs(expected)) else \
            f"{where}: {expected!r} != {got!r}"
    return None if expected == got else f"{where}: {str(expected)[:80]} != {str(got)[:80]}"


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    queue_full: dict[str, int] = field(default_factory=dict)
    wrong: dict[str, int] = field(default_factory=dict)
    rounding: dict[str, int] = field(default_factory=dict)  # not bit-identical, within the tolerances
    mismatches: dict[str, list] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, table: str, api: str, item) -> None:
        with self.lock:
            target = getattr(self, table)
            if isinstance(item, int):
                target[api] = target.get(api, 0) + item
            else:
                target.setdefault(api, []).append(item)


def call(client, scenario: Scenario, user: int) -> Any:
    return client.predict(*scenario.args(user), api_name=f"/{scenario.api_name}")


def user_round(client, user: int, scenarios: list[Scenario], reference: dict, results: Results) -> None:
    for scenario in scenarios:
        start = time.perf_counter()
        try:
            answer = call(client, scenario, user)
        except Exception as err:  # noqa: BLE001 - every failure is counted and reported
            kind = "queue_full" if "queue" in str(err).lower() and "full" in str(err).lower() else "errors"
            results.add(kind, scenario.api_name, 1 if kind == "queue_full" else f"{type(err).__name__}: {err}"[:200])
            continue
        results.add("latencies", scenario.api_name, time.perf_counter() - start)
        expected, got = reference[(scenario.api_name, user)], fingerprint(answer)
        wrong = difference(expected, got)
        if wrong:
            results.add("wrong", scenario.api_name, 1)
            results.add("mismatches", scenario.api_name, wrong)
        elif difference(expected, got, exact=True):
            results.add("rounding", scenario.api_name, 1)


def available_scenarios(url: str) -> list[Scenario]:
    from gradio_client import Client

    names = set(Client(url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"])
    return [s for s in SCENARIOS if f"/{s.api_name}" in names]


def references(url: str, users: int, scenarios: list[Scenario]) -> dict:
    from gradio_client import Client

    client = Client(url, verbose=False)
    return {(s.api_name, u): fingerprint(call(client, s, u)) for s in scenarios for u in range(users)}


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    for p in [pid] + _children(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        kids = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def start_server(port: int, env: dict | None = None, args: tuple[str, ...] = ()) -> subprocess.Popen:
    """``python -m playground`` on ``port`` (with ``env`` added to the environment and ``args`` to
    the command line), once it answers; its output goes to a log file, shown if it fails. Also used
    by the tests."""
    import tempfile

    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", **(env or {})}
    log = tempfile.NamedTemporaryFile("w+", prefix="playground-load-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "playground", "--port", str(port), *args], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        if proc.poll() is not None:
            break
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    log.seek(0)
    raise RuntimeError(f"the app did not start on port {port}; its output ({log.name}):\n{log.read()[-3000:]}")


def prepare(url: str, users: int) -> dict:
    """The endpoints the app has, each user's reference answers (one call at a time), and one
    client per user, kept for every round (a person keeps a browser tab)."""
    from gradio_client import Client

    scenarios = available_scenarios(url)
    return {"endpoints": [s.api_name for s in scenarios], "scenarios": scenarios,
            "reference": references(url, users, scenarios),
            "clients": [Client(url, verbose=False) for _ in range(users)]}


def run_rounds(setup: dict, rounds: int, pid: int | None = None, pids: list[int] | None = None) -> dict:
    """``rounds`` rounds of every user calling every endpoint at once: results, and the server's
    resident memory after each round if its ``pid`` is given (each of ``pids``: ``replica_rss_mb``)."""
    clients, memory, results = setup["clients"], [], Results()
    replicas: dict[int, list[float]] = {p: [] for p in pids or []}
    for _ in range(rounds):
        with ThreadPoolExecutor(len(clients)) as pool:
            for future in [pool.submit(user_round, client, u, setup["scenarios"], setup["reference"], results)
                           for u, client in enumerate(clients)]:
                future.result()
        if pid:
            memory.append(rss_mb(pid))
        for p, values in replicas.items():
            values.append(rss_mb(p))
    return {"results": results, "rss_mb": memory, "replica_rss_mb": replicas}


def sessions_per_replica(url: str, clients: list) -> dict[str, int]:
    """Behind a balancer that names the replica in ``X-Replica`` (deploy/): how many of the
    clients' sessions (their affinity cookies) each replica serves. Empty without the header."""
    import httpx

    counts: dict[str, int] = {}
    for client in clients:
        replica = httpx.get(url.rstrip("/") + "/healthz", cookies=client.cookies, timeout=10).headers.get("x-replica")
        if replica:
            counts[replica] = counts.get(replica, 0) + 1
    return counts


def run(url: str, users: int, rounds: int, pid: int | None, pids: list[int] | None = None) -> dict:
    """The whole load test; returns a summary for ``report``."""
    setup = prepare(url, users)
    summary = {**setup, **run_rounds(setup, rounds, pid, pids)}
    summary["sessions"] = sessions_per_replica(url, setup["clients"])
    return summary


def report(summary: dict, users: int) -> None:
    results: Results = summary["results"]
    print(f"{users} users, endpoints: {', '.join(summary['endpoints'])}")
    print(f"{'endpoint':<12}{'calls':>7}{'p50 s':>9}{'p95 s':>9}{'errors':>8}{'queue full':>12}{'wrong':>7}")
    for api in summary["endpoints"]:
        lat = sorted(results.latencies.get(api, []))
        p50 = statistics.median(lat) if lat else float("nan")
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else float("nan")
        print(f"{api:<12}{len(lat):>7}{p50:>9.2f}{p95:>9.2f}{len(results.errors.get(api, [])):>8}"
              f"{results.queue_full.get(api, 0):>12}{results.wrong.get(api, 0):>7}")
    for api, errs in results.errors.items():
        print(f"  {api} error: {errs[0]}")
    for api, diffs in results.mismatches.items():
        print(f"  {api} wrong answer: {diffs[0]}")
    for api, count in results.rounding.items():
        print(f"  {api}: {count} right answers were not bit-identical to the reference (within the tolerances)")
    if summary["rss_mb"]:
        print("server RSS after each round (MB): " + ", ".join(f"{m:.0f}" for m in summary["rss_mb"]))
    for p, values in summary.get("replica_rss_mb", {}).items():
        print(f"process {p} RSS after each round (MB): " + ", ".join(f"{m:.0f}" for m in values))
    if summary.get("sessions"):
        print("sessions per replica (X-Replica): " + ", ".join(f"{r} {n}" for r, n in sorted(summary["sessions"].items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--url", default=None, help="an already running app (default: start one)")
    parser.add_argument("--port", type=int, default=7899)
    parser.add_argument("--pid-files", default=None,
                        help="with --url: a glob of PID files whose processes' memory is read, e.g. 'deploy/run/replica-*/pid'")
    args = parser.parse_args()
    pids = [int(Path(f).read_text()) for f in sorted(glob.glob(args.pid_files))] if args.pid_files else []
    if args.pid_files and not pids:
        raise SystemExit(f"error: no PID file matches {args.pid_files!r}")
    proc = None if args.url else start_server(args.port)
    url = args.url or f"http://127.0.0.1:{args.port}/"
    try:
        summary = run(url, args.users, args.rounds, proc.pid if proc else None, pids)
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)
    report(summary, args.users)


if __name__ == "__main__":
    main()
