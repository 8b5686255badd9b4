"""Which modality drove a decision: integrated gradients per modality, and attention weights.

``integrated_gradients(model, features)`` explains the predicted class's probability ``f`` of each
example (Sundararajan et al. 2017, https://arxiv.org/abs/1703.01365) on the preprocessed inputs,
from the baseline ``x'`` where every modality is *missing* (its input zeros, its presence flag 0:
what a blank manifest cell or an empty serving request gives the model). The fusions read a flag
as a switch (``flag > 0.5``), which has no gradient, so the path has two parts:

1. the flags switch from 0 to their values with the inputs still at the baseline; that jump,
   ``f(x' with flags on) - f(x')``, is split between the modalities exactly by their Shapley
   values over the ``2**M`` subsets of switched flags (``presence`` in the result);
2. the inputs go along the straight line ``x(a) = x' + a (x - x')``, ``a`` in [0, 1], flags on; the
   gradient is averaged with the trapezoid rule over ``steps`` intervals (examples x steps in one
   model call where they fit, ``max_rows``), and an element's attribution is
   ``(x - x') * mean gradient``.

A modality's attribution ``A_m`` is its presence part plus the sum over its input elements;
``shares`` are ``|A_m| / sum |A|`` (they sum to 1; equal shares when every ``A`` is 0).
Completeness: ``sum A = f(x) - f(x')`` up to the quadrature error, reported as
``completeness_gap``. Gradients come from ``tf.GradientTape`` under TensorFlow and
``jax.value_and_grad`` under JAX; the model runs eagerly with ``training=False``.

``methods`` says, per column, how its input was attributed:

- ``"integrated_gradients"``: a float input (pixels, audio features), as above.
- ``"embedding_integrated_gradients"``: integer token ids cannot be differentiated, so the output of
  the ``Embedding`` layer fed by that input is scaled by a per-token ``s`` (the layer's call is
  wrapped for the duration), 0 at the baseline and 1 at ``x``. IG of ``s`` equals IG on the
  embedding output with a zero-embedding baseline (the padding mask still comes from the ids).
  Per-token attributions are in ``inputs[column]``, ``(batch, sequence_length)``.
- ``"presence_flag"``, the fallback when no ``Embedding`` layer reads the ids directly (a KerasHub
  backbone hides its own): the column is attributed through its presence flag alone (part 1, with
  the tokens fixed); ``inputs[column]`` is None.

``attention_weights(model, features)`` gives, for the ``self_attention`` and ``cross_attention``
fusions, the mean attention each modality receives (rows sum to 1), and None for other fusions.
``dataset_attribution`` averages both over a dataset for the evaluation report.

Example:
    >>> import numpy as np, keras
    >>> image = keras.Input((2,), name="image"); flag = keras.Input((), name="image_present")
    >>> logits = keras.layers.Dense(2, kernel_initializer="ones")(image) * keras.ops.expand_dims(flag, -1)
    >>> model = keras.Model({"image": image, "image_present": flag}, keras.layers.Softmax()(logits))
    >>> result = integrated_gradients(model, {"image": np.ones((1, 2)), "image_present": np.ones(1)})
    >>> result["methods"], result["shares"]["image"].tolist()
    ({'image': 'integrated_gradients'}, [1.0])
    >>> float(result["completeness_gap"][0]) < 1e-6   # logits equal: f(x) = f(x') = 0.5
    True
"""

from __future__ import annotations

import numpy as np

from mmkeras.data.schema import PRESENCE_SUFFIX
from mmkeras.evaluation.gradients import (chosen_probability, embedding_fed_by, input_gradients, model_layers,
                                        probabilities_of)

INPUT_IG, EMBEDDING_IG, PRESENCE_ONLY = "integrated_gradients", "embedding_integrated_gradients", "presence_flag"
#: Model rows (examples x (steps + 1)) per gradient call.
MAX_ROWS = 1024


def feature_columns(features: dict) -> list:
    """The columns of a feature dict: every key with a ``<key>_present`` flag beside it."""
    return [key for key in features if f"{key}{PRESENCE_SUFFIX}" in features]


def _switch_values(model, features: dict, columns: list, onehot, embeddings: dict) -> np.ndarray:
    """``(n, 2**M)``: ``f`` with the inputs at the baseline and the flags of each subset of columns
    switched on (subset ``mask``: column ``i`` on when bit ``i`` is set)."""
    import keras
    from keras import ops

    subsets = 2 ** len(columns)
    inputs = {key: np.repeat(value, subsets, axis=0) for key, value in features.items()}
    for i, column in enumerate(columns):
        flag = f"{column}{PRESENCE_SUFFIX}"
        on = ((np.arange(subsets) >> i) & 1).astype(np.float32)
        inputs[flag] = (np.asarray(features[flag], np.float32)[:, None] * on.reshape((1, -1) + (1,) * (
            np.ndim(features[flag]) - 1))).reshape(inputs[flag].shape)
        if np.issubdtype(features[column].dtype, np.floating):
            inputs[column] = np.zeros_like(inputs[column])
    scales = {c: ops.zeros(inputs[c].shape, "float32") for c in embeddings}
    inputs = {key: ops.convert_to_tensor(value) for key, value in inputs.items()}
    _, chosen = chosen_probability(model, inputs, np.repeat(onehot, subsets, axis=0), embeddings, scales)
    return keras.ops.convert_to_numpy(chosen).astype(np.float64).reshape(-1, subsets)


def _shapley(values: np.ndarray, count: int) -> list:
    """Exact Shapley values of ``count`` players from ``values[:, subset mask]`` (one row per example)."""
    from math import factorial

    shares = []
    for i in range(count):
        total = np.zeros(len(values))
        for mask in range(2 ** count):
            if not mask >> i & 1:
                size = bin(mask).count("1")
                weight = factorial(size) * factorial(count - size - 1) / factorial(count)
                total += weight * (values[:, mask | 1 << i] - values[:, mask])
        shares.append(total)
    return shares


def _chunk(model, features: dict, columns: list, targets, num_classes: int, embeddings: dict, steps: int) -> dict:
    """Attributions of ``len(targets)`` examples (one switch call, one gradient call); see the module."""
    import keras
    from keras import ops

    onehot = np.eye(num_classes, dtype=np.float32)[targets]
    switched = _switch_values(model, features, columns, onehot, embeddings)
    points = steps + 1
    alphas = np.linspace(0.0, 1.0, points, dtype=np.float32)
    weights = np.full(points, 1.0 / steps, np.float32)
    weights[[0, -1]] /= 2

    def path(value):  # (n, ...) -> (n * points, ...): example-major, a = 0 .. 1 within each example
        value = np.asarray(value, np.float32)
        scaled = value[:, None] * alphas.reshape((1, points) + (1,) * (value.ndim - 1))
        return scaled.reshape((-1,) + value.shape[1:])

    # The model refuses a mix of arrays and tensors: every input is a backend tensor.
    fixed = {key: ops.convert_to_tensor(np.repeat(value, points, axis=0)) for key, value in features.items()}
    floats = [c for c in columns if np.issubdtype(features[c].dtype, np.floating)]
    variables = {"inputs": {c: path(features[c]) for c in floats},
                 "scales": {c: path(np.ones(features[c].shape, np.float32)) for c in embeddings}}
    repeated = np.repeat(onehot, points, axis=0)
    chosen, gradients = input_gradients(model, embeddings, variables, fixed, repeated)
    chosen = keras.ops.convert_to_numpy(chosen).astype(np.float64).reshape(-1, points)

    def attribution(group, key, difference):  # (x - x') * trapezoid mean of the gradient
        gradient = keras.ops.convert_to_numpy(gradients[group][key]).astype(np.float64)
        gradient = gradient.reshape((-1, points) + gradient.shape[1:])
        return difference * np.tensordot(weights, gradient, axes=(0, 1))

    inputs = {c: attribution("inputs", c, np.asarray(features[c], np.float64)) for c in floats}
    inputs.update({c: attribution("scales", c, 1.0) for c in embeddings})
    return {"f_x": chosen[:, -1], "f_baseline": switched[:, 0], "f_switched": switched[:, -1],
            "presence": dict(zip(columns, _shapley(switched, len(columns)))),
            "inputs": {c: inputs.get(c) for c in columns}}


def _per_example(values) -> np.ndarray:
    values = np.asarray(values)
    return values.reshape(len(values), -1).sum(axis=1)


def shares_of(attributions: dict) -> dict:
    """``{column: |A_m| / sum |A|}`` per example (equal shares where every ``A`` is 0)."""
    columns = list(attributions)
    magnitude = np.abs(np.stack([np.asarray(attributions[c], np.float64) for c in columns], axis=-1))
    total = magnitude.sum(axis=-1, keepdims=True)
    shares = np.where(total > 0, magnitude / np.where(total > 0, total, 1.0), 1.0 / len(columns))
    return {column: shares[:, i] for i, column in enumerate(columns)}


def integrated_gradients(model, features: dict, columns=None, *, steps: int = 32, max_rows: int = MAX_ROWS) -> dict:
    """Integrated gradients of each example's predicted-class probability, per modality.

    Args:
        model: a model taking ``{column, column_present}`` and giving ``probabilities``.
        features: one batch of the pipeline's features (tensors or arrays).
        columns: the columns to attribute (default: every key with a presence flag).
        steps: trapezoid intervals along the path (error falls as ``1 / steps**2``).
        max_rows: model rows per gradient call (examples are split into chunks to fit).

    Returns:
        ``{"methods": {column: method}, "targets": (batch,) class ids, "probabilities": (batch,
        classes), "attributions" / "shares" / "presence": {column: (batch,)}, "inputs": {column:
        per-element (float inputs) or per-token (ids) attributions, or None}, "f_x", "f_baseline",
        "completeness_gap": (batch,)}``; ``presence`` is the presence flag's part of attributions.
    """
    import keras

    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    features = {key: keras.ops.convert_to_numpy(value) for key, value in features.items()}
    columns = list(columns or feature_columns(features))
    probabilities = keras.ops.convert_to_numpy(probabilities_of(model(features, training=False))).astype(np.float64)
    targets = probabilities.argmax(axis=-1)
    integer = [c for c in columns if not np.issubdtype(features[c].dtype, np.floating)]
    embeddings = {c: layer for c in integer if (layer := embedding_fed_by(model, c)) is not None}
    methods = {c: EMBEDDING_IG if c in embeddings else PRESENCE_ONLY if c in integer else INPUT_IG for c in columns}
    size = max(1, max_rows // (steps + 1))
    chunks = [_chunk(model, {k: v[start:start + size] for k, v in features.items()}, columns,
                     targets[start:start + size], probabilities.shape[-1], embeddings, steps)
              for start in range(0, len(targets), size)]

    def joined(key, column):
        parts = [chunk[key][column] for chunk in chunks]
        return None if parts[0] is None else np.concatenate(parts)

    inputs = {c: joined("inputs", c) for c in columns}
    presence = {c: joined("presence", c) for c in columns}
    attributions = {c: presence[c] + (0.0 if inputs[c] is None else _per_example(inputs[c])) for c in columns}
    f_x, f_baseline = (np.concatenate([chunk[key] for chunk in chunks]).astype(np.float64)
                       for key in ("f_x", "f_baseline"))
    total = np.sum([attributions[c] for c in columns], axis=0)
    return {"methods": methods, "targets": targets, "probabilities": probabilities, "attributions": attributions,
            "shares": shares_of(attributions), "presence": presence, "inputs": inputs, "f_x": f_x,
            "f_baseline": f_baseline, "completeness_gap": np.abs(total - (f_x - f_baseline))}


def attention_weights(model, features: dict, columns=None):
    """``(batch, modalities)``: the mean attention each modality receives, rows summing to 1, for a
    model whose fusion has attention (``self_attention``, ``cross_attention``); None for the others.

    ``columns`` are the fusion's modalities in order (the preprocessor's ``input_specs``; default:
    the feature dict's columns). The fusion's ``modality_attention`` is read during one
    ``training=False`` call; the attention that went to its CLS / null token is left out and each
    row renormalised. A row where no modality received any (one present modality under
    ``cross_attention``, which attends only to the others) falls back to the presence flags.
    """
    import keras

    fusion = next((layer for layer in model_layers(model) if hasattr(layer, "modality_attention")), None)
    if fusion is None:
        return None
    columns = list(columns or feature_columns(features))
    seen = []

    def fuse(vectors, present, tokens, token_masks, training, _fuse=fusion.fuse):
        seen.append(fusion.modality_attention(vectors, present, tokens, token_masks))
        return _fuse(vectors, present, tokens, token_masks, training)

    fusion.fuse = fuse
    try:
        model(features, training=False)
    finally:
        del fusion.fuse
    received = keras.ops.convert_to_numpy(seen[-1]).astype(np.float64)
    flags = np.stack([np.reshape(keras.ops.convert_to_numpy(features[f"{c}{PRESENCE_SUFFIX}"]), -1) > 0.5
                      for c in columns], axis=-1).astype(np.float64)
    received = np.where(received.sum(-1, keepdims=True) > 0, received, flags)
    total = received.sum(axis=-1, keepdims=True)
    return np.where(total > 0, received / np.where(total > 0, total, 1.0), 1.0 / received.shape[-1])


def dataset_attribution(model, dataset, columns, max_examples: int = 128, steps: int = 32) -> dict:
    """Mean per-modality shares over the first ``max_examples`` examples of ``dataset``.

    ``dataset`` yields ``(features, label)`` batches. ``completeness_gap`` is relative:
    ``sum |gap| / sum |f(x) - f(x')|`` over the examples. Returns ``{"method", "baseline", "steps",
    "examples", "shares", "completeness_gap", "methods"}`` and ``"attention"`` ({column: mean
    weight}) when the fusion has attention.
    """
    columns = list(columns)
    shares, gaps, changes, attention, seen = {c: [] for c in columns}, [], [], [], 0
    methods = {}
    for features, _ in dataset:
        if seen >= max_examples:
            break
        features = {key: np.asarray(value)[: max_examples - seen] for key, value in features.items()}
        result = integrated_gradients(model, features, columns, steps=steps)
        methods = result["methods"]
        for column in columns:
            shares[column].append(result["shares"][column])
        gaps.append(result["completeness_gap"])
        changes.append(np.abs(result["f_x"] - result["f_baseline"]))
        weights = attention_weights(model, features, columns)
        if weights is not None:
            attention.append(weights)
        seen += len(result["targets"])
    if not seen:
        raise ValueError("dataset_attribution got an empty dataset")
    change = float(np.concatenate(changes).sum())
    report = {"method": INPUT_IG, "baseline": "missing", "steps": steps, "examples": seen,
              "shares": {c: float(np.concatenate(shares[c]).mean()) for c in columns},
              "completeness_gap": float(np.concatenate(gaps).sum() / change) if change > 0 else 0.0,
              "methods": methods}
    if attention:
        weights = np.concatenate(attention)
        report["attention"] = {c: float(weights[:, i].mean()) for i, c in enumerate(columns)}
    return report
