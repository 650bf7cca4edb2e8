"""Importing the playground changes nothing in the process: the environment and torch's threads
are the command line's to set (``playground.__main__.configure_environment``), not an import's."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

# What the CLI sets: a copy of the environment without them shows any import that sets them too.
SET_BY_THE_CLI = ("GRADIO_ANALYTICS_ENABLED", "OMP_WAIT_POLICY", "HF_HUB_OFFLINE", "PLAYGROUND_ALLOW_DOWNLOADS",
                  "GRADIO_TEMP_DIR", "PLAYGROUND_DEVICE", "PLAYGROUND_PUBLIC")

IMPORT_EVERYTHING = """
import importlib, json, os, pkgutil, sys
before = dict(os.environ)
import torch  # loaded first, so that a playground module setting its threads would show
threads_before = [torch.get_num_threads(), torch.get_num_interop_threads()]
import playground
names = sorted(m.name for m in pkgutil.iter_modules(playground.__path__, "playground.") if m.name != "playground.__main__")
import playground.__main__ as cli  # as `python -m playground` would, without running main()
for name in names:
    importlib.import_module(name)
threads = [torch.get_num_threads(), torch.get_num_interop_threads()]
print(json.dumps({"before": before, "after": dict(os.environ), "modules": names,
                  "threads": [threads_before, threads]}))
"""

def run_clean(code: str, **extra: str) -> object:
    env = {k: v for k, v in os.environ.items() if k not in SET_BY_THE_CLI}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, **extra}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_every_playground_module_leaves_the_environment_and_torch_threads_alone():
    seen = run_clean(IMPORT_EVERYTHING)
    assert {"playground.app", "playground.models", "playground.ui_helpers"} <= set(seen["modules"])
    changed = {k: (seen["before"].get(k), seen["after"].get(k))
               for k in set(seen["before"]) | set(seen["after"]) if seen["before"].get(k) != seen["after"].get(k)}
    assert changed == {}
    threads_before, threads_after = seen["threads"]
    assert threads_after == threads_before


def test_the_command_line_sets_what_the_server_needs():
    """Hub offline unless ``PLAYGROUND_ALLOW_DOWNLOADS=1``, passive OpenMP waits, no analytics;
    a value the user set for the last two stays."""
    from playground.__main__ import configure_environment

    environ = {}
    configure_environment(environ)
    assert environ == {"GRADIO_ANALYTICS_ENABLED": "False", "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}
    environ = {"HF_HUB_OFFLINE": "0", "OMP_WAIT_POLICY": "ACTIVE", "GRADIO_ANALYTICS_ENABLED": "True"}
    configure_environment(environ)
    assert environ == {"HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "ACTIVE", "GRADIO_ANALYTICS_ENABLED": "True"}
    environ = {"PLAYGROUND_ALLOW_DOWNLOADS": "1"}
    configure_environment(environ)
    assert "HF_HUB_OFFLINE" not in environ


def test_the_server_process_is_offline_and_passive_before_torch_loads():
    """``main()`` configures the process before anything it imports reads the environment."""
    code = ("import os, sys, playground.__main__ as cli\n"
            "cli.parse_args = lambda argv: (_ for _ in ()).throw(SystemExit(0))\n"
            "try:\n    cli.main([])\nexcept SystemExit:\n    pass\n"
            "import json; print(json.dumps([os.environ.get(k) for k in "
            "('HF_HUB_OFFLINE', 'OMP_WAIT_POLICY', 'GRADIO_ANALYTICS_ENABLED')] + ['torch' in sys.modules]))")
    assert run_clean(code) == ["1", "PASSIVE", "False", False]
    assert run_clean(code, PLAYGROUND_ALLOW_DOWNLOADS="1") == [None, "PASSIVE", "False", False]
