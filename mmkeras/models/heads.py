"""Classification heads: a fused vector -> class probabilities (float32, also under mixed precision).

A head is a factory registered as kind ``head``::

    build_xxx(features, num_classes, features_are_logits=False, *, name=PROBABILITIES, **settings)

``features`` is the fusion's ``(batch, dim)`` output; with ``features_are_logits`` (after the
``late`` or ``hybrid`` fusion, which already return class logits) the head adds only its output activation.
Settings come from ``model.head`` in the config (minus ``type``, ``auxiliary`` and
``auxiliary_weight``, which the model factory handles: see ``build_auxiliary_heads``).

Example:
    >>> import keras
    >>> fused = keras.Input((16,))
    >>> probabilities = build_softmax_head(fused, 3, hidden_units=[8], dropout=0.1)
    >>> tuple(probabilities.shape), probabilities.dtype
    ((None, 3), 'float32')
"""

from __future__ import annotations

import keras

from mmkeras import registry
from mmkeras.errors import ConfigError
from mmkeras.models.outputs import PROBABILITIES, aux_name

#: Settings of ``model.head`` that every head accepts; the model factory consumes them.
AUXILIARY_SETTINGS = {"auxiliary": False, "auxiliary_weight": 0.3}


def _check_head_settings(hidden_units, dropout, features_are_logits):
    if isinstance(hidden_units, int) or not all(
        isinstance(u, int) and not isinstance(u, bool) and u > 0 for u in hidden_units
    ):
        raise ConfigError(f"model.head.hidden_units must be a list of positive integers; got {hidden_units!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.head.dropout must be a float in [0, 1); got {dropout!r}")
    if features_are_logits and (list(hidden_units) or dropout):
        raise ConfigError(
            "model.head.hidden_units / model.head.dropout cannot be used after a fusion that already "
            "outputs class logits (the 'late' fusion or the 'hybrid' fusion): the head only applies its activation"
        )


def _classifier(features, num_classes, features_are_logits, name, hidden_units, dropout, activation, output):
    _check_head_settings(hidden_units, dropout, features_are_logits)
    x = features
    if not features_are_logits:
        for index, units in enumerate(hidden_units):
            x = keras.layers.Dense(units, activation=activation, name=f"head_dense{index + 1}")(x)
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"head_dropout{index + 1}")(x)
        if dropout and not hidden_units:
            x = keras.layers.Dropout(dropout, name="head_dropout")(x)
        # float32 logits: a float16 softmax over many classes underflows.
        x = keras.layers.Dense(num_classes, dtype="float32", name="head_logits")(x)
    return keras.layers.Activation(output, dtype="float32", name=name)(x)


@registry.register("head", "softmax")
def build_softmax_head(
    features,
    num_classes: int,
    features_are_logits: bool = False,
    *,
    name: str = PROBABILITIES,
    hidden_units: list = (),
    dropout: float = 0.0,
    activation: str = "relu",
):
    """Single-label head: ``[Dense(u, activation) -> Dropout]`` per hidden layer, then a softmax.

    Args:
        features: ``(batch, dim)`` fused vector (or class logits, see ``features_are_logits``).
        num_classes: number of classes.
        features_are_logits: ``features`` already are logits; add only the softmax.
        name: name of the output layer (the model output).
        hidden_units: widths of the hidden Dense layers (none by default).
        dropout: rate after each hidden layer (before the classifier when there is none).
        activation: activation of the hidden layers.

    Returns:
        ``(batch, num_classes)`` float32 probabilities summing to 1.
    """
    return _classifier(features, num_classes, features_are_logits, name, hidden_units, dropout, activation, "softmax")


@registry.register("head", "sigmoid")
def build_sigmoid_head(
    features,
    num_classes: int,
    features_are_logits: bool = False,
    *,
    name: str = PROBABILITIES,
    hidden_units: list = (),
    dropout: float = 0.0,
    activation: str = "relu",
):
    """Multi-label head: like ``softmax`` but one independent sigmoid per class.

    Train it with binary cross-entropy on multi-hot labels. Same arguments as
    ``build_softmax_head``.

    Returns:
        ``(batch, num_classes)`` float32 probabilities, each in [0, 1].
    """
    return _classifier(features, num_classes, features_are_logits, name, hidden_units, dropout, activation, "sigmoid")


#: The output activation of each head, used by the auxiliary heads.
HEAD_ACTIVATIONS = {"softmax": "softmax", "sigmoid": "sigmoid"}


def build_auxiliary_heads(vectors, columns, num_classes: int, activation: str = "softmax") -> dict:
    """One linear classifier per modality on its encoder vector, for deep supervision.

    Each ``aux_<column>`` output is ``Dense(num_classes)`` + ``activation`` (the main head's:
    softmax or sigmoid) in float32. It pushes every encoder to be predictive on its own, which
    helps the fusion when a modality goes missing. The outputs see the encoder vector whatever
    the presence flag says, so their loss should be weighted by ``<column>_present``
    (see ``mmkeras.models.factory.loss_weights``).

    Args:
        vectors: list of ``(batch, d_m)`` encoder vectors.
        columns: the column name of each vector.
        num_classes: number of classes.
        activation: ``"softmax"`` or ``"sigmoid"``.

    Returns:
        ``{"aux_<column>": (batch, num_classes) float32}`` in column order.

    Reference:
        Lee et al., "Deeply-Supervised Nets", AISTATS 2015. https://arxiv.org/abs/1409.5185
    """
    outputs = {}
    for vector, column in zip(vectors, columns):
        name = aux_name(column)
        logits = keras.layers.Dense(num_classes, dtype="float32", name=f"{name}_logits")(vector)
        outputs[name] = keras.layers.Activation(activation, dtype="float32", name=name)(logits)
    return outputs
