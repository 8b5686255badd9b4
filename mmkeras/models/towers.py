"""Towers for contrastive pretraining, and loading their encoders into a classifier (``model.init_from``).

A tower is one column's encoder (``model.encoders.<column>``, the same factory ``build_model`` uses,
so its layers carry the same names) followed by a linear projection to ``projection_dim`` and L2
normalisation. ``build_towers`` returns one Functional model with every column's tower; the
pretraining run saves it as ``towers.keras``. ``load_pretrained_encoders`` copies the encoder
layers (everything but the projections) into a model built from the same ``data.features`` and
``model.encoders``, matching layers by name.

Example:
    >>> from types import SimpleNamespace
    >>> import numpy as np
    >>> from mmkeras.config import ModelConfig
    >>> from mmkeras.data.schema import FeatureSpec
    >>> specs = [FeatureSpec("text", "text", (8,), "int32", vocab_size=20),
    ...          FeatureSpec("image", "image", (16, 16, 1), "float32")]
    >>> towers = build_towers(ModelConfig(), SimpleNamespace(input_specs=specs), projection_dim=4)
    >>> out = towers.predict({"text": np.ones((2, 8), "int32"), "image": np.zeros((2, 16, 16, 1), "float32")},
    ...                      verbose=0)
    >>> out["image"].shape, bool(np.allclose(np.linalg.norm(out["text"], axis=1), 1.0, atol=1e-5))
    ((2, 4), True)
"""

from __future__ import annotations

import keras

from mmkeras.encoders.base import build_encoder
from mmkeras.errors import ConfigError

TOWERS_NAME = "contrastive_towers"
PROJECTION_PREFIX = "pretrain_projection_"


def build_towers(model_config, preprocessor, projection_dim: int) -> keras.Model:
    """``{column: keras.Input}`` -> ``{column: (batch, projection_dim)}`` unit-norm embeddings."""
    inputs, outputs = {}, {}
    for spec in preprocessor.input_specs:
        inputs[spec.column] = keras.Input(spec.shape, dtype=spec.dtype, name=spec.column)
        vector = build_encoder(inputs[spec.column], spec, model_config.encoders.get(spec.column)).vector
        projected = keras.layers.Dense(projection_dim, use_bias=False, name=f"{PROJECTION_PREFIX}{spec.column}")(vector)
        outputs[spec.column] = keras.layers.UnitNormalization(axis=-1, name=f"{PROJECTION_PREFIX}{spec.column}_norm")(projected)
    return keras.Model(inputs, outputs, name=TOWERS_NAME)


def tower_inputs(towers, features: dict) -> dict:
    """The entries of a pipeline feature dict that ``towers`` takes (presence flags are read by the loss)."""
    return {name: features[name] for name in towers.input}


def encoder_layers(model) -> dict:
    """``{name: layer}`` of every layer holding weights in ``model``, through nested models."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model) and not _is_backbone(layer):
            found.update(encoder_layers(layer))
        elif layer.weights:
            found[layer.name] = layer
    return found


def _is_backbone(layer) -> bool:
    # A KerasHub backbone is a Functional model of its own: copied whole, like one layer.
    return type(layer).__name__.endswith("Backbone")


def load_pretrained_encoders(model, towers, source: str = "the pretraining run") -> list:
    """Copy every encoder layer of ``towers`` into the layer of ``model`` with the same name.

    Returns the names copied. Raises ``ConfigError`` (naming ``model.init_from``) when ``model``
    lacks one of them or its weights have other shapes: the model must be built from the same
    ``data.features`` and ``model.encoders`` as the pretraining run.
    """
    targets = encoder_layers(model)
    copied = []
    for name, layer in encoder_layers(towers).items():
        if name.startswith(PROJECTION_PREFIX):
            continue
        target = targets.get(name)
        if target is None:
            raise ConfigError(f"model.init_from: {source} has the encoder layer {name!r}, which this model lacks; "
                              "use the data.features and model.encoders it was pretrained with")
        shapes = [tuple(w.shape) for w in layer.weights], [tuple(w.shape) for w in target.weights]
        if shapes[0] != shapes[1]:
            raise ConfigError(f"model.init_from: layer {name!r} has weights of shapes {shapes[0]} in {source} and "
                              f"{shapes[1]} here; use the data.features and model.encoders it was pretrained with")
        target.set_weights(layer.get_weights())
        copied.append(name)
    if not copied:
        raise ConfigError(f"model.init_from: {source} holds no encoder layer to load")
    return copied
