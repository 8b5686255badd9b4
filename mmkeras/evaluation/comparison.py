"""Runs side by side as served: size, raw-bytes latency, accuracy and calibration (``distill_report.json``).

``compare_runs({"teacher": T, "student": S})`` measures, for each run:

- ``parameters``: of its best model;
- ``savedmodel_mb``: the bytes of its TF Serving version folder (``export_run`` into a temporary
  folder: SavedModel, variables, warm-up records; 1 MB = 10^6 bytes);
- ``p50_ms`` / ``p90_ms``: ``serving_default`` at batch 1, called ``calls`` times on single rows of
  the split as a client sends them (text as UTF-8, files as their bytes; a warm-up call first, then
  wall-clock per call);
- ``accuracy``, ``macro_f1``, ``ece``, ``nll``: of the run's calibrated distribution on the split,
  the figures ``evaluate_run`` reports, computed without writing its report into the runs' folders
  (a teacher's report.json stays as it was).

``distill_report(run_dir)`` compares a distilled run with its teacher (``"distilled_from"`` in its
run.json) and writes ``RUN/distill_report.json``; ``comparison_table`` renders the rows.

Example:
    >>> rows = {"teacher": {"parameters": 16586, "savedmodel_mb": 1.52, "p50_ms": 2.1, "accuracy": 0.75, "ece": 0.05},
    ...         "student": {"parameters": 1186, "savedmodel_mb": 1.2, "p50_ms": 1.9, "accuracy": 0.6, "ece": 0.04}}
    >>> print("\\n".join(comparison_table(rows)))
    | model | parameters | SavedModel MB | batch-1 p50 ms | accuracy | ECE |
    |---|---:|---:|---:|---:|---:|
    | teacher | 16,586 | 1.52 | 2.10 | 0.750 | 0.050 |
    | student | 1,186 | 1.20 | 1.90 | 0.600 | 0.040 |
    | student / teacher | 0.072 | 0.789 | 0.905 | -0.150 | -0.010 |
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mmkeras.training.run import Run

REPORT_FILE = "distill_report.json"


def savedmodel_mb(path) -> float:
    """The size of a SavedModel version folder, in MB (10^6 bytes)."""
    return sum(file.stat().st_size for file in Path(path).rglob("*") if file.is_file()) / 1e6


def serving_latency(path, config, split: str = "test", calls: int = 30) -> dict:
    """``{"p50_ms", "p90_ms", "calls"}`` of ``serving_default`` at batch 1 on rows of ``split`` (raw bytes)."""
    import tensorflow as tf

    from mmkeras.export.predict import read_metadata
    from mmkeras.export.warmup import audio_columns, example_rows, raw_request_values

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    names = {name: info["column"] for name, info in read_metadata(path)["input_columns"].items()}
    manifest, rows = example_rows(config, calls, splits=(split, "validation", "train"))
    requests = [{name: tf.constant([value]) for name, value in
                 raw_request_values(manifest, row, names, audio_columns(config)).items()} for row in rows]
    signature(**requests[0])  # the first call pays for tracing and initialisation
    seconds = []
    for index in range(calls):
        start = time.perf_counter()
        signature(**requests[index % len(requests)])["probabilities"].numpy()
        seconds.append(time.perf_counter() - start)
    milliseconds = np.asarray(seconds) * 1000.0
    return {"p50_ms": float(np.percentile(milliseconds, 50)), "p90_ms": float(np.percentile(milliseconds, 90)),
            "calls": calls}


def split_scores(run_dir, split: str = "test") -> dict:
    """``{"accuracy", "macro_f1", "ece", "nll", "num_examples"}`` of the run's calibrated predictions on ``split``."""
    from mmkeras.evaluation.calibration import apply_temperature, head_kind, run_temperature
    from mmkeras.evaluation.metrics import classification_metrics
    from mmkeras.evaluation.predictions import load_run, predict_split

    loaded = load_run(Run(run_dir))
    preprocessor, labels, raw, _ = predict_split(loaded, split, subsets=False)
    calibrated = apply_temperature(raw, run_temperature(loaded.run), head_kind(loaded.config))
    metrics = classification_metrics(labels, calibrated, list(preprocessor.class_names))
    return {key: metrics[key] for key in ("accuracy", "macro_f1", "ece", "nll", "num_examples")}


def measure_run(run_dir, split: str = "test", calls: int = 30) -> dict:
    """One row of ``compare_runs``: parameters, SavedModel size, batch-1 latency and split scores."""
    from mmkeras.config import load_config
    from mmkeras.export.serving import export_run

    run = Run(run_dir)
    config = load_config(run.config_file)
    with tempfile.TemporaryDirectory(prefix="mmkeras-compare-") as folder:
        path = export_run(run.run_dir, Path(folder) / "model", version=1)
        size, latency = savedmodel_mb(path), serving_latency(path, config, split, calls)
    return {"run_dir": str(run.run_dir.resolve()), "parameters": run.status().get("parameters"),
            "savedmodel_mb": round(size, 4), **latency, **split_scores(run.run_dir, split)}


def compare_runs(runs: dict, split: str = "test", calls: int = 30) -> dict:
    """``{name: measure_run(run_dir)}`` for ``runs`` (``{name: run_dir}``), in their order."""
    return {name: measure_run(run_dir, split, calls) for name, run_dir in runs.items()}


def distill_report(run_dir, split: str = "test", calls: int = 30) -> dict:
    """Compare the distilled run ``run_dir`` with its teacher and write ``RUN/distill_report.json``."""
    from mmkeras.training.atomic import write_text_atomically

    run = Run(run_dir)
    status = run.status()
    if not status.get("distilled_from"):
        raise ValueError(f"{run.run_dir} is not a distilled run (its run.json has no 'distilled_from')")
    rows = compare_runs({"teacher": status["distilled_from"], "student": run.run_dir}, split, calls)
    report = {"split": split, "latency": f"serving_default, raw bytes, batch 1, {calls} calls", **rows,
              "student_over_teacher": _ratios(rows["teacher"], rows["student"]), "distill": status.get("distill")}
    write_text_atomically(run.run_dir / REPORT_FILE, json.dumps(report, indent=2))
    return report


_COLUMNS = (("parameters", "parameters"), ("savedmodel_mb", "SavedModel MB"), ("p50_ms", "batch-1 p50 ms"),
            ("accuracy", "accuracy"), ("ece", "ECE"))
_DIFFERENCES = ("accuracy", "ece")  # compared as differences; the others as ratios


def _ratios(teacher: dict, student: dict) -> dict:
    return {key: (student[key] - teacher[key] if key in _DIFFERENCES else student[key] / teacher[key])
            for key, _ in _COLUMNS}


def _cell(key: str, value) -> str:
    if key == "parameters":
        return f"{value:,}"
    return f"{value:.3f}" if key in _DIFFERENCES else f"{value:.2f}"


def comparison_table(rows: dict, reference: str = "teacher") -> list:
    """Markdown lines: one row per run of ``rows``, then each other run over ``reference`` (ratios of
    size and latency, differences of accuracy and ECE)."""
    lines = ["| model | " + " | ".join(title for _, title in _COLUMNS) + " |", "|---|" + "---:|" * len(_COLUMNS)]
    lines += [f"| {name} | " + " | ".join(_cell(key, row[key]) for key, _ in _COLUMNS) + " |" for name, row in rows.items()]
    for name, row in rows.items():
        if name != reference and reference in rows:
            ratios = _ratios(rows[reference], row)
            lines.append(f"| {name} / {reference} | " + " | ".join(
                f"{ratios[key]:+.3f}" if key in _DIFFERENCES else f"{ratios[key]:.3f}" for key, _ in _COLUMNS) + " |")
    return lines
