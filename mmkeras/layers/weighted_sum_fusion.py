"""``WeightedSumFusion``: per-modality projections mixed by learned, presence-renormalized weights."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras import registry
from mmkeras.layers._validation import masked_softmax
from mmkeras.layers.fusion_base import Fusion
from mmkeras.layers.modality_projection import ModalityProjection


@registry.register("fusion", "weighted_sum")
@keras.saving.register_keras_serializable(package="mmkeras")
class WeightedSumFusion(Fusion):
    """Weighted sum of per-modality projections with one learned logit per modality.

    ``h_m = activation(W_m v_m + b_m)``, ``a = softmax(modality_logits)`` taken over the present
    modalities only (so the weights of the present ones sum to 1 for every example), and the
    output is ``sum_m a_m h_m``. With all modalities missing the output is zeros.

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
        >>> fusion = WeightedSumFusion(output_dim=4)
        >>> vectors = [np.ones((2, 4), "float32"), np.ones((2, 3), "float32")]
        >>> out = fusion(vectors, np.array([[1, 1], [1, 0]], "float32"))
        >>> tuple(out.shape), tuple(fusion.modality_logits.shape)
        ((2, 4), (2,))

    Reference:
        Arevalo et al., "Gated Multimodal Units for Information Fusion", ICLR 2017 workshop
        (weighted-sum baseline), https://arxiv.org/abs/1702.01992
    """

    def __init__(self, output_dim, activation="relu", dropout=0.0, **kwargs):
        super().__init__(output_dim=output_dim, dropout=dropout, **kwargs)
        self.activation = keras.activations.get(activation)
        self.projection = ModalityProjection(
            output_dim, activation=self.activation, dtype=self.dtype_policy, name="projection"
        )

    def build_fusion(self, vector_dims, token_dims):
        self.projection.build([(None, dim) for dim in vector_dims])
        self.modality_logits = self.add_weight(
            name="modality_logits", shape=(len(vector_dims),), initializer="zeros"
        )

    def modality_weights(self, present):
        """``(batch, M)`` mixing weights: softmax of the logits over the present modalities."""
        logits = ops.cast(self.modality_logits, self.compute_dtype)
        logits = ops.zeros(ops.shape(present), dtype=self.compute_dtype) + logits
        return masked_softmax(logits, present, axis=-1)

    def fuse(self, vectors, present, tokens, token_masks, training):
        weights = self.modality_weights(present)
        projected = self.projection(vectors, self.modality_masks(present))
        return sum(weights[:, m : m + 1] * h for m, h in enumerate(projected))

    def get_config(self):
        config = super().get_config()
        config["activation"] = keras.activations.serialize(self.activation)
        return config
