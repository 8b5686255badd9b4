"""The distillation loss against a NumPy reference, and the Distiller's training step (both backends)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mmkeras.models.distillation import DistillationLoss, Distiller, tempered_log_probabilities


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(-1, keepdims=True)


def _reference(labels, student, teacher, temperature, alpha, smoothing=0.0, teacher_temperature=1.0):
    """Hinton et al. (2015) in NumPy: T^2 * KL on the tempered distributions, CE over the labelled rows."""
    soft_teacher = _softmax(np.log(teacher) / (temperature * teacher_temperature))
    soft_student = _softmax(np.log(student) / temperature)
    kl = (soft_teacher * (np.log(soft_teacher) - np.log(soft_student))).sum(-1)
    labelled = labels.sum(-1) > 0
    targets = labels * (1 - smoothing) + smoothing / labels.shape[1]
    ce = -(targets * np.log(student)).sum(-1)
    hard = ce[labelled].mean() if labelled.any() else 0.0
    return alpha * temperature**2 * kl.mean() + (1 - alpha) * hard


def _batch(seed: int, rows: int = 6, classes: int = 4):
    rng = np.random.default_rng(seed)
    student = _softmax(rng.normal(size=(rows, classes)) * 2).astype("float32")
    teacher = _softmax(rng.normal(size=(rows, classes)) * 3).astype("float32")
    labels = np.eye(classes, dtype="float32")[rng.integers(classes, size=rows)]
    labels[[1, 4]] = 0.0  # two examples without a label
    return labels, student, teacher


@pytest.mark.parametrize("temperature,alpha", [(1.0, 0.5), (4.0, 0.7), (2.5, 1.0), (3.0, 0.0)])
def test_distillation_loss_matches_the_numpy_reference(temperature, alpha):
    labels, student, teacher = _batch(seed=int(temperature * 10))
    loss = DistillationLoss(temperature=temperature, alpha=alpha)
    value = float(keras.ops.convert_to_numpy(loss((labels, teacher), student)))
    assert value == pytest.approx(_reference(labels, student, teacher, temperature, alpha), rel=1e-5)


def test_hard_term_uses_the_runs_loss_and_only_the_labelled_rows():
    labels, student, teacher = _batch(seed=1)
    smoothed = DistillationLoss(temperature=2.0, alpha=0.3,
                                hard_loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1))
    value = float(keras.ops.convert_to_numpy(smoothed((labels, teacher), student)))
    assert value == pytest.approx(_reference(labels, student, teacher, 2.0, 0.3, smoothing=0.1), rel=1e-5)
    hard_only = DistillationLoss(alpha=0.0)
    unlabelled = np.zeros_like(labels)
    # No label in the batch: nothing to learn from the hard term (not a division by zero).
    assert float(keras.ops.convert_to_numpy(hard_only((unlabelled, teacher), student))) == 0.0
    # The mean is over the 4 labelled rows: changing an unlabelled row's prediction changes nothing.
    moved = student.copy()
    moved[1] = moved[1][::-1]
    assert float(keras.ops.convert_to_numpy(hard_only((labels, teacher), moved))) == pytest.approx(
        float(keras.ops.convert_to_numpy(hard_only((labels, teacher), student))), rel=1e-6)


def test_soft_term_is_scaled_by_temperature_squared_and_zero_when_the_student_agrees():
    labels, student, teacher = _batch(seed=2)
    soft = lambda t, s: float(keras.ops.convert_to_numpy(DistillationLoss(temperature=t, alpha=1.0)((labels, s), student)))  # noqa: E731
    assert soft(1.0, student) == pytest.approx(0.0, abs=1e-6)
    kl_at_3 = (lambda p, q: (p * (np.log(p) - np.log(q))).sum(-1).mean())(
        _softmax(np.log(teacher) / 3.0), _softmax(np.log(student) / 3.0))
    assert soft(3.0, teacher) == pytest.approx(9.0 * kl_at_3, rel=1e-5)


def test_a_calibrated_teacher_is_softened_by_both_temperatures():
    labels, student, teacher = _batch(seed=3)
    calibrated = DistillationLoss(temperature=2.0, alpha=0.6, teacher_temperature=1.5)
    value = float(keras.ops.convert_to_numpy(calibrated((labels, teacher), student)))
    assert value == pytest.approx(_reference(labels, student, teacher, 2.0, 0.6, teacher_temperature=1.5), rel=1e-5)
    tempered = keras.ops.convert_to_numpy(tempered_log_probabilities(teacher, 2.0))
    np.testing.assert_allclose(np.exp(tempered), _softmax(np.log(teacher) / 2.0), rtol=1e-5)


@pytest.mark.parametrize("kwargs,match", [({"temperature": 0.0}, "temperature"), ({"alpha": 1.2}, "alpha"),
                                          ({"teacher_temperature": -1.0}, "teacher_temperature")])
def test_distillation_loss_refuses_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistillationLoss(**kwargs)


def test_distillation_loss_config_round_trips():
    loss = DistillationLoss(temperature=3.0, alpha=0.4, teacher_temperature=1.2,
                            hard_loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.2))
    again = DistillationLoss.from_config(loss.get_config())
    assert (again.temperature, again.alpha, again.teacher_temperature) == (3.0, 0.4, 1.2)
    assert again.hard_loss.get_config()["label_smoothing"] == 0.2


def _classifier(width: int, name: str):
    inputs = {"x": keras.Input((3,), name="x")}
    hidden = keras.layers.Dense(width, activation="relu")(inputs["x"])
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="probabilities")(hidden), name=name)


def test_distiller_trains_the_student_only_and_checkpoints_it(tmp_path):
    student, teacher = _classifier(4, "student"), _classifier(16, "teacher")
    teacher_before = [keras.ops.convert_to_numpy(w).copy() for w in teacher.weights]
    student_before = [keras.ops.convert_to_numpy(w).copy() for w in student.weights]
    distiller = Distiller(student, teacher, DistillationLoss(temperature=2.0, alpha=0.5))
    distiller.compile(optimizer=keras.optimizers.Adam(0.05),
                      weighted_metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    rng = np.random.default_rng(0)
    x = {"x": rng.normal(size=(32, 3)).astype("float32")}
    y = np.eye(2, dtype="float32")[(x["x"][:, 0] > 0).astype(int)]
    y[::2] = 0.0  # half the rows unlabelled
    history = distiller.fit(x, y, batch_size=8, epochs=3, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert distiller.output_names == ["probabilities"] and len(distiller.trainable_weights) == 4
    for before, after in zip(teacher_before, teacher.weights):
        np.testing.assert_array_equal(before, keras.ops.convert_to_numpy(after))
    assert any(not np.array_equal(b, keras.ops.convert_to_numpy(a)) for b, a in zip(student_before, student.weights))
    path = tmp_path / "best.weights.h5"
    distiller.save_weights(path)
    fresh = _classifier(4, "student")
    fresh.load_weights(path)  # the checkpoint is the student's own
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fresh(x)), keras.ops.convert_to_numpy(student(x)), rtol=1e-6)


def test_distiller_metrics_count_only_labelled_rows():
    student, teacher = _classifier(4, "student"), _classifier(4, "teacher")
    distiller = Distiller(student, teacher, DistillationLoss())
    distiller.compile(optimizer="adam", weighted_metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    x = {"x": np.random.default_rng(1).normal(size=(8, 3)).astype("float32")}
    predicted = keras.ops.convert_to_numpy(student(x)).argmax(1)
    y = np.eye(2, dtype="float32")[predicted]
    y[4:] = 0.0  # unlabelled rows: argmax of a zero row would score them as class 0
    scores = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert scores["accuracy"] == pytest.approx(1.0)
