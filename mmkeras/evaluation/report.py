"""``evaluate_run(run_dir)``: the evaluation report of a trained run (report.json, report.md, PNGs).

What the report answers, each in report.json and as a section of report.md:

- **Can I believe the probability?** Metrics come from the calibrated distribution (the run's
  temperature, ``mmkeras.evaluation.calibration``); ``"calibration"`` gives the temperature and ECE
  / NLL before and after it on this split; the reliability diagram shows both curves.
- **Which modality drove the decisions?** ``"attribution"``: integrated gradients per modality
  (``mmkeras.evaluation.attribution``), normalised to shares; ``"modality_ablation"``: accuracy
  with one modality removed through its presence flag.
- **What if a modality is missing or noisy?** ``"robustness"``: accuracy for every subset of
  present modalities, and per modality a noise curve (``mmkeras.evaluation.robustness``).

Example (not run here: it needs a trained run):
    report = evaluate_run("runs/demo", split="test")
    report["calibration"]["temperature"], report["robustness"]["subsets"]["image+audio"]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mmkeras.evaluation import robustness as robust
from mmkeras.evaluation.calibration import apply_temperature, calibration_summary, head_kind, run_calibration
from mmkeras.evaluation.metrics import classification_metrics, reliability_bins
from mmkeras.evaluation.predictions import load_run, load_run_model, predict_split, subset_name  # noqa: F401
from mmkeras.training.run import Run


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_reliability(before: list[dict], after: list[dict], temperature: float, path: Path) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(4.8, 4.5))
    width = after[0]["high"] - after[0]["low"]
    axes.bar([(b["low"] + b["high"]) / 2 for b in after], [b["accuracy"] for b in after], width=width * 0.95,
             edgecolor="black", alpha=0.6, label=f"calibrated (T = {temperature:.3g})")
    used = [b for b in before if b["count"]]
    axes.plot([b["confidence"] for b in used], [b["accuracy"] for b in used], "o-", color="tab:red",
              label="before calibration (T = 1)")
    axes.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    axes.set_xlabel("confidence")
    axes.set_ylabel("accuracy")
    axes.set_title("Reliability diagram")
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_shares(shares: dict, path: Path) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(4.5, 0.6 + 0.5 * len(shares)))
    axes.barh(list(shares), list(shares.values()), color="tab:green")
    axes.set_xlim(0, 1)
    axes.invert_yaxis()
    axes.set_xlabel("share of the decision (integrated gradients)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _markdown(run: Run, report: dict, labels, probabilities, class_names) -> list:
    from sklearn.metrics import classification_report

    calibration = report["calibration"]
    lines = [
        f"# Evaluation report: {run.run_dir.name} ({report['split']} split)", "",
        f"- examples: {report['num_examples']}",
        f"- accuracy: {report['accuracy']:.4f}",
        f"- macro F1: {report['macro_f1']:.4f}",
        f"- expected calibration error (15 bins, calibrated): {report['ece']:.4f}",
        f"- negative log-likelihood (calibrated): {report['nll']:.4f}", "",
        "## Classification report (scikit-learn)", "", "```",
        classification_report(labels, probabilities.argmax(1), labels=list(range(len(class_names))),
                              target_names=class_names, zero_division=0, digits=4),
        "```", "", "## Calibration", "",
        f"Temperature T = {calibration['temperature']:.4f} ({calibration['fitted_on']}); on this split:", "",
        "| | ECE | NLL |", "|---|---|---|",
        f"| before (T = 1) | {calibration['ece_before']:.4f} | {calibration['nll_before']:.4f} |",
        f"| after | {calibration['ece_after']:.4f} | {calibration['nll_after']:.4f} |", "",
        "![reliability diagram](reliability_diagram.png)", "",
    ]
    if report.get("attribution"):
        attribution = report["attribution"]
        lines += ["## Attribution", "", f"Mean share of each decision by modality ({attribution['method']}, "
                  f"{attribution['examples']} examples):", "", "| modality | share |", "|---|---|"]
        lines += [f"| {column} | {share:.4f} |" for column, share in attribution["shares"].items()]
        lines += ["", "![modality shares](attribution.png)", ""]
    if report["modality_ablation"]:
        lines += ["## Modality ablation (modality removed through its presence flag)", "",
                  "| removed | accuracy | change |", "|---|---|---|", f"| (none) | {report['accuracy']:.4f} | |"]
        lines += [f"| {c} | {row['accuracy']:.4f} | {row['delta']:+.4f} |" for c, row in report["modality_ablation"].items()]
        lines.append("")
    if report.get("robustness"):
        lines += robust.robustness_markdown(report["robustness"])
    return lines + ["## Confusion matrix", "", "![confusion matrix](confusion_matrix.png)", ""]


def _calibration(run: Run, config, labels, raw) -> tuple:
    fitted = run_calibration(run)
    temperature, kind = float(fitted.get("temperature", 1.0)), head_kind(config)
    summary = calibration_summary(labels, raw, temperature, kind)
    summary["fitted_on"] = (f"fitted on the {fitted.get('split')} split, {fitted.get('examples')} examples"
                            if fitted.get("fitted") else f"not fitted: {fitted.get('reason')}")
    return apply_temperature(raw, temperature, kind), summary


def evaluate_run(run_dir, split: str = "test", *, attribution: bool = True, robustness: bool = True) -> dict:
    """Evaluate the run's best model on ``split``; write report.json, report.md and the PNGs.

    ``attribution`` / ``robustness`` False leave those sections out (they cost extra passes).
    """
    from mmkeras.training.callbacks import confusion_matrix_figure

    run = Run(run_dir)
    loaded = load_run(run)
    preprocessor, labels, raw, subsets = predict_split(loaded, split)
    class_names, columns = list(preprocessor.class_names), loaded.columns
    probabilities, calibration = _calibration(run, loaded.config, labels, raw)
    report = {"split": split, "model": run.model_path().name, **classification_metrics(labels, probabilities, class_names),
              "calibration": calibration}
    accuracy = report["accuracy"]
    report["modality_ablation"] = {}
    for column in columns if len(columns) > 1 else []:
        kept = float((subsets[subset_name([c for c in columns if c != column])].argmax(1) == labels).mean())
        report["modality_ablation"][column] = {"accuracy": kept, "delta": kept - accuracy}
    if attribution:
        from mmkeras.data.pipeline import build_dataset
        from mmkeras.evaluation.attribution import dataset_attribution

        dataset = build_dataset(loaded.config, split, preprocessor, training=False,
                                batch_size=loaded.config.train.batch_size, drop_remainder=False)
        report["attribution"] = dataset_attribution(loaded.model, dataset, columns)
        _plot_shares(report["attribution"]["shares"], run.run_dir / "attribution.png")
    if robustness:
        report["robustness"] = {"subsets": robust.subset_accuracies(labels, probabilities, subsets, columns),
                                "noise": robust.noise_curves(loaded, split, seed=loaded.config.data.seed)}
        robust.plot_robustness(report["robustness"], run.run_dir / "robustness.png")
    report["reliability"] = reliability_bins(labels, probabilities)
    report["reliability_before_calibration"] = reliability_bins(labels, raw)
    figure = confusion_matrix_figure(np.array(report["confusion_matrix"]), class_names, f"Confusion matrix ({split})")
    figure.savefig(run.run_dir / "confusion_matrix.png", dpi=100)
    _pyplot().close(figure)
    _plot_reliability(report["reliability_before_calibration"], report["reliability"], calibration["temperature"],
                      run.run_dir / "reliability_diagram.png")
    (run.run_dir / "report.json").write_text(json.dumps(report, indent=2))
    (run.run_dir / "report.md").write_text("\n".join(_markdown(run, report, labels, probabilities, class_names)))
    return report
