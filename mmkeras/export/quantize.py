"""int8 exports: Keras's own weight quantization, ``keras.Model.quantize("int8")``, before the SavedModel is written.

``mmkeras export --quantize int8`` (``export_run(..., quantize="int8")``) quantizes the layers Keras 3
can quantize: ``Dense``, ``EinsumDense`` and ``Embedding`` (and KerasHub's ``ReversibleEmbedding``;
KerasHub's attention and feed-forward blocks are made of these). Each one's float32 kernel becomes
int8 with a float32 scale per output channel (abs-max); ``Dense`` and ``EinsumDense`` also quantize
their inputs per row when called, so their matmul is int8 x int8 -> int32, rescaled to float32. Every
other layer (``Conv2D``, ``LSTM``, normalisation, subclasses of ``Dense``) keeps its float32 weights:
Keras visits only leaf layers and skips those without a ``quantize`` method.

The signatures, inputs and outputs are those of the float32 export, and the run's calibration
temperature is applied to the quantized model's probabilities by ``ServingModule`` as it is to the
float32 ones. ``mmkeras_export.json`` records ``"quantization": "int8"`` (``null`` for float32), the
quantized layers and the layers that kept float32 weights.

Example:
    >>> import keras
    >>> inputs = keras.Input((8, 8, 1))
    >>> hidden = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    >>> outputs = keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(hidden))
    >>> record = quantize_model(keras.Model(inputs, outputs), "int8")
    >>> record["quantization"], record["int8_layers"], record["float32_layers"]
    ('int8', ['logits'], ['conv'])
    >>> quantize_model(keras.Model(inputs, hidden, name="convs"), "int8")
    Traceback (most recent call last):
    ...
    ValueError: model 'convs' has no layer Keras can quantize to int8 (Dense, EinsumDense, Embedding); ...
"""

from __future__ import annotations

import warnings

QUANTIZE_CHOICES = ("none", "int8")
QUANTIZABLE = ("Dense", "EinsumDense", "Embedding")


def check_quantize(quantize) -> str | None:
    """``"int8"``, or None for float32 (``None`` or ``"none"``); a ValueError naming the valid values otherwise."""
    if quantize is None or quantize == "none":
        return None
    if quantize not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE_CHOICES)} (or None), got {quantize!r}")
    return quantize


def _weighted_leaves(model) -> list:
    """``[(name, layer)]`` of the leaf layers with weights (``Model.quantize`` visits leaves only), each named by
    its path under the model's top-level layer (``text_backbone/transformer_layer_0/self_attention_layer/query``)."""
    seen, leaves = set(), []
    for top in model.layers:
        for layer in top._flatten_layers():
            if id(layer) in seen or not layer.weights or len(list(layer._flatten_layers())) > 1:
                continue
            seen.add(id(layer))
            path = layer.path or layer.name
            leaves.append((path if layer is top or path.startswith(f"{top.name}/") else f"{top.name}/{path}", layer))
    return leaves


def quantize_model(model, quantize) -> dict:
    """Quantize ``model`` in place (``quantize="int8"``; None or "none" leave it float32); return the metadata record.

    Returns:
        ``{"quantization": "int8" or None, "int8_layers": [layer paths], "int8_layer_count": n,
        "float32_layers": [paths of the layers with weights that stay float32]}``.

    Raises:
        ValueError: ``quantize`` is not a valid value, or no layer of the model can be quantized.
    """
    mode = check_quantize(quantize)
    if mode is not None:
        with warnings.catch_warnings():
            # One "does not have a `quantize` method" warning per other layer, and a NumPy 2 notice.
            warnings.simplefilter("ignore")
            model.quantize(mode)
    leaves = _weighted_leaves(model)
    int8 = [name for name, layer in leaves if mode and layer.quantization_mode == mode]
    if mode and not int8:
        raise ValueError(f"model {model.name!r} has no layer Keras can quantize to {mode} ({', '.join(QUANTIZABLE)}); "
                         "export it without --quantize")
    return {"quantization": mode, "int8_layers": int8, "int8_layer_count": len(int8),
            "float32_layers": [name for name, _ in leaves if name not in int8]}
