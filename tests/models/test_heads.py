import keras
import numpy as np
import pytest

from mmkeras import registry
from mmkeras.errors import ConfigError
from mmkeras.models.heads import build_auxiliary_heads, build_sigmoid_head, build_softmax_head

FEATURES = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")


def test_registered_heads():
    assert registry.names("head") == ["sigmoid", "softmax"]


def test_softmax_head_layers_and_probabilities():
    inputs = keras.Input((6,))
    model = keras.Model(inputs, build_softmax_head(inputs, 3, hidden_units=[5, 4], dropout=0.2))
    assert [layer.name for layer in model.layers[1:]] == [
        "head_dense1", "head_dropout1", "head_dense2", "head_dropout2", "head_logits", "probabilities"]
    probabilities = np.asarray(model.predict_on_batch(FEATURES))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-6)


def test_sigmoid_head_is_multi_label():
    inputs = keras.Input((6,))
    model = keras.Model(inputs, build_sigmoid_head(inputs, 3))
    logits = FEATURES @ np.asarray(model.get_layer("head_logits").kernel) + np.asarray(model.get_layer("head_logits").bias)
    np.testing.assert_allclose(np.asarray(model.predict_on_batch(FEATURES)), 1 / (1 + np.exp(-logits)), rtol=1e-5)


def test_head_on_logits_adds_only_the_activation():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, build_softmax_head(inputs, 3, True))
    assert [layer.name for layer in model.layers[1:]] == ["probabilities"]
    logits = FEATURES[:, :3]
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(model.predict_on_batch(logits)), expected, rtol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_head_outputs_float32_under_mixed_precision(policy):
    keras.config.set_dtype_policy(policy)
    inputs = keras.Input((6,))
    out = build_softmax_head(inputs, 3, hidden_units=[4])
    assert out.dtype == "float32"
    assert keras.Model(inputs, out).get_layer("head_dense1").compute_dtype == policy.split("_")[1]


def test_bad_head_settings_name_the_key():
    inputs = keras.Input((6,))
    with pytest.raises(ConfigError, match=r"model\.head\.hidden_units must be a list of positive integers; got 8"):
        build_softmax_head(inputs, 3, hidden_units=8)
    with pytest.raises(ConfigError, match=r"model\.head\.dropout must be a float in \[0, 1\); got 1\.5"):
        build_softmax_head(inputs, 3, dropout=1.5)


def test_auxiliary_heads_one_per_column():
    a, b = keras.Input((6,)), keras.Input((2,))
    outputs = build_auxiliary_heads([a, b], ["text", "image"], 4)
    assert list(outputs) == ["aux_text", "aux_image"]
    assert all(o.shape == (None, 4) and o.dtype == "float32" for o in outputs.values())
