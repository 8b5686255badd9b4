"""Towers for pretraining and loading their encoders into the classifier (both backends)."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pytest

from mmkeras.config import ModelConfig
from mmkeras.data.schema import FeatureSpec
from mmkeras.errors import ConfigError
from mmkeras.models.factory import build_model
from mmkeras.models.towers import PROJECTION_PREFIX, build_towers, load_pretrained_encoders

SPECS = [FeatureSpec("text", "text", (6,), "int32", vocab_size=30),
         FeatureSpec("image", "image", (16, 16, 1), "float32")]


def _preprocessor(specs=SPECS):
    return SimpleNamespace(input_specs=specs, num_classes=3, class_names=("a", "b", "c"))


def _batch(n=4):
    rng = np.random.default_rng(0)
    return {"text": rng.integers(1, 30, size=(n, 6)).astype("int32"),
            "image": rng.random((n, 16, 16, 1)).astype("float32")}


def test_towers_give_unit_norm_embeddings_of_projection_dim_per_column():
    towers = build_towers(ModelConfig(), _preprocessor(), projection_dim=7)
    out = towers.predict(_batch(), verbose=0)
    assert sorted(out) == ["image", "text"]
    for column in out:
        assert out[column].shape == (4, 7)
        np.testing.assert_allclose(np.linalg.norm(out[column], axis=1), 1.0, atol=1e-5)
    assert {f"{PROJECTION_PREFIX}text", f"{PROJECTION_PREFIX}image"} <= {layer.name for layer in towers.layers}


def test_pretrained_encoders_load_into_the_classifier_and_change_its_starting_weights():
    config = ModelConfig(fusion={"type": "gated", "output_dim": 8})
    towers = build_towers(config, _preprocessor(), projection_dim=5)
    for weight in towers.trainable_weights:  # as if pretrained: far from any fresh initialisation
        weight.assign(np.full(weight.shape, 0.123, "float32"))
    model = build_model(config, _preprocessor())
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers}
    copied = load_pretrained_encoders(model, towers)
    assert copied and all(name.startswith(("text_", "image_")) for name in copied)
    assert not any(name.startswith(PROJECTION_PREFIX) for name in copied)
    for name in copied:
        for ours, theirs in zip(model.get_layer(name).get_weights(), towers.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
        assert any(not np.array_equal(b, a) for b, a in zip(before[name], model.get_layer(name).get_weights()))
    fusion = next(layer for layer in model.layers if layer.name.endswith("_fusion"))
    for b, a in zip(before[fusion.name], fusion.get_weights()):  # the fusion and head start fresh
        np.testing.assert_array_equal(b, a)


def test_loading_refuses_another_encoder_and_names_the_layer():
    towers = build_towers(ModelConfig(), _preprocessor(), projection_dim=5)
    wider = build_model(ModelConfig(encoders={"text": {"type": "embedding", "embedding_dim": 12}}), _preprocessor())
    with pytest.raises(ConfigError, match=r"model.init_from: layer 'text_\w+' has weights of shapes"):
        load_pretrained_encoders(wider, towers)
    text_only = build_model(ModelConfig(), _preprocessor(SPECS[:1]))
    with pytest.raises(ConfigError, match=r"encoder layer 'image_\w+', which this model lacks"):
        load_pretrained_encoders(text_only, towers)
