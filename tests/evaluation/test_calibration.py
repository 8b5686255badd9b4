"""Temperature scaling: the fit against a NumPy reference, and the run -> report path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmkeras.evaluation.calibration import (
    apply_temperature, calibration_summary, fit_temperature, nll,
)
from mmkeras.evaluation.metrics import expected_calibration_error
from tests.tiny_data import tiny_config, tiny_digits


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(1, keepdims=True)


def _logits(scale: float, seed: int = 0, n: int = 400, classes: int = 5):
    """Logits whose argmax is right about 70% of the time, sharpened by ``scale``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes))
    right = rng.random(n) < 0.7
    logits[np.arange(n)[right], labels[right]] += 2.0
    return labels, logits * scale


def _reference_temperature(labels, logits) -> float:
    """NumPy only: NLL of softmax(logits / T) on a dense log-T grid, then a finer grid around the best."""
    def loss(t):
        return -np.log(_softmax(logits / t)[np.arange(len(labels)), labels]).mean()

    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 2001))
    best = grid[np.argmin([loss(t) for t in grid])]
    fine = np.exp(np.linspace(np.log(best) - 0.01, np.log(best) + 0.01, 2001))
    return float(fine[np.argmin([loss(t) for t in fine])])


@pytest.mark.parametrize("scale, side", [(4.0, "over"), (0.3, "under")])
def test_fitted_temperature_matches_numpy_reference_and_lowers_nll(scale, side):
    labels, logits = _logits(scale)
    probabilities = _softmax(logits)
    temperature = fit_temperature(labels, probabilities)
    assert temperature == pytest.approx(_reference_temperature(labels, logits), rel=1e-3)
    assert (temperature > 1.0) if side == "over" else (temperature < 1.0)  # over-confident: soften
    assert nll(labels, apply_temperature(probabilities, temperature)) < nll(labels, probabilities) - 0.01
    # On held-out logits of the same model, the temperature still lowers NLL and ECE.
    held_labels, held_logits = _logits(scale, seed=1)
    held = _softmax(held_logits)
    summary = calibration_summary(held_labels, held, temperature)
    assert summary["nll_after"] < summary["nll_before"] and summary["ece_after"] < summary["ece_before"]
    assert summary["ece_before"] == pytest.approx(expected_calibration_error(held_labels, held))


def test_temperature_on_probabilities_equals_softmax_of_logits_over_t_and_keeps_argmax():
    _, logits = _logits(2.0)
    probabilities = _softmax(logits)
    for temperature in (0.25, 1.0, 3.7):
        calibrated = apply_temperature(probabilities, temperature)
        np.testing.assert_allclose(calibrated, _softmax(logits / temperature), atol=1e-9)
        np.testing.assert_array_equal(calibrated.argmax(1), probabilities.argmax(1))


def test_sigmoid_head_temperature_scales_each_logit():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 3)) * 3
    probabilities = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(apply_temperature(probabilities, 2.0, "sigmoid"), 1 / (1 + np.exp(-logits / 2)),
                               atol=1e-9)
    labels = rng.integers(0, 3, 50)
    temperature = fit_temperature(labels, probabilities, "sigmoid")
    calibrated = apply_temperature(probabilities, temperature, "sigmoid")
    assert nll(labels, calibrated, "sigmoid") <= nll(labels, probabilities, "sigmoid")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_digits(tmp_path_factory.mktemp("tiny_digits_calibration"))


def test_calibrate_false_keeps_temperature_one_and_says_why(folder, tmp_path):
    from mmkeras.evaluation.calibration import run_temperature
    from mmkeras.training.trainer import train

    run = train(tiny_config(folder, ["train.calibrate=false", "train.epochs=1"]), run_dir=tmp_path / "run")
    fitted = json.loads((run.run_dir / "calibration.json").read_text())
    assert fitted == {"temperature": 1.0, "fitted": False, "reason": "train.calibrate is false"}
    assert run_temperature(run) == 1.0
