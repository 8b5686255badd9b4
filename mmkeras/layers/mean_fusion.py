"""``MeanFusion``: per-modality projections averaged over the present modalities."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras import registry
from mmkeras.layers.fusion_base import Fusion
from mmkeras.layers.modality_projection import ModalityProjection


@registry.register("fusion", "mean")
@keras.saving.register_keras_serializable(package="mmkeras")
class MeanFusion(Fusion):
    """Average of per-modality projections, over the modalities that are present.

    ``h_m = activation(W_m v_m + b_m)``; the output is ``sum_m p_m h_m / max(sum_m p_m, 1)``, so an
    example with one modality gets that modality's projection and an example with none gets zeros.

    Args:
        output_dim: int > 0, width of the fused vector.
        activation: activation of the projections. Defaults to ``"relu"``.
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
        >>> fusion = MeanFusion(output_dim=4)
        >>> vectors = [np.ones((2, 4), "float32"), np.ones((2, 3), "float32")]
        >>> out = fusion(vectors, np.array([[1, 1], [0, 0]], "float32"))
        >>> tuple(out.shape), float(np.abs(out[1]).max())
        ((2, 4), 0.0)

    Reference:
        Ngiam et al., "Multimodal Deep Learning", ICML 2011 (shared representation of
        per-modality features), https://dl.acm.org/doi/10.5555/3104482.3104569
    """

    def __init__(self, output_dim, activation="relu", dropout=0.0, **kwargs):
        super().__init__(output_dim=output_dim, dropout=dropout, **kwargs)
        self.activation = keras.activations.get(activation)
        self.projection = ModalityProjection(
            output_dim, activation=self.activation, dtype=self.dtype_policy, name="projection"
        )

    def build_fusion(self, vector_dims, token_dims):
        self.projection.build([(None, dim) for dim in vector_dims])

    def fuse(self, vectors, present, tokens, token_masks, training):
        total = sum(self.projection(vectors, self.modality_masks(present)))
        count = ops.sum(ops.cast(present, self.compute_dtype), axis=-1, keepdims=True)
        return total / ops.maximum(count, ops.ones_like(count))

    def get_config(self):
        config = super().get_config()
        config["activation"] = keras.activations.serialize(self.activation)
        return config
