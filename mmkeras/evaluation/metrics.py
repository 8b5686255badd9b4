"""Classification metrics computed from probabilities: accuracy, macro-F1, per-class, calibration.

Example:
    >>> import numpy as np
    >>> probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    >>> labels = np.array([0, 1, 1])
    >>> round(classification_metrics(labels, probabilities, ["a", "b"])["accuracy"], 4)
    0.6667
    >>> round(expected_calibration_error(labels, probabilities, num_bins=2), 4)  # |2/3 - 0.7667|
    0.1
"""

from __future__ import annotations

import numpy as np


def reliability_bins(labels: np.ndarray, probabilities: np.ndarray, num_bins: int = 15) -> list[dict]:
    """Per confidence bin: mean confidence, accuracy and count (equal-width bins over (0, 1])."""
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    bins = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        count = int(inside.sum())
        bins.append({
            "low": float(low), "high": float(high), "count": count,
            "confidence": float(confidence[inside].mean()) if count else 0.0,
            "accuracy": float(correct[inside].mean()) if count else 0.0,
        })
    return bins


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, num_bins: int = 15) -> float:
    """ECE (Guo et al. 2017): count-weighted mean |accuracy - confidence| over confidence bins."""
    total = len(labels)
    if total == 0:
        return 0.0
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"])
                     for b in reliability_bins(labels, probabilities, num_bins)))


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> dict:
    """accuracy, macro_f1, per_class (precision/recall/f1/support), ece, nll and the confusion matrix."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    labels = np.asarray(labels).astype(int)
    predictions = probabilities.argmax(axis=1)
    ids = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=ids, zero_division=0)
    picked = probabilities[np.arange(len(labels)), labels] if len(labels) else np.array([1.0])
    return {
        "num_examples": int(len(labels)),
        "accuracy": float((predictions == labels).mean()) if len(labels) else 0.0,
        "macro_f1": float(f1_score(labels, predictions, labels=ids, average="macro", zero_division=0)),
        "ece": expected_calibration_error(labels, probabilities),
        "nll": float(-np.log(np.clip(picked, 1e-12, 1.0)).mean()),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]),
                   "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": confusion_matrix(labels, predictions, labels=ids).tolist(),
    }
