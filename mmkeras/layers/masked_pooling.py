"""``MaskedGlobalPooling``: mean or max over time that ignores padded steps."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras.layers._validation import check_choice


@keras.saving.register_keras_serializable(package="mmkeras")
class MaskedGlobalPooling(keras.layers.Layer):
    """Pools ``(batch, steps, dim)`` to ``(batch, dim)`` over the steps where the mask is true.

    ``mode="mean"`` averages the real steps; ``mode="max"`` takes their maximum. A sequence with
    no real step pools to zeros (not NaN, not ``-inf``). The mask may be passed explicitly or come
    from an upstream layer (e.g. ``Embedding(mask_zero=True)``); without one, every step counts.
    The output has no Keras mask.

    Args:
        mode: ``"mean"`` or ``"max"``. Defaults to ``"mean"``.
        **kwargs: standard ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: ``(batch, steps, dim)`` tensor.
        mask: optional ``(batch, steps)`` tensor, true/1 for real steps.

    Returns:
        ``(batch, dim)`` tensor in the layer's compute dtype.

    Example:
        >>> import numpy as np
        >>> x = np.array([[[1.0], [3.0], [100.0]]], "float32")
        >>> mask = np.array([[1, 1, 0]], "float32")
        >>> float(MaskedGlobalPooling("mean")(x, mask=mask)[0, 0])
        2.0
        >>> float(MaskedGlobalPooling("max")(x, mask=mask)[0, 0])
        3.0

    Reference:
        Conneau et al., "Supervised Learning of Universal Sentence Representations from Natural
        Language Inference Data", EMNLP 2017 (mean/max pooling of encoder states),
        https://arxiv.org/abs/1705.02364
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        self.mode = check_choice(type(self).__name__, "mode", mode, ("mean", "max"))
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        mask = ops.expand_dims(ops.cast(mask, "bool"), -1)
        if self.mode == "mean":
            total = ops.sum(ops.where(mask, inputs, ops.zeros_like(inputs)), axis=1)
            count = ops.sum(ops.cast(mask, inputs.dtype), axis=1)
            return total / ops.maximum(count, ops.ones_like(count))
        lowest = ops.full_like(inputs, float("-inf"))
        pooled = ops.max(ops.where(mask, inputs, lowest), axis=1)
        return ops.where(ops.any(mask, axis=1), pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"MaskedGlobalPooling expects inputs of shape (batch, steps, dim); received {tuple(input_shape)}"
            )
        return (input_shape[0], input_shape[2])

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config
