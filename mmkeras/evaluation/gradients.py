"""Gradients of a model's class probabilities with respect to its inputs and its embedding outputs,
on either Keras backend: ``tf.GradientTape`` under TensorFlow, a compiled ``jax.value_and_grad``
under JAX (``keras.backend.backend()`` decides). ``mmkeras.evaluation.attribution`` builds the
integrated-gradients paths on top of these.

An integer input cannot be differentiated; ``embedding_fed_by`` finds the ``Embedding`` layer that
reads it, and ``scaled_embeddings`` multiplies that layer's output by a per-token scale (its call
is wrapped while the context is open), which can.

Example:
    >>> import numpy as np, keras
    >>> ids = keras.Input((3,), dtype="int32", name="text")
    >>> pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(5, 2, name="emb")(ids))
    >>> model = keras.Model(ids, keras.layers.Dense(2, activation="softmax")(pooled))
    >>> embedding_fed_by(model, "text").name, embedding_fed_by(model, "image")
    ('emb', None)
    >>> onehot = np.eye(2, dtype="float32")[[0]]
    >>> scales = {"text": np.ones((1, 3), "float32")}
    >>> chosen, gradients = input_gradients(model, {"text": model.get_layer("emb")},
    ...     {"inputs": {}, "scales": scales}, {"text": keras.ops.convert_to_tensor([[1, 2, 0]])}, onehot)
    >>> tuple(keras.ops.convert_to_numpy(gradients["scales"]["text"]).shape)
    (1, 3)
"""

from __future__ import annotations

import contextlib
import functools


def model_layers(model) -> list:
    """Every layer of ``model``, nested models' layers included."""
    return list(model._flatten_layers(include_self=False, recursive=True))


def embedding_fed_by(model, column: str):
    """The ``keras.layers.Embedding`` whose input is the model input ``column``, else None."""
    import keras

    for layer in model_layers(model):
        if not isinstance(layer, keras.layers.Embedding):
            continue
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                source = tensor._keras_history.operation
                if isinstance(source, keras.layers.InputLayer) and source.name == column:
                    return layer
    return None


def probabilities_of(output):
    """The main ``probabilities`` output of a model's output (a dict, a list or one tensor)."""
    if isinstance(output, dict):
        return output["probabilities"]
    return output[0] if isinstance(output, (list, tuple)) else output


@contextlib.contextmanager
def scaled_embeddings(embeddings: dict, scales: dict):
    """While open, ``embeddings[column]``'s output is multiplied by ``scales[column]`` (batch, steps)."""
    from keras import ops

    for column, layer in embeddings.items():
        def call(inputs, *args, _call=layer.call, _column=column, **kwargs):
            output = _call(inputs, *args, **kwargs)
            return output * ops.cast(ops.expand_dims(scales[_column], -1), output.dtype)

        layer.call = call
    try:
        yield
    finally:
        for layer in embeddings.values():
            del layer.call


def input_gradients(model, embeddings: dict, variables: dict, fixed: dict, onehot):
    """``(chosen, gradients)``: each row's probability of its class and the gradient of their sum.

    Args:
        model: the model (called eagerly, ``training=False``).
        embeddings: ``{column: Embedding layer}`` whose outputs ``variables["scales"]`` scale.
        variables: ``{"inputs": {input name: values}, "scales": {column: (rows, steps) scales}}``,
            what is differentiated; ``gradients`` has the same structure.
        fixed: every model input as a backend tensor (``variables["inputs"]`` replace theirs).
        onehot: ``(rows, classes)`` one-hot of each row's class.
    """
    import keras

    if keras.backend.backend() == "jax":
        compiled = _compiled_jax_gradients(model, tuple(embeddings))
        (_, chosen), gradients = compiled(variables, fixed, onehot, [v.value for v in model.trainable_variables],
                                          [v.value for v in model.non_trainable_variables])
        return chosen, gradients
    import tensorflow as tf

    variables = tf.nest.map_structure(tf.convert_to_tensor, variables)
    with tf.GradientTape() as tape:
        tape.watch(variables)
        value, chosen = chosen_probability(model, {**fixed, **variables["inputs"]}, onehot, embeddings, variables["scales"])
    return chosen, tape.gradient(value, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)


@functools.lru_cache(maxsize=4)
def _compiled_jax_gradients(model, embedding_columns: tuple):
    """``jax.jit(jax.value_and_grad(...))`` of the chosen probabilities through ``model.stateless_call``
    (weights are arguments, so the compiled function stays right if they change; compiled once per
    model and input shapes: op-by-op differentiation of a Keras model is an order of magnitude slower)."""
    import jax

    embeddings = {column: embedding_fed_by(model, column) for column in embedding_columns}

    def forward(values, fixed, onehot, trainable, non_trainable):
        def call(inputs, training):
            return model.stateless_call(trainable, non_trainable, inputs, training=training)[0]

        return chosen_probability(call, {**fixed, **values["inputs"]}, onehot, embeddings, values["scales"])

    return jax.jit(jax.value_and_grad(forward, has_aux=True))


def chosen_probability(model, inputs: dict, onehot, embeddings: dict, scales: dict):
    """``(sum, per-row)`` of the probability of each row's target class."""
    from keras import ops

    with scaled_embeddings(embeddings, scales):
        output = model(inputs, training=False)
    chosen = ops.sum(ops.cast(probabilities_of(output), "float32") * onehot, axis=-1)
    return ops.sum(chosen), chosen
