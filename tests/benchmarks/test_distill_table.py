"""benchmarks/distill_table.py renders its tables from stored results (no training here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "distill_table.py"


def _module():
    spec = importlib.util.spec_from_file_location("distill_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(name, fraction, seed, accuracy, parameters):
    return {"name": name, "fraction": fraction, "seed": seed, "parameters": parameters, "savedmodel_mb": 1.5,
            "p50_ms": 3.0 + seed, "accuracy": accuracy, "ece": 0.05, "train_seconds": 10.0 + seed}


def test_tables_show_each_row_per_fraction_with_mean_and_std_over_seeds():
    module = _module()
    results = {}
    for seed in (0, 1):
        results[module.key("teacher", 1.0, seed)] = _row("teacher", 1.0, seed, 0.80 + 0.02 * seed, 1000)
        for name, accuracy in (("distilled", 0.60), ("distilled-labelled", 0.40), ("alone", 0.30)):
            results[module.key(name, 0.1, seed)] = _row(name, 0.1, seed, accuracy + 0.02 * seed, 100)
    lines = module.tables(results, [0.1], seeds=2)
    assert any("data.label_fraction 0.1" in line and "2 seed(s)" in line for line in lines)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")[1:]]
            for line in lines if line.startswith("| ") and "---" not in line and not line.startswith("| run")}
    assert list(rows) == ["teacher (every label)", "student, distilled",
                          "student, distilled on the labelled rows only", "student alone"]
    assert rows["teacher (every label)"][0] == "1,000" and rows["teacher (every label)"][3] == "0.810 ± 0.014"
    assert rows["student alone"][3] == "0.310 ± 0.014" and rows["student alone"][2] == "3.500 ± 0.707"
    assert rows["student, distilled"][-1] == "10"  # mean training seconds
    # The teacher is trained once per seed, whatever the student's fraction.
    assert module.key("teacher", 0.1, 0) == module.key("teacher", 1.0, 0)
