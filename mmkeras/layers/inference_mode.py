"""``InferenceMode``: a wrapped layer always runs in inference mode, whatever its caller asks.

Keras 3.15 does not keep a ``training=False`` given while building a Functional model: when the
model is called with ``training=True`` (as ``fit`` does), the inner call is in training mode too
(measured: a ``Dropout`` built as ``Dropout(0.5)(x, training=False)`` still drops). A frozen
pretrained backbone must stay in inference mode (no dropout, fixed normalization statistics), both
because that is what freezing means and because its outputs are then the same in every epoch and
can be cached. This wrapper passes ``training=False`` at call time instead.

Args:
    layer: the layer (or model, e.g. a KerasHub backbone) to run.
    **kwargs: standard ``keras.layers.Layer`` arguments.

Call arguments:
    inputs: whatever ``layer`` takes (a tensor or a dict of tensors).

Example:
    >>> import numpy as np
    >>> x = keras.Input((4,))
    >>> model = keras.Model(x, InferenceMode(keras.layers.Dropout(0.5))(x))
    >>> bool(np.all(keras.ops.convert_to_numpy(model(np.ones((2, 4)), training=True)) == 1.0))
    True

Reference:
    Keras guide "Transfer learning & fine-tuning" (inference mode of frozen BatchNormalization),
    https://keras.io/guides/transfer_learning/
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="mmkeras")
class InferenceMode(keras.layers.Wrapper):
    """Calls ``layer`` with ``training=False`` (see the module docstring)."""

    def call(self, inputs):
        return self.layer(inputs, training=False)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_output_spec(self, inputs):
        return self.layer.compute_output_spec(inputs)
