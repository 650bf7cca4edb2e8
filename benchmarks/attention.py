"""Attention cache tab: server time of every control change (target: < 100 ms) and of the torch run.

    python benchmarks/attention.py [--repeats 20] [--skip-run]

Times each callback as Gradio runs it: the function, then every output component's
``postprocess`` (plotly figures serialised to JSON). The head-sharing diagram is cached per
model shape, so a preset seen before costs less than a new custom shape (timed separately).
The "CPU ms" column is this process's CPU time: on a shared, loaded machine it estimates the
wall time a quiet machine would give (the callbacks are single-threaded). The torch run has no target; it is shown
for information. Other processes on the machine slow these down: the load is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402

from demos.attention import compute, ui  # noqa: E402

TARGET_MS = 100.0
VIEW = (32_768, 1, "bf16", "bf16")
SHAPE = (60, 128, 128, 8, 512, 64, 236.0)


def postprocess(outputs) -> None:
    """What Gradio does to each output before sending it: plots to JSON, tables to rows."""
    for value in outputs:
        if hasattr(value, "to_plotly_json"):
            gr.Plot().postprocess(value)
        elif isinstance(value, list) and value and isinstance(value[0], list):
            gr.Dataframe().postprocess(value)


def measure(fn, args_list, repeats: int) -> tuple[float, float, float]:
    """(median wall, worst wall, median CPU) milliseconds of fn(*args) + postprocess.

    CPU time (this process only) leaves out the time spent waiting for a core, so on a loaded
    machine it estimates what a quiet machine would take (the callbacks are single-threaded).
    """
    fn(*args_list[0])  # warm-up (plotly validators load on first use)
    wall, cpu = [], []
    for i in range(repeats):
        args = args_list[i % len(args_list)]
        start, start_cpu = time.perf_counter(), time.process_time()
        postprocess(fn(*args))
        wall.append((time.perf_counter() - start) * 1e3)
        cpu.append((time.process_time() - start_cpu) * 1e3)
    return statistics.median(wall), max(wall), statistics.median(cpu)


def cases() -> list[tuple[str, object, list]]:
    presets = list(compute.PRESETS)
    contexts = [1_024, 4_096, 32_768, 131_072]
    return [
        ("drag the context slider", ui.on_view,
         [(p, "MLA", *SHAPE, t, 1, "bf16", "bf16") for p in presets for t in contexts]),
        ("change batch / precision", ui.on_view,
         [(p, "MLA", *SHAPE, 4_096, b, d, "bf16") for p in presets for b, d in [(8, "fp8"), (64, "int4")]]),
        ("choose a preset", ui.on_preset, [(p, "MLA", *SHAPE, *VIEW) for p in presets]),
        # every custom head_dim distinct, so the cached head diagram never helps
        ("edit a custom number", ui.on_shape,
         [(ui.CUSTOM, a, 32, 32, head_dim, 8, 512, 64, 7.0, *VIEW)
          for head_dim in range(8, 300) for a in compute.ATTENTIONS]),
        ("kv_cache API", ui.kv_cache_api, [(p, 4_096, 1, "bf16") for p in presets]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-run", action="store_true", help="skip the torch run")
    args = parser.parse_args()
    print(f"load average (1, 5, 15 min): {os.getloadavg()}, cores: {os.cpu_count()}")
    print(f"{'event':<28}{'median ms':>11}{'worst ms':>10}{'CPU ms':>8}{'target ms':>11}  ok")
    for name, fn, arg_list in cases():
        median, worst, cpu = measure(fn, arg_list, args.repeats)
        print(f"{name:<28}{median:>11.1f}{worst:>10.1f}{cpu:>8.1f}{TARGET_MS:>11.0f}  "
              f"{'yes' if median < TARGET_MS else 'NO'}")
    if not args.skip_run:
        from demos.attention import modules

        start = time.perf_counter()
        modules.real_run(compute.check_run(compute.RunParams()))
        print(f"{'torch run (button, no target)':<28}{(time.perf_counter() - start) * 1e3:>11.0f}")


if __name__ == "__main__":
    main()
