"""``PositionEmbedding``: a learned embedding per sequence position."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras.layers._validation import check_positive_int


@keras.saving.register_keras_serializable(package="mmkeras")
class PositionEmbedding(keras.layers.Layer):
    """Learned position embeddings, returned broadcast to the shape of the inputs.

    As in KerasHub, the layer returns the embeddings (it does not add them): write
    ``x = x + PositionEmbedding(sequence_length)(x)``. Inputs may be shorter than
    ``sequence_length``; the first ``steps`` positions are used.

    Args:
        sequence_length: int > 0, the longest sequence the layer accepts.
        initializer: initializer of the ``(sequence_length, dim)`` table. Defaults to
            ``"glorot_uniform"``.
        **kwargs: standard ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: ``(batch, steps, dim)`` tensor with ``steps <= sequence_length``; only its shape
            is used.

    Returns:
        ``(batch, steps, dim)`` tensor of position embeddings.

    Example:
        >>> import numpy as np
        >>> x = np.zeros((2, 5, 4), "float32")
        >>> layer = PositionEmbedding(sequence_length=10)
        >>> tuple(layer(x).shape), tuple(layer.position_embeddings.shape)
        ((2, 5, 4), (10, 4))

    Reference:
        Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
        Understanding", NAACL 2019 (learned absolute positions), https://arxiv.org/abs/1810.04805
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = check_positive_int(type(self).__name__, "sequence_length", sequence_length)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"PositionEmbedding expects inputs of shape (batch, steps, dim) with a known dim; "
                f"received {tuple(input_shape)}"
            )
        if input_shape[1] is not None and input_shape[1] > self.sequence_length:
            raise ValueError(
                f"PositionEmbedding(sequence_length={self.sequence_length}) received a sequence of "
                f"{input_shape[1]} steps"
            )
        self.position_embeddings = self.add_weight(
            name="embeddings", shape=(self.sequence_length, input_shape[-1]), initializer=self.initializer
        )
        self.built = True

    def call(self, inputs):
        shape = ops.shape(inputs)
        table = ops.cast(self.position_embeddings, self.compute_dtype)
        positions = ops.slice(table, (0, 0), (shape[1], shape[2]))
        return ops.broadcast_to(ops.expand_dims(positions, 0), shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"sequence_length": self.sequence_length, "initializer": keras.initializers.serialize(self.initializer)}
        )
        return config
