"""``GatedFusion``: the gated multimodal unit (GMU) generalized to M modalities."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras import registry
from mmkeras.layers._validation import masked_softmax
from mmkeras.layers.fusion_base import Fusion
from mmkeras.layers.modality_projection import ModalityProjection


@registry.register("fusion", "gated")
@keras.saving.register_keras_serializable(package="mmkeras")
class GatedFusion(Fusion):
    """Gated multimodal unit: feature-wise gates choose how much each modality contributes.

    ``h_m = tanh(W_m v_m)``; gate logits ``z = W_z [v_1, ..., v_M, p]`` give one logit per
    modality and output unit; the gates are a softmax over the *present* modalities, and the output
    is ``sum_m g_m * h_m``. For two modalities this is exactly the GMU's ``z h_1 + (1 - z) h_2``
    with ``z = sigmoid(z_1 - z_2)``. Missing modalities enter the gate network as zeros (selected,
    not multiplied) plus their presence flag; with all modalities missing the output is zeros.

    Args:
        output_dim: int > 0, width of the fused vector.
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
        >>> fusion = GatedFusion(output_dim=4)
        >>> vectors = [np.ones((2, 4), "float32"), np.ones((2, 3), "float32")]
        >>> out = fusion(vectors, np.array([[1, 1], [0, 1]], "float32"))
        >>> tuple(out.shape), bool(np.all(np.abs(out) <= 1.0))
        ((2, 4), True)

    Reference:
        Arevalo, Solorio, Montes-y-Gomez and Gonzalez, "Gated Multimodal Units for Information
        Fusion", ICLR 2017 workshop, https://arxiv.org/abs/1702.01992
    """

    def __init__(self, output_dim, dropout=0.0, **kwargs):
        super().__init__(output_dim=output_dim, dropout=dropout, **kwargs)
        self.transforms = ModalityProjection(output_dim, activation="tanh", dtype=self.dtype_policy, name="transforms")

    def build_fusion(self, vector_dims, token_dims):
        self.transforms.build([(None, dim) for dim in vector_dims])
        self.gate = keras.layers.Dense(
            self.output_dim * len(vector_dims), dtype=self.dtype_policy, name="gate"
        )
        self.gate.build((None, sum(vector_dims) + len(vector_dims)))

    def fuse(self, vectors, present, tokens, token_masks, training):
        num = len(vectors)
        gate_input = self.masked_vectors_and_flags(vectors, present)
        gate_logits = ops.reshape(self.gate(gate_input), (-1, num, self.output_dim))
        gates = masked_softmax(gate_logits, ops.expand_dims(present, -1), axis=1)
        hidden = ops.stack(self.transforms(vectors, self.modality_masks(present)), axis=1)
        return ops.sum(gates * hidden, axis=1)
