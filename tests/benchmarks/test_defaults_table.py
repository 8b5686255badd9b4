"""benchmarks/defaults_table.py: its grid measures what each bundled config ships, and its table reads right.

No training here (a real row trains for tens of seconds); the training path is the public API, tested
elsewhere.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("defaults_table", ROOT / "benchmarks" / "defaults_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_row_of_the_grid_includes_exactly_the_shipped_encoders(script):
    for (dataset, subset), variants in script.VARIANTS.items():
        shipped = [v for v in variants if script.is_shipped(dataset, subset, v)]
        assert len(shipped) == 1, f"{dataset}/{subset}: shipped encoders measured {len(shipped)} times"


def test_a_subset_drops_every_other_column(script):
    assert script.subset_overrides("digits", "image+audio") == ["data.features.text=null"]
    assert script.subset_overrides("digits", "text") == ["data.features.image=null", "data.features.audio=null"]
    assert script.subset_overrides("emoji", "all") == []


def test_shipped_compares_settings_with_factory_defaults_filled_in(script):
    # An explicit default value is the same encoder as leaving it out; another value is not.
    assert script.is_shipped("speech_commands", "all", {"audio": {"type": "crnn", "kernel_size": 3}})
    assert not script.is_shipped("speech_commands", "all", {"audio": {"type": "crnn", "kernel_size": 5}})


def test_table_gives_mean_and_sample_std_and_bolds_the_best_of_each_row_group(script):
    def runs(*accuracies):
        return [{"accuracy": a, "train_seconds": 10.0 + i, "parameters": 12345} for i, a in enumerate(accuracies)]

    rows = [("digits", "image", {"image": {"type": "conv2d", "pooling": "average"}}, runs(0.9, 0.8), True),
            ("digits", "image", {"image": {"type": "conv2d", "pooling": "flatten"}}, runs(0.97, 0.99), False)]
    lines = script.table(rows)
    assert lines[2] == ("| digits | image | image `conv2d` (pooling: average) | 2 | 0.850 ± 0.071 | 10 | 12,345 "
                        "| yes |")
    assert lines[3] == ("| digits | image | image `conv2d` (pooling: flatten) | 2 | **0.980 ± 0.014** | 10 "
                        "| 12,345 |  |")
