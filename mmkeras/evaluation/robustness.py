"""Robustness in every report: accuracy with only some modalities present, and under noise.

- ``subsets``: every non-empty subset of the run's modalities (``"image+audio"``) -> accuracy with
  only those present; the others reach the model missing, through their presence flags, exactly
  as the exported model sees a request whose other inputs are "".
- ``noise``: per modality, accuracy at rising corruption of that modality alone (the others
  clean): Gaussian pixel noise, white noise at falling SNR, token drop
  (``mmkeras.data.columns.noise``). The corruption is applied to each column's prepared value,
  before its features are computed (audio noise is added to the waveform, then the log-mel front
  end runs), with a fixed seed per level, so a report is reproducible.

Example:
    >>> import numpy as np
    >>> labels = np.array([0, 1, 1])
    >>> full = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    >>> subset_accuracies(labels, full, {"image": np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])},
    ...                   ["image", "audio"])
    {'image+audio': 1.0, 'image': 0.6667}
"""

from __future__ import annotations

import numpy as np

from mmkeras.evaluation.predictions import model_probabilities, subset_name


def _accuracy(labels, probabilities) -> float:
    return round(float((np.asarray(probabilities).argmax(1) == labels).mean()), 4) if len(labels) else 0.0


def subset_accuracies(labels, probabilities, subset_probabilities: dict, columns: list) -> dict:
    """``{subset: accuracy}`` for all the modalities together and every subset ``predict_split`` gave."""
    out = {subset_name(columns): _accuracy(labels, probabilities)}
    out.update({name: _accuracy(labels, p) for name, p in subset_probabilities.items()})
    return out


def noise_curves(loaded, split: str, *, seed: int = 0) -> dict:
    """``{column: {"noise", "unit", "curve": [{"level", "accuracy"}, ...]}}`` on ``split`` of a ``LoadedRun``.

    The first point of each curve is the clean data (level ``null``). Columns whose class has no
    corruption (``Column.noise`` is None) are left out.
    """
    import tensorflow as tf

    from mmkeras.data.pipeline import caches, prepared_batches

    config, preprocessor = loaded.config, loaded.preprocessor
    batches = prepared_batches(config, split, preprocessor, batch_size=config.train.batch_size)
    if caches(config.data):
        batches = batches.cache()  # decoded once, corrupted at every level

    def accuracy(column=None, level=None, index=0) -> float:
        labels, predictions = [], []
        for number, (batch, label) in enumerate(batches):
            if column is not None:
                batch = dict(batch)
                noise_seed = tf.constant([seed * 1000 + index, number], tf.int64)
                batch[column.name] = column.add_noise(batch, level, noise_seed)
            predictions.append(model_probabilities(loaded.model, preprocessor.featurize(batch)).argmax(1))
            labels.append(np.asarray(label))
        labels, predictions = np.concatenate(labels), np.concatenate(predictions)
        return round(float((labels == predictions).mean()), 4) if len(labels) else 0.0

    clean = accuracy()
    curves = {}
    for position, column in enumerate(preprocessor.columns.values()):
        if column.noise is None:
            continue
        points = [{"level": None, "accuracy": clean}]
        for index, level in enumerate(column.noise.levels):
            points.append({"level": level, "accuracy": accuracy(column, level, position * 100 + index)})
        curves[column.name] = {"noise": column.noise.name, "unit": column.noise.unit, "curve": points}
    return curves


def plot_robustness(robustness: dict, path) -> None:
    """One figure: subset accuracies (bars) and one noise curve per modality."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = robustness["noise"]
    figure, axes = plt.subplots(1, 1 + len(curves), figsize=(4.2 * (1 + len(curves)), 3.6), squeeze=False)
    names = list(robustness["subsets"])
    axes[0][0].barh(names, [robustness["subsets"][n] for n in names], color="tab:blue")
    axes[0][0].set_xlim(0, 1)
    axes[0][0].invert_yaxis()
    axes[0][0].set_xlabel("accuracy")
    axes[0][0].set_title("modalities present")
    for axis, (column, curve) in zip(axes[0][1:], curves.items()):
        points = curve["curve"][1:]
        axis.plot(range(len(points) + 1), [p["accuracy"] for p in curve["curve"]], "o-")
        axis.set_xticks(range(len(points) + 1), ["clean"] + [f"{p['level']:g}" for p in points])
        axis.set_ylim(0, 1.02)
        axis.set_xlabel(curve["unit"])
        axis.set_title(f"{column}: {curve['noise']}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def robustness_markdown(robustness: dict) -> list:
    """The report.md lines of the robustness section."""
    lines = ["## Robustness", "", "Accuracy with only these modalities present (the others missing):", "",
             "| present | accuracy |", "|---|---|"]
    lines += [f"| {name} | {accuracy:.4f} |" for name, accuracy in robustness["subsets"].items()]
    for column, curve in robustness["noise"].items():
        levels = curve["curve"]
        lines += ["", f"{column}: {curve['noise']}, {curve['unit']}", "",
                  "| " + " | ".join(["clean"] + [f"{p['level']:g}" for p in levels[1:]]) + " |",
                  "|" + "---|" * len(levels),
                  "| " + " | ".join(f"{p['accuracy']:.4f}" for p in levels) + " |"]
    return lines + ["", "![robustness](robustness.png)", ""]
