"""Tests for ``mmkeras.layers.position_embedding.PositionEmbedding``."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mmkeras.layers import PositionEmbedding
from tests.harness import run_layer_test


def test_position_embedding_passes_layer_harness(tmp_path):
    run_layer_test(
        PositionEmbedding,
        {"sequence_length": 6},
        {"inputs": np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")},
        tmp_path,
        expected_output_shape=(2, 4, 3),
        mixed_precision_output_dtype="compute",
    )


def test_position_embedding_returns_the_first_rows_of_its_table_for_every_example():
    layer = PositionEmbedding(sequence_length=5, initializer="ones")
    layer.build((None, 3, 2))
    layer.position_embeddings.assign(np.arange(10, dtype="float32").reshape(5, 2))
    out = keras.ops.convert_to_numpy(layer(np.zeros((2, 3, 2), "float32")))
    expected = np.arange(6, dtype="float32").reshape(3, 2)
    np.testing.assert_array_equal(out, np.stack([expected, expected]))


def test_position_embedding_config_keeps_sequence_length_and_initializer():
    config = PositionEmbedding(sequence_length=7, initializer="zeros").get_config()
    revived = PositionEmbedding.from_config(config)
    assert revived.sequence_length == 7
    assert isinstance(revived.initializer, keras.initializers.Zeros)


def test_position_embedding_rejects_sequences_longer_than_its_table():
    with pytest.raises(ValueError, match=r"sequence_length=4\) received a sequence of 5 steps"):
        PositionEmbedding(sequence_length=4)(np.zeros((1, 5, 2), "float32"))


@pytest.mark.parametrize("bad", [0, -1, 3.0])
def test_position_embedding_rejects_invalid_sequence_length(bad):
    with pytest.raises(ValueError, match=f"received sequence_length={bad!r}"):
        PositionEmbedding(sequence_length=bad)
