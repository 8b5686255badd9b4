"""Tests for ``mmkeras.layers.masked_pooling.MaskedGlobalPooling``."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mmkeras.layers import MaskedGlobalPooling
from tests.harness import run_layer_test

X = np.array(
    [
        [[1.0, -2.0], [3.0, 4.0], [100.0, 100.0]],
        [[-5.0, 0.5], [-1.0, -0.5], [-3.0, 7.0]],
        [[9.0, 9.0], [9.0, 9.0], [9.0, 9.0]],
    ],
    "float32",
)
MASK = np.array([[1, 1, 0], [1, 1, 1], [0, 0, 0]], "float32")


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_masked_pooling_passes_layer_harness(mode, tmp_path):
    run_layer_test(
        MaskedGlobalPooling,
        {"mode": mode},
        {"inputs": X, "mask": MASK},
        tmp_path,
        expected_output_shape=(3, 2),
        expected_num_trainable_variables=0,
        expected_num_non_trainable_variables=0,
        expected_num_params=0,
        mixed_precision_output_dtype="compute",
    )


def test_masked_mean_pooling_averages_real_steps_and_zeroes_empty_sequences():
    out = keras.ops.convert_to_numpy(MaskedGlobalPooling("mean")(X, mask=MASK))
    np.testing.assert_allclose(out, [[2.0, 1.0], [-3.0, 7.0 / 3.0], [0.0, 0.0]], rtol=1e-6)


def test_masked_max_pooling_ignores_padding_and_zeroes_empty_sequences():
    out = keras.ops.convert_to_numpy(MaskedGlobalPooling("max")(X, mask=MASK))
    np.testing.assert_allclose(out, [[3.0, 4.0], [-1.0, 7.0], [0.0, 0.0]])


def test_masked_pooling_without_mask_uses_every_step():
    out = keras.ops.convert_to_numpy(MaskedGlobalPooling("mean")(X[:1]))
    np.testing.assert_allclose(out, [[104.0 / 3.0, 102.0 / 3.0]], rtol=1e-6)


def test_masked_pooling_takes_the_keras_mask_from_an_embedding():
    ids = keras.Input(shape=(4,), dtype="int32")
    embedded = keras.layers.Embedding(10, 3, mask_zero=True)(ids)
    model = keras.Model(ids, MaskedGlobalPooling("mean")(embedded))
    table = keras.ops.convert_to_numpy(model.layers[1].embeddings)
    out = model.predict(np.array([[4, 7, 0, 0]], "int32"), verbose=0)
    np.testing.assert_allclose(out, [(table[4] + table[7]) / 2], rtol=1e-6)


def test_masked_pooling_rejects_unknown_mode():
    with pytest.raises(ValueError, match="received mode='sum'"):
        MaskedGlobalPooling("sum")


def test_masked_pooling_rejects_inputs_that_are_not_sequences():
    with pytest.raises(ValueError, match=r"received \(2, 3\)"):
        MaskedGlobalPooling().compute_output_shape((2, 3))
