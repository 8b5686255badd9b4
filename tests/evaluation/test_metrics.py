import numpy as np
import pytest

from mmkeras.evaluation.metrics import classification_metrics, expected_calibration_error, reliability_bins


def test_perfectly_confident_correct_predictions_have_zero_ece():
    labels = np.array([0, 1, 2, 1])
    probabilities = np.eye(3)[labels]
    assert expected_calibration_error(labels, probabilities) == 0.0
    metrics = classification_metrics(labels, probabilities, ["a", "b", "c"])
    assert metrics["accuracy"] == 1.0 and metrics["macro_f1"] == 1.0
    assert metrics["per_class"]["b"]["support"] == 2
    assert metrics["confusion_matrix"] == [[1, 0, 0], [0, 2, 0], [0, 0, 1]]


def test_ece_matches_hand_computation():
    # Two bins: confidences 0.9 (1 correct of 1) and 0.6, 0.8 (0 correct of 2).
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    labels = np.array([0, 1, 0])
    expected = (1 / 3) * abs(1 - 0.9) + (1 / 3) * abs(0 - 0.6) + (1 / 3) * abs(0 - 0.8)
    assert expected_calibration_error(labels, probabilities, num_bins=10) == pytest.approx(expected)
    bins = reliability_bins(labels, probabilities, num_bins=10)
    assert sum(b["count"] for b in bins) == 3


def test_macro_f1_averages_classes_equally():
    labels = np.array([0, 0, 0, 0, 1])
    probabilities = np.array([[1, 0]] * 5, dtype=float)
    metrics = classification_metrics(labels, probabilities, ["major", "minor"])
    assert metrics["accuracy"] == pytest.approx(0.8)
    assert metrics["macro_f1"] == pytest.approx((2 * 0.8 / 1.8 + 0) / 2)
    # the minority example got probability 0, clipped at 1e-12; the others probability 1
    assert metrics["nll"] == pytest.approx(-np.log(1e-12) / 5)
