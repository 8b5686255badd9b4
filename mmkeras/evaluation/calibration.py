"""Temperature scaling (Guo et al. 2017): probabilities you can believe, from training to serving.

After training, one temperature ``T`` is fitted on the validation split by minimising the
negative log-likelihood of ``softmax(logits / T)``. The model outputs probabilities, and
``log p = logits - logsumexp(logits)`` differs from the logits by a constant per row, so
``softmax(log(p) / T) == softmax(logits / T)``: the same formula calibrates any model whose output
is a softmax (auxiliary heads and the ``late`` fusion included), without touching the model. A
``sigmoid`` head is scaled per class: ``sigmoid(logit(p) / T)``, fitted on the binary NLL.
``T > 1`` softens over-confident predictions, ``T < 1`` sharpens under-confident ones; the argmax
(and so accuracy) never changes.

The run keeps ``RUN/calibration.json``; evaluation applies it, and the exported signatures compute
``probabilities``, ``class_ids`` and the ``top_k_*`` outputs from the calibrated distribution.
``train.calibrate: false`` (or a run without a validation split) leaves ``T = 1``.

Example:
    >>> import numpy as np
    >>> p = np.array([[0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])
    >>> apply_temperature(p, 1.0).round(4).tolist() == p.tolist()
    True
    >>> apply_temperature(p, 0.5).round(4)[0].tolist()  # sharper: 0.36 / (0.36 + 0.16)
    [0.6923, 0.3077]
    >>> t = fit_temperature(np.array([0, 0, 1]), p)   # every prediction right: sharpen
    >>> bool(t < 1.0) and nll(np.array([0, 0, 1]), apply_temperature(p, t)) < nll(np.array([0, 0, 1]), p)
    True
"""

from __future__ import annotations

import json

import numpy as np

CALIBRATION_FILE = "calibration.json"
#: The temperatures a fit may return (a wider search only finds degenerate fits on tiny splits).
TEMPERATURE_RANGE = (0.05, 20.0)
_TINY = 1e-12


def _log(probabilities) -> np.ndarray:
    return np.log(np.clip(np.asarray(probabilities, np.float64), _TINY, 1.0))


def apply_temperature(probabilities, temperature: float, kind: str = "softmax") -> np.ndarray:
    """``softmax(log(p) / T)`` per row (``kind="sigmoid"``: ``sigmoid(logit(p) / T)`` per value)."""
    probabilities = np.asarray(probabilities, np.float64)
    if kind == "sigmoid":
        logits = _log(probabilities) - _log(1.0 - probabilities)
        return 1.0 / (1.0 + np.exp(-logits / temperature))
    scaled = _log(probabilities) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def nll(labels, probabilities, kind: str = "softmax") -> float:
    """Mean negative log-likelihood of integer ``labels`` (binary NLL per class for ``sigmoid``)."""
    labels = np.asarray(labels, int)
    probabilities = np.asarray(probabilities, np.float64)
    if len(labels) == 0:
        return 0.0
    if kind == "sigmoid":
        onehot = np.eye(probabilities.shape[1])[labels]
        return float(-(onehot * _log(probabilities) + (1 - onehot) * _log(1 - probabilities)).sum(1).mean())
    return float(-_log(probabilities[np.arange(len(labels)), labels]).mean())


def fit_temperature(labels, probabilities, kind: str = "softmax") -> float:
    """The ``T`` in ``TEMPERATURE_RANGE`` minimising ``nll(labels, apply_temperature(p, T))``.

    A one-dimensional bounded search on ``log T`` (Brent's method, scipy), to 1e-6 in ``log T``.
    """
    from scipy.optimize import minimize_scalar

    if len(labels) == 0:
        return 1.0
    low, high = np.log(TEMPERATURE_RANGE)
    found = minimize_scalar(lambda log_t: nll(labels, apply_temperature(probabilities, np.exp(log_t), kind), kind),
                            bounds=(low, high), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))


def calibration_summary(labels, probabilities, temperature: float, kind: str = "softmax") -> dict:
    """``{"temperature", "ece_before", "ece_after", "nll_before", "nll_after"}`` on these predictions."""
    from mmkeras.evaluation.metrics import expected_calibration_error

    calibrated = apply_temperature(probabilities, temperature, kind)
    return {"temperature": float(temperature),
            "ece_before": expected_calibration_error(labels, probabilities),
            "ece_after": expected_calibration_error(labels, calibrated),
            "nll_before": nll(labels, probabilities, kind), "nll_after": nll(labels, calibrated, kind)}


def head_kind(config) -> str:
    """``"sigmoid"`` for a sigmoid head, else ``"softmax"``."""
    return "sigmoid" if (config.model.head or {}).get("type") == "sigmoid" else "softmax"


def calibrate_run(run) -> dict:
    """Fit the run's temperature on its validation split and write ``RUN/calibration.json``.

    Without ``train.calibrate`` or a validation split, ``T = 1`` is written with the reason.
    Returns what was written.
    """
    from mmkeras.config import load_config
    from mmkeras.evaluation.predictions import predict_split
    from mmkeras.training.atomic import write_text_atomically

    config = load_config(run.config_file)
    kind = head_kind(config)
    if not config.train.calibrate:
        record = {"temperature": 1.0, "fitted": False, "reason": "train.calibrate is false"}
    elif not config.data.validation:
        record = {"temperature": 1.0, "fitted": False, "reason": "the run has no validation split to fit it on"}
    else:
        _, labels, probabilities, _ = predict_split(run, "validation", subsets=False)
        temperature = fit_temperature(labels, probabilities, kind)
        record = {"fitted": True, "split": "validation", "examples": int(len(labels)), "kind": kind,
                  **calibration_summary(labels, probabilities, temperature, kind)}
    write_text_atomically(run.run_dir / CALIBRATION_FILE, json.dumps(record, indent=2))
    return record


def run_calibration(run) -> dict:
    """The run's ``calibration.json`` (fitted now if the run is complete and has none yet)."""
    path = run.run_dir / CALIBRATION_FILE
    if path.exists():
        return json.loads(path.read_text())
    if run.complete:
        return calibrate_run(run)
    return {"temperature": 1.0, "fitted": False, "reason": "the run is not complete"}


def run_temperature(run) -> float:
    """The temperature the run's evaluation and exports apply (1.0 when none was fitted)."""
    return float(run_calibration(run).get("temperature", 1.0))
