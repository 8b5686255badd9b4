"""``TensorFusion``: outer product of ``[z_m, 1]`` over modalities (Tensor Fusion Network)."""

from __future__ import annotations

import math

import keras
from keras import ops

from mmkeras import registry
from mmkeras.layers._validation import check_positive_int
from mmkeras.layers.fusion_base import Fusion
from mmkeras.layers.modality_projection import ModalityProjection


@registry.register("fusion", "tensor")
@keras.saving.register_keras_serializable(package="mmkeras")
class TensorFusion(Fusion):
    """Tensor fusion: ``Dense(vec([z_1, 1] (x) [z_2, 1] (x) ... (x) [z_M, 1]))``.

    Each modality is first projected to a small ``z_m = relu(W_m v_m)`` of ``projection_dim``
    values; appending a constant 1 keeps every unimodal and lower-order interaction term in the
    outer product, which has ``(projection_dim + 1) ** M`` entries. A missing modality's ``z_m`` is
    set to zeros, so only its constant-1 term survives and the product reduces to the
    interactions of the present modalities.

    Args:
        output_dim: int > 0, width of the fused vector.
        projection_dim: int > 0, size of each ``z_m``; keep it small, the product grows as
            ``(projection_dim + 1) ** M``. Defaults to ``4``.
        activation: activation of the output projection. Defaults to ``"relu"``.
        dropout: float in [0, 1), dropout on the fused vector. Defaults to ``0.0``.
        **kwargs: standard ``keras.layers.Layer`` arguments.

    Call arguments:
        vectors: list of M tensors ``(batch, dim_m)``.
        presence: ``(batch, M)`` float tensor of 0/1 flags (1 = present).
        tokens: ignored.
        token_masks: ignored.
        training: bool, whether dropout is active.

    Returns:
        ``(batch, output_dim)`` float32 tensor.

    Example:
        >>> import numpy as np
        >>> fusion = TensorFusion(output_dim=8, projection_dim=2)
        >>> vectors = [np.ones((2, 4), "float32"), np.ones((2, 3), "float32")]
        >>> tuple(fusion(vectors, np.array([[1, 1], [1, 0]], "float32")).shape)
        (2, 8)
        >>> tuple(fusion.output_projection.kernel.shape)  # (2 + 1) ** 2 product entries
        (9, 8)

    Reference:
        Zadeh, Chen, Poria, Cambria and Morency, "Tensor Fusion Network for Multimodal Sentiment
        Analysis", EMNLP 2017, https://arxiv.org/abs/1707.07250
    """

    def __init__(self, output_dim, projection_dim=4, activation="relu", dropout=0.0, **kwargs):
        super().__init__(output_dim=output_dim, dropout=dropout, **kwargs)
        self.projection_dim = check_positive_int(type(self).__name__, "projection_dim", projection_dim)
        self.activation = keras.activations.get(activation)
        self.projection = ModalityProjection(
            self.projection_dim, activation="relu", dtype=self.dtype_policy, name="projection"
        )
        self.output_projection = keras.layers.Dense(
            output_dim, activation=self.activation, dtype=self.dtype_policy, name="output_projection"
        )

    def build_fusion(self, vector_dims, token_dims):
        self.projection.build([(None, dim) for dim in vector_dims])
        self.output_projection.build((None, (self.projection_dim + 1) ** len(vector_dims)))

    def fuse(self, vectors, present, tokens, token_masks, training):
        product = None
        for z in self.projection(vectors, self.modality_masks(present)):
            z = ops.concatenate([z, ops.ones_like(z[:, :1])], axis=-1)
            if product is None:
                product = z
            else:
                size = math.prod(product.shape[1:]) * z.shape[-1]
                product = ops.reshape(ops.expand_dims(product, -1) * ops.expand_dims(z, 1), (-1, size))
        return self.output_projection(product)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"projection_dim": self.projection_dim, "activation": keras.activations.serialize(self.activation)}
        )
        return config
