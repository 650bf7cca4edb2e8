"""Time to first page: the playground against a bare ``gr.Blocks`` hello world, and what each tab adds.

1. Each server is started as a fresh process and timed until ``GET /`` answers 200; the runs
   alternate between the two so machine load affects both alike, and the best run of each is
   compared (the least disturbed one: load only ever adds time). Target (issue 21): ratio <= 1.2.
   The CPU seconds each server process used until then are shown too (Linux): on a machine
   shared with other work they move far less than wall-clock time.
2. Per tab, in a fresh process with Gradio and the app shell already imported: the time
   ``build_app([tab])`` takes beyond ``build_app([])`` (the tab's imports and its ``build``), the
   time its components add to one computation of the page's config (``launch`` computes it
   twice), and the modules the tab pulls in that the shell had not (model libraries flagged),
   so the tab that breaks the budget is named. Best of ``--tab-runs`` processes per tab.

    python -m benchmarks.startup [--runs 5] [--tab-runs 3] [--no-tabs] [--tabs sde_ode,flows]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.2
HEAVY = ("scipy", "torch", "transformers", "diffusers")  # never imported at build (issue 21)
HELLO = ("import gradio as gr, sys\n"
         "with gr.Blocks() as demo:\n    gr.Markdown('Hello')\n"
         "demo.launch(server_port=int(sys.argv[1]), ssr_mode=False)\n")
ENV = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_to_first_page(command: list[str], port: int, timeout: float = 120) -> tuple[float, float | None]:
    """(wall-clock seconds until ``GET /`` answers 200, CPU seconds the process used by then)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < timeout:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).status == 200:
                    return time.perf_counter() - start, cpu_seconds(proc.pid)
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"no page within {timeout} s: {' '.join(command)}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process (Linux ``/proc``), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


# ----------------------------------------------------------------------------- per tab
def measure_build(tab: str | list[str]) -> dict:
    """In this (fresh) process: what ``build_app([tab])`` adds to ``build_app([])``; a list of
    tabs is measured together (row "all")."""
    import gradio  # noqa: F401 - imported before timing: the hello world imports it too

    from playground import app

    shell = app.build_app([])  # warms Gradio's one-time work; then timed again
    start = time.perf_counter()
    shell = app.build_app([])
    shell_s = time.perf_counter() - start
    shell_config_s = _config_seconds(shell)
    before = set(sys.modules)
    start = time.perf_counter()
    demo = app.build_app(tab if isinstance(tab, list) else [tab])
    build_s = time.perf_counter() - start
    new = sorted(set(sys.modules) - before)
    packages = sorted({m.split(".")[0] for m in new} - {"demos", "playground"})
    return {"tab": "all" if isinstance(tab, list) else tab, "build_s": build_s - shell_s, "config_s": _config_seconds(demo) - shell_config_s,
            "components": len(demo.blocks) - len(shell.blocks), "modules": len(new), "packages": packages,
            "heavy": [m for m in HEAVY if m in sys.modules]}


def _config_seconds(demo, repeat: int = 3) -> float:
    """Best time of one ``get_config_file`` (what ``launch`` computes twice)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        demo.get_config_file()
        times.append(time.perf_counter() - start)
    return min(times)


def tab_breakdown(tabs: list[str | list[str]], runs: int) -> list[dict]:
    """``measure_build`` for each tab in fresh processes, best of ``runs`` (interleaved)."""
    best: dict = {}
    for _ in range(runs):
        for tab in tabs:
            code = f"import json; from benchmarks.startup import measure_build; print(json.dumps(measure_build({tab!r})))"
            out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True)
            if out.returncode != 0:  # shown, not fatal: the other tabs are still measured
                print(f"measuring tab {tab} failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            key = row["tab"]
            if key not in best:
                best[key] = row
            else:
                best[key]["build_s"] = min(best[key]["build_s"], row["build_s"])
                best[key]["config_s"] = min(best[key]["config_s"], row["config_s"])
    return list(best.values())


def print_breakdown(rows: list[dict], runs: int) -> None:
    print(f"\nWhat each tab adds to the start-up (best of {runs} fresh processes; Gradio and the shell imported first)")
    print(f"{'tab':<18}{'build s':>9}{'config s':>10}{'blocks':>8}{'modules':>9}  packages it pulls in (HEAVY flagged)")
    for r in rows:
        heavy = f"  HEAVY: {', '.join(r['heavy'])}" if r["heavy"] else ""
        print(f"{r['tab']:<18}{r['build_s']:>9.3f}{r['config_s']:>10.3f}{r['components']:>8}{r['modules']:>9}  "
              f"{', '.join(r['packages']) or '-'}{heavy}")
    tabs = [r for r in rows if r["tab"] != "all"]
    print(f"{'sum of tabs':<18}{sum(r['build_s'] for r in tabs):>9.3f}{sum(r['config_s'] for r in tabs):>10.3f}"
          f"{sum(r['components'] for r in tabs):>8}")


# ----------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="first-page runs of each server (best is compared)")
    parser.add_argument("--tab-runs", type=int, default=3, help="processes per tab for the breakdown (best kept)")
    parser.add_argument("--no-tabs", action="store_true", help="skip the per-tab breakdown")
    parser.add_argument("--tabs", default=None, help="passed to python -m playground --tabs (default: every tab)")
    args = parser.parse_args()
    command = [sys.executable, "-m", "playground", *(["--tabs", args.tabs] if args.tabs else []), "--port"]
    hello, playground = [], []
    for _ in range(args.runs):
        port = free_port()
        hello.append(time_to_first_page([sys.executable, "-c", HELLO, str(port)], port))
        port = free_port()
        playground.append(time_to_first_page([*command, str(port)], port))
    print(f"Time to first page, {args.runs} interleaved runs each{f' (--tabs {args.tabs})' if args.tabs else ''}")
    print(f"{'server':<22}{'best s':>8}{'median s':>10}{'best CPU s':>12}   runs (s)")
    for name, runs in (("gr.Blocks hello world", hello), ("python -m playground", playground)):
        walls, cpus = [w for w, _ in runs], [c for _, c in runs if c is not None]
        cpu = f"{min(cpus):>12.2f}" if cpus else f"{'-':>12}"
        print(f"{name:<22}{min(walls):>8.2f}{statistics.median(walls):>10.2f}{cpu}   {' '.join(f'{t:.2f}' for t in walls)}")
    h, p = min(w for w, _ in hello), min(w for w, _ in playground)
    print(f"ratio playground / hello (best runs) = {p / h:.2f} (target <= {TARGET}): {'PASS' if p / h <= TARGET else 'FAIL'}")
    print(f"ratio of medians = {statistics.median(w for w, _ in playground) / statistics.median(w for w, _ in hello):.2f}")
    if all(c is not None for _, c in hello + playground):
        print(f"ratio of best CPU seconds = {min(c for _, c in playground) / min(c for _, c in hello):.2f}")
    if not args.no_tabs:
        from playground.tabs import TAB_IDS as TABS

        tabs = args.tabs.split(",") if args.tabs else TABS
        print_breakdown(tab_breakdown([*tabs, list(tabs)], args.tab_runs), args.tab_runs)


if __name__ == "__main__":
    main()
