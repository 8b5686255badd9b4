"""Tests for ``mmkeras.layers.transformer_block.TransformerBlock``."""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
import pytest

from mmkeras.layers import TransformerBlock
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 3, 8)).astype("float32")
CONTEXT = RNG.normal(size=(4, 5, 6)).astype("float32")
KEY_MASK = np.array([[1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 1, 0], [0, 0, 1, 1, 1]], bool)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_cross_attention_block_passes_layer_harness(tmp_path):
    data = {"inputs": X, "context": CONTEXT, "key_padding_mask": KEY_MASK}
    hidden = dict(data, context=np.where(KEY_MASK[..., None], CONTEXT, 1e3).astype("float32"))
    run_layer_test(
        TransformerBlock,
        {"num_heads": 2, "intermediate_dim": 16, "activation": "gelu", "normalize_first": True},
        data,
        tmp_path,
        expected_output_shape=(4, 3, 8),
        # MHA: query 8 * 8 + 8, key and value 6 * 8 + 8 each, output 8 * 8 + 8 = 256; layer norms
        # of the inputs (twice) and of the context 16 + 16 + 12; FFN 8 * 16 + 16 + 16 * 8 + 8 = 280.
        expected_num_trainable_variables=18,
        expected_num_non_trainable_variables=0,
        expected_num_params=256 + 44 + 280,
        invariant_input_data=hidden,
        mixed_precision_output_dtype="compute",
    )


@pytest.mark.parametrize("normalize_first", [True, False], ids=["pre_norm", "post_norm"])
def test_self_attention_block_equals_keras_hub_transformer_encoder(normalize_first):
    ours = TransformerBlock(num_heads=2, intermediate_dim=16, activation="gelu", normalize_first=normalize_first)
    hub = keras_hub.layers.TransformerEncoder(16, 2, activation="gelu", normalize_first=normalize_first)
    mask = KEY_MASK[:, :3]
    ours(X, key_padding_mask=mask)
    hub(X, padding_mask=mask)
    assert [w.shape for w in ours.weights] == [w.shape for w in hub.weights]
    rng = np.random.default_rng(1)
    hub.set_weights([0.3 * rng.normal(size=w.shape).astype("float32") for w in hub.weights])
    ours.set_weights(hub.get_weights())
    np.testing.assert_allclose(
        _numpy(ours(X, key_padding_mask=mask)), _numpy(hub(X, padding_mask=mask)), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("normalize_first", [True, False], ids=["pre_norm", "post_norm"])
def test_cross_attention_on_its_own_inputs_is_self_attention(normalize_first):
    cross = TransformerBlock(num_heads=2, intermediate_dim=16, normalize_first=normalize_first)
    plain = TransformerBlock(num_heads=2, intermediate_dim=16, normalize_first=normalize_first)
    cross(X, X)
    plain(X)
    rng = np.random.default_rng(2)
    plain.set_weights([0.3 * rng.normal(size=w.shape).astype("float32") for w in plain.weights])
    if normalize_first:  # the context's own layer norm gets the inputs' one
        by_path = {w.path.split("/", 1)[1]: _numpy(w) for w in plain.weights}
        for w in cross.weights:
            w.assign(by_path[w.path.split("/", 1)[1].replace("context_norm", "attention_norm")])
    else:
        cross.set_weights(plain.get_weights())
    mask = KEY_MASK[:, :3]
    np.testing.assert_allclose(
        _numpy(cross(X, X, key_padding_mask=mask)), _numpy(plain(X, key_padding_mask=mask)), rtol=1e-5, atol=1e-5
    )


def test_transformer_block_must_be_called_as_it_was_built():
    block = TransformerBlock(num_heads=2, intermediate_dim=4)
    block(X, CONTEXT)
    with pytest.raises(ValueError, match=r"was built with a `context` \(cross-attention\); call it the same way"):
        block(X)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0, "intermediate_dim": 4}, "received num_heads=0"),
        ({"num_heads": 2, "intermediate_dim": -1}, "received intermediate_dim=-1"),
        ({"num_heads": 2, "intermediate_dim": 4, "dropout": 1.0}, "received dropout=1.0"),
        ({"num_heads": 2, "intermediate_dim": 4, "layer_norm_epsilon": 0}, "received layer_norm_epsilon=0"),
        ({"num_heads": 2, "intermediate_dim": 4, "normalize_first": "yes"}, "received 'yes'"),
    ],
)
def test_transformer_block_rejects_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerBlock(**kwargs)


def test_transformer_block_rejects_more_heads_than_width():
    with pytest.raises(ValueError, match=r"width of `inputs` \(8\) must be at least num_heads=9"):
        TransformerBlock(num_heads=9, intermediate_dim=4).compute_output_shape((None, 3, 8))
