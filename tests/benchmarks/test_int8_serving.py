"""benchmarks/int8_serving.py: its table reads right (no training here; the export path is tested in
tests/export/test_quantize.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("int8_serving", ROOT / "benchmarks" / "int8_serving.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_gives_both_exports_and_the_int8_over_float32_ratios(script):
    result = {"label": "digits (our encoders)", "int8_layers": 4, "float32_layers": 6,
              "float32": {"saved_model_mb": 5.6, "variables_mb": 4.0, "p50_ms": 2.0, "p99_ms": 10.0, "test_accuracy": 1.0},
              "int8": {"saved_model_mb": 2.8, "variables_mb": 1.2, "p50_ms": 3.0, "p99_ms": 12.0, "test_accuracy": 0.99}}
    lines = script.table([result])
    assert lines[2] == "| digits (our encoders) | float32 | 5.60 | 4.00 | 2.00 | 10.00 | 1.000 |"
    assert lines[3] == "| | int8 (4 layers int8, 6 float32) | 2.80 | 1.20 | 3.00 | 12.00 | 0.990 |"
    assert lines[4] == "| | **int8 / float32** | **0.50x** | 0.30x | **1.50x** | 1.20x | **-0.010** |"


def test_unknown_case_is_refused_listing_the_valid_ones(script, capsys):
    with pytest.raises(SystemExit):
        script.main(["--cases", "digits,resnet"])
    assert "unknown case(s) resnet; valid: digits, keras_hub" in capsys.readouterr().err
