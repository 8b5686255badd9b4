"""benchmarks/pretrain_table.py renders its two tables from stored results (no training here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pretrain_table.py"


def _module():
    spec = importlib.util.spec_from_file_location("pretrain_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seed(r5_init, r5_after, scratch, pretrained):
    recall = lambda r5: {"recall@1": r5 / 2, "recall@5": r5, "recall@10": min(1.0, 2 * r5), "queries": 240}  # noqa: E731
    return {"pretrain": {"retrieval": {"text->image": recall(r5_after)}, "retrieval_at_init": {"text->image": recall(r5_init)},
                         "epochs": 30},
            "0.1-scratch": {"accuracy": scratch, "macro_f1": scratch - 0.1},
            "0.1-pretrained": {"accuracy": pretrained, "macro_f1": pretrained - 0.1}}


def test_tables_show_mean_and_sample_std_over_seeds():
    module = _module()
    results = {"emoji": {"0": _seed(0.02, 0.30, 0.40, 0.50), "1": _seed(0.04, 0.34, 0.44, 0.52)}}
    lines = module.tables(results, SimpleNamespace(loss="siglip", fraction_values=[0.1]))
    text = "\n".join(lines)
    assert "**emoji**: test-split retrieval, 2 seed(s), 30 pretraining epochs (siglip)" in text
    row = next(line for line in lines if line.startswith("| text->image"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:2] == ["text->image", "240"]
    assert cells[4] == "0.030 ± 0.014" and cells[5] == "0.320 ± 0.028"  # R@5 at init, pretrained
    accuracy = next(line for line in lines if line.startswith("| 10% "))
    assert [c.strip() for c in accuracy.strip("|").split("|")] == [
        "10%", "0.420 ± 0.028", "0.510 ± 0.014", "0.320 ± 0.028", "0.410 ± 0.014"]
