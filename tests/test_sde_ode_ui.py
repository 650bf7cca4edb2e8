"""The SDE vs ODE tab states what the learned score costs, as the benchmark measured it (issue 14,
item 6: a user waited 28 s where the tab said nothing)."""

import json

from demos.sde_ode import ui


def test_the_score_control_quotes_the_benchmark(tmp_path, monkeypatch):
    stored = json.loads(ui.TIMING_FILE.read_text())  # shipped: written by benchmarks/sde_ode.py --write
    assert stored["by"] == "python benchmarks/sde_ode.py --write" and stored["train_seconds"] > 0 and stored["run_seconds"] > 0
    timing = {**stored, "run_seconds": 31.2, "train_seconds": 27.6, "cores": 2}
    monkeypatch.setattr(ui, "TIMING_FILE", tmp_path / "sde_ode_timing.json")
    ui.TIMING_FILE.write_text(json.dumps(timing))
    assert "took 31 s, 28 s of it training, on 2 CPU cores" in ui.score_info()
    ui.TIMING_FILE.unlink()
    assert "time it here with benchmarks/sde_ode.py" in ui.score_info()  # no guess without one
