"""``evaluate_run(run_dir)``: the evaluation report of a trained run (report.json, report.md, PNGs).

The per-modality ablation removes one modality at a time through its presence flag (the same way a
missing cell reaches the model) and reports the accuracy without it: the simplest honest measure of
what each modality contributes.

Example (not run here: it needs a trained run):
    report = evaluate_run("runs/demo", split="test")
    report["accuracy"], report["modality_ablation"]["audio"]["delta"]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mmkeras.evaluation.metrics import classification_metrics, reliability_bins
from mmkeras.training.run import Run


def load_run_model(run: Run):
    """The run's best (else last) ``.keras`` model, with mmkeras components registered."""
    import keras

    from mmkeras import registry

    registry.load_all()
    return keras.models.load_model(run.model_path())


def _probabilities(model, features) -> np.ndarray:
    import keras

    output = model(features, training=False)
    if isinstance(output, dict):
        output = output["probabilities"]
    elif isinstance(output, (list, tuple)):
        output = output[0]
    return keras.ops.convert_to_numpy(output).astype(np.float64)


def _without(features: dict, column: str) -> dict:
    import tensorflow as tf

    ablated = dict(features)
    ablated[column] = tf.zeros_like(features[column])
    ablated[f"{column}_present"] = tf.zeros_like(features[f"{column}_present"])
    return ablated


def predict_split(run: Run, split: str, *, ablate: bool = True):
    """Labels, probabilities and {column: probabilities without it} on ``split`` of the run's config."""
    from mmkeras.config import load_config
    from mmkeras.data.diagnosis import data_errors
    from mmkeras.data.pipeline import build_dataset
    from mmkeras.data.preprocessor import Preprocessor

    config = load_config(run.config_file)
    if getattr(config.data, split) is None:
        raise ValueError(f"the run's config has no data.{split} manifest to evaluate on")
    preprocessor = Preprocessor.load(run.preprocessor_dir)
    model = load_run_model(run)
    columns = [spec.column for spec in preprocessor.input_specs]
    dataset = build_dataset(config, split, preprocessor, training=False,
                            batch_size=config.train.batch_size, drop_remainder=False)
    labels, probabilities = [], []
    ablations = {column: [] for column in columns} if ablate and len(columns) > 1 else {}
    with data_errors(config, preprocessor, [split]):  # a bad file: DataError naming row and file
        for features, label in dataset:
            labels.append(np.asarray(label))
            probabilities.append(_probabilities(model, features))
            for column in ablations:
                ablations[column].append(_probabilities(model, _without(features, column)))
    return (preprocessor, np.concatenate(labels), np.concatenate(probabilities),
            {c: np.concatenate(p) for c, p in ablations.items()})


def _plot_reliability(bins: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    width = bins[0]["high"] - bins[0]["low"]
    axes.bar(centres, [b["accuracy"] for b in bins], width=width * 0.95, edgecolor="black", label="accuracy")
    axes.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    axes.set_xlabel("confidence")
    axes.set_ylabel("accuracy")
    axes.set_title("Reliability diagram")
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _write_markdown(run: Run, report: dict, labels, probabilities, class_names) -> None:
    from sklearn.metrics import classification_report

    lines = [
        f"# Evaluation report: {run.run_dir.name} ({report['split']} split)",
        "",
        f"- examples: {report['num_examples']}",
        f"- accuracy: {report['accuracy']:.4f}",
        f"- macro F1: {report['macro_f1']:.4f}",
        f"- expected calibration error (15 bins): {report['ece']:.4f}",
        f"- negative log-likelihood: {report['nll']:.4f}",
        "",
        "## Classification report (scikit-learn)",
        "",
        "```",
        classification_report(labels, probabilities.argmax(1), labels=list(range(len(class_names))),
                              target_names=class_names, zero_division=0, digits=4),
        "```",
    ]
    if report["modality_ablation"]:
        lines += ["", "## Modality ablation (modality removed through its presence flag)", "",
                  "| removed | accuracy | change |", "|---|---|---|",
                  f"| (none) | {report['accuracy']:.4f} | |"]
        for column, row in report["modality_ablation"].items():
            lines.append(f"| {column} | {row['accuracy']:.4f} | {row['delta']:+.4f} |")
    lines += ["", "## Confusion matrix", "", "![confusion matrix](confusion_matrix.png)", "",
              "## Calibration", "", "![reliability diagram](reliability_diagram.png)", ""]
    (run.run_dir / "report.md").write_text("\n".join(lines))


def evaluate_run(run_dir, split: str = "test") -> dict:
    """Evaluate the run's best model on ``split``; write report.json, report.md and the PNGs."""
    from mmkeras.training.callbacks import confusion_matrix_figure

    run = Run(run_dir)
    preprocessor, labels, probabilities, ablations = predict_split(run, split)
    class_names = list(preprocessor.class_names)
    report = {"split": split, "model": run.model_path().name, **classification_metrics(labels, probabilities, class_names)}
    report["modality_ablation"] = {
        column: {"accuracy": float((p.argmax(1) == labels).mean()),
                 "delta": float((p.argmax(1) == labels).mean()) - report["accuracy"]}
        for column, p in ablations.items()
    }
    report["reliability"] = reliability_bins(labels, probabilities)
    figure = confusion_matrix_figure(np.array(report["confusion_matrix"]), class_names,
                                     f"Confusion matrix ({split})")
    figure.savefig(run.run_dir / "confusion_matrix.png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(figure)
    _plot_reliability(report["reliability"], run.run_dir / "reliability_diagram.png")
    (run.run_dir / "report.json").write_text(json.dumps(report, indent=2))
    _write_markdown(run, report, labels, probabilities, class_names)
    return report
