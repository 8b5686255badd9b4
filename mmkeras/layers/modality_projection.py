"""``ModalityProjection``: one Dense per modality to a common width, missing entries exact zeros."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras.layers._validation import check_positive_int, masked_select


@keras.saving.register_keras_serializable(package="mmkeras")
class ModalityProjection(keras.layers.Layer):
    """Projects each modality with its own ``Dense(units, activation)``; masked entries become 0.

    Every fusion that brings the modalities to a common width uses this layer, so the masking
    rule of ``mmkeras.layers`` is applied in one place: a masked entry (a missing modality, or a
    padded token) is selected away *before* the projection reads it and its projection is
    selected to exact zeros *after*, so neither its values nor the projection's bias reach the
    fusion, and non-finite values there cannot turn the gradient into NaN.

    Args:
        units: int > 0, the common width.
        activation: activation of every projection (any ``keras.activations`` name). Defaults
            to ``None`` (linear).
        **kwargs: standard ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: list of M tensors ``(batch, dim_m)`` or ``(batch, steps_m, dim_m)``; the dims
            (and step counts) may differ.
        masks: list of M boolean tensors, ``masks[m]`` of shape ``inputs[m].shape[:-1]``,
            True where the entry is real.

    Returns:
        List of M tensors, ``inputs[m].shape[:-1] + (units,)``.

    Example:
        >>> import numpy as np
        >>> layer = ModalityProjection(units=3, activation="relu")
        >>> vectors = [np.ones((2, 4), "float32"), np.ones((2, 5), "float32")]
        >>> masks = [np.array([True, True]), np.array([True, False])]
        >>> out = layer(vectors, masks)
        >>> [tuple(o.shape) for o in out], np.asarray(out[1][1]).tolist()
        ([(2, 3), (2, 3)], [0.0, 0.0, 0.0])

    Reference:
        Baltrusaitis, Ahuja and Morency, "Multimodal Machine Learning: A Survey and Taxonomy",
        TPAMI 2019 (modality-specific projections into a joint space),
        https://arxiv.org/abs/1705.09406
    """

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int(type(self).__name__, "units", units)
        self.activation = keras.activations.get(activation)
        self.dense_layers = []

    def _check(self, inputs_shape, masks_shape):
        if not isinstance(inputs_shape, (list, tuple)) or not inputs_shape or not isinstance(
            inputs_shape[0], (list, tuple)
        ):
            raise ValueError(
                f"{type(self).__name__} expects a list of tensors, one per modality; received shapes {inputs_shape!r}"
            )
        if masks_shape is not None and len(masks_shape) != len(inputs_shape):
            raise ValueError(
                f"{type(self).__name__}: `masks` must hold one mask per input ({len(inputs_shape)}); "
                f"received {len(masks_shape)}"
            )
        for m, shape in enumerate(inputs_shape):
            if len(shape) < 2 or shape[-1] is None:
                raise ValueError(
                    f"{type(self).__name__}: inputs[{m}] must have a known last axis; received {tuple(shape)}"
                )

    def build(self, inputs_shape, masks_shape=None):
        self._check(inputs_shape, masks_shape)
        self.dense_layers = []
        for m, shape in enumerate(inputs_shape):
            dense = keras.layers.Dense(
                self.units, activation=self.activation, dtype=self.dtype_policy, name=f"dense_{m}"
            )
            dense.build(tuple(shape))
            self.dense_layers.append(dense)
        self.built = True

    def call(self, inputs, masks):
        outputs = []
        for dense, x, mask in zip(self.dense_layers, inputs, masks):
            keep = ops.expand_dims(ops.cast(mask, "bool"), -1)
            outputs.append(masked_select(keep, dense(masked_select(keep, x))))
        return outputs

    def compute_output_shape(self, inputs_shape, masks_shape=None):
        self._check(inputs_shape, masks_shape)
        return [tuple(shape)[:-1] + (self.units,) for shape in inputs_shape]

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "activation": keras.activations.serialize(self.activation)})
        return config
