"""The Flows tab states the training time the benchmark measured (issue 14, item 6)."""

import json

from demos.flows import ui


def test_the_train_hint_quotes_the_benchmark(tmp_path, monkeypatch):
    stored = json.loads(ui.TIMING_FILE.read_text())  # shipped: written by benchmarks/flows.py --write
    assert stored["by"] == "python benchmarks/flows.py --write" and stored["seconds"] > 0
    timing = {**stored, "seconds": 22.4, "cores": 2, "load_average": 1.5, "measured": "2026-12-02"}
    monkeypatch.setattr(ui, "TIMING_FILE", tmp_path / "flows_timing.json")
    ui.TIMING_FILE.write_text(json.dumps(timing))
    hint = ui.train_hint()
    assert "22 s on 2 CPU cores at load 1.5" in hint and "benchmarks/flows.py" in hint
    assert "10 to 15" not in hint
    ui.TIMING_FILE.unlink()
    assert "time it here with `python benchmarks/flows.py`" in ui.train_hint()  # no guess without one
