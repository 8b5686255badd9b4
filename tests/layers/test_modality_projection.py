"""Tests for ``mmkeras.layers.modality_projection.ModalityProjection``."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mmkeras.layers import ModalityProjection
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
VECTORS = [RNG.normal(size=(4, 6)).astype("float32"), RNG.normal(size=(4, 3)).astype("float32")]
TOKENS = RNG.normal(size=(4, 5, 2)).astype("float32")
PRESENT = [np.array([True, False, True, False]), np.array([True, True, False, False])]


def test_modality_projection_passes_layer_harness(tmp_path):
    # A vector modality and a token modality in one call; masked entries must not be read.
    data = {"inputs": [VECTORS[0], TOKENS], "masks": [PRESENT[0], np.tile(PRESENT[1][:, None], (1, 5))]}
    hidden = {"inputs": [np.where(data["masks"][0][:, None], VECTORS[0], 1e3), np.where(data["masks"][1][..., None], TOKENS, -1e3)],
              "masks": data["masks"]}
    run_layer_test(
        ModalityProjection,
        {"units": 4, "activation": "relu"},
        data,
        tmp_path,
        expected_output_shape=[(4, 4), (4, 5, 4)],
        expected_num_trainable_variables=4,
        expected_num_non_trainable_variables=0,
        expected_num_params=(6 + 1) * 4 + (2 + 1) * 4,
        invariant_input_data=hidden,
        mixed_precision_output_dtype="compute",
    )


def test_modality_projection_is_one_dense_per_modality_with_exact_zeros_where_masked():
    layer = ModalityProjection(units=3, activation="tanh")
    out = [keras.ops.convert_to_numpy(o) for o in layer(VECTORS, PRESENT)]
    for m, (dense, v, present) in enumerate(zip(layer.dense_layers, VECTORS, PRESENT)):
        kernel, bias = (keras.ops.convert_to_numpy(w) for w in (dense.kernel, dense.bias))
        expected = np.where(present[:, None], np.tanh(v @ kernel + bias), 0.0)
        np.testing.assert_allclose(out[m], expected, rtol=1e-5, atol=1e-6)
        assert np.all(out[m][~present] == 0.0), f"modality {m}: a masked entry is not an exact zero"


def test_modality_projection_keeps_non_finite_masked_values_out_of_the_gradient():
    layer = ModalityProjection(units=2)
    poisoned = [np.where(PRESENT[0][:, None], VECTORS[0], np.inf).astype("float32"), VECTORS[1]]
    layer(poisoned, PRESENT)

    def loss(weights):
        outputs, _ = layer.stateless_call(weights, [], poisoned, PRESENT)
        return sum(keras.ops.sum(o) for o in outputs)

    if keras.backend.backend() == "jax":
        import jax

        grads = jax.grad(loss)([v.value for v in layer.trainable_variables])
    else:
        import tensorflow as tf

        weights = [tf.Variable(v.value) for v in layer.trainable_variables]
        with tf.GradientTape() as tape:
            value = loss(weights)
        grads = tape.gradient(value, weights)
    assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(g))) for g in grads)


def test_modality_projection_rejects_masks_of_another_count():
    with pytest.raises(ValueError, match=r"`masks` must hold one mask per input \(2\); received 1"):
        ModalityProjection(units=2)(VECTORS, PRESENT[:1])


@pytest.mark.parametrize("bad", [0, -2, 1.5])
def test_modality_projection_rejects_invalid_units(bad):
    with pytest.raises(ValueError, match=f"received units={bad!r}"):
        ModalityProjection(units=bad)
