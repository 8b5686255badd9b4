"""SigLIP and CLIP losses against NumPy references, the learned temperature's gradient, and the
contrastive model's masking; run under both Keras backends (tests/models is in JAX_TESTS)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mmkeras.models.contrastive import CLIP_MAX_LOG_SCALE, ContrastiveModel, clip_loss, siglip_loss


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _batch(n=6, d=5, seed=0, aligned=0.0):
    rng = np.random.default_rng(seed)
    a = _unit(rng.normal(size=(n, d)))
    b = _unit(aligned * a + rng.normal(size=(n, d)))
    return a.astype("float32"), b.astype("float32")


def numpy_siglip(a, b, present, log_scale, bias):
    rows = present > 0
    a, b = a[rows].astype(np.float64), b[rows].astype(np.float64)
    logits = np.exp(log_scale) * a @ b.T + bias
    z = 2 * np.eye(len(a)) - 1
    return float(np.sum(np.log1p(np.exp(-z * logits))) / len(a))


def numpy_clip(a, b, present, log_scale):
    rows = present > 0
    a, b = a[rows].astype(np.float64), b[rows].astype(np.float64)
    logits = np.exp(min(log_scale, CLIP_MAX_LOG_SCALE)) * a @ b.T

    def cross_entropy(x):
        x = x - x.max(axis=1, keepdims=True)
        return np.mean(np.log(np.exp(x).sum(axis=1)) - np.diagonal(x))

    return float(0.5 * (cross_entropy(logits) + cross_entropy(logits.T)))


def _value(x) -> float:
    return float(keras.ops.convert_to_numpy(x))


@pytest.mark.parametrize("present", [np.ones(6), np.array([1, 1, 0, 1, 1, 0])])
def test_siglip_loss_matches_numpy_reference(present):
    a, b = _batch(aligned=1.0)
    for log_scale, bias in [(np.log(10.0), -10.0), (1.3, 0.4), (0.0, 0.0)]:
        got = _value(siglip_loss(a, b, present.astype("float32"), log_scale, bias))
        assert got == pytest.approx(numpy_siglip(a, b, present, log_scale, bias), rel=1e-5)


@pytest.mark.parametrize("present", [np.ones(6), np.array([0, 1, 1, 1, 0, 1])])
def test_clip_loss_matches_numpy_reference_and_caps_the_scale(present):
    a, b = _batch(aligned=1.0, seed=1)
    for log_scale in [np.log(1 / 0.07), 0.5, 9.0]:  # 9.0 > log 100: capped
        got = _value(clip_loss(a, b, present.astype("float32"), log_scale))
        assert got == pytest.approx(numpy_clip(a, b, present, log_scale), rel=1e-5)
    assert _value(clip_loss(a, b, present.astype("float32"), 9.0)) == pytest.approx(
        _value(clip_loss(a, b, present.astype("float32"), CLIP_MAX_LOG_SCALE)), rel=1e-6)


def test_absent_rows_change_nothing_of_the_loss():
    a, b = _batch()
    present = np.array([1, 1, 0, 1, 0, 1], "float32")
    noise = np.where(present[:, None] > 0, a, 100.0)  # garbage in the absent rows
    for loss in (lambda x: siglip_loss(x, b, present, 1.0, -2.0), lambda x: clip_loss(x, b, present, 2.0)):
        assert _value(loss(noise)) == pytest.approx(_value(loss(a)), rel=1e-6)


def _gradient_of_log_scale(fn, log_scale: float) -> float:
    """d fn(t) / d t at ``log_scale`` with the backend's own autodiff."""
    if keras.backend.backend() == "jax":
        import jax

        return float(jax.grad(fn)(np.float32(log_scale)))
    import tensorflow as tf

    t = tf.Variable(log_scale, dtype=tf.float32)
    with tf.GradientTape() as tape:
        value = fn(t)
    return float(tape.gradient(value, t))


@pytest.mark.parametrize("name", ["siglip", "clip"])
def test_learned_temperature_gradient_sharpens_aligned_pairs_and_softens_random_ones(name):
    present = np.ones(8, "float32")
    for aligned, sign in [(20.0, -1.0), (0.0, 1.0)]:  # aligned: raise the scale; unrelated: lower it
        a, b = _batch(n=8, d=32, seed=3, aligned=aligned)
        if name == "siglip":  # with a bias below the positives' logits, as SigLIP's -10 start
            fn, reference = (lambda t: siglip_loss(a, b, present, t, -2.0)), lambda t: numpy_siglip(a, b, present, t, -2.0)
        else:
            fn, reference = (lambda t: clip_loss(a, b, present, t)), lambda t: numpy_clip(a, b, present, t)
        gradient = _gradient_of_log_scale(fn, 1.0)
        finite = (reference(1.0 + 1e-4) - reference(1.0 - 1e-4)) / 2e-4
        assert np.sign(gradient) == sign == np.sign(finite), (aligned, gradient, finite)
        assert gradient == pytest.approx(finite, rel=1e-2, abs=1e-5)


def _towers():
    inputs = {c: keras.Input((4,), name=c) for c in ("a", "b")}
    outputs = {c: keras.layers.UnitNormalization()(keras.layers.Dense(3, name=f"{c}_dense")(x)) for c, x in inputs.items()}
    return keras.Model(inputs, outputs)


def test_contrastive_model_loss_is_the_mean_of_its_pairs_and_ignores_labels():
    model = ContrastiveModel(_towers(), [("a", "b")], loss="clip")
    model.compile(optimizer="sgd")
    rng = np.random.default_rng(0)
    x = {"a": rng.normal(size=(8, 4)).astype("float32"), "b": rng.normal(size=(8, 4)).astype("float32"),
         "a_present": np.ones(8, "float32"), "b_present": np.array([1, 1, 1, 0, 1, 1, 1, 1], "float32")}
    embeddings = model.predict(x, verbose=0)
    expected = numpy_clip(embeddings["a"], embeddings["b"], x["a_present"] * x["b_present"], np.log(1 / 0.07))
    assert model.evaluate(x, verbose=0) == pytest.approx(expected, rel=1e-4)
    assert model.evaluate(x, np.zeros(8), verbose=0) == pytest.approx(expected, rel=1e-4)
    assert model.temperatures() == {"a-b": {"scale": pytest.approx(1 / 0.07, rel=1e-4)}}


def test_contrastive_model_refuses_an_unknown_loss_and_no_pairs():
    with pytest.raises(ValueError, match="loss must be one of siglip, clip; got 'triplet'"):
        ContrastiveModel(_towers(), [("a", "b")], loss="triplet")
    with pytest.raises(ValueError, match="pairs is empty"):
        ContrastiveModel(_towers(), [])
