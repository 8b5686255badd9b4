"""``ConcatFusion``: masked modality vectors and presence flags, concatenated and projected."""

from __future__ import annotations

import keras

from mmkeras import registry
from mmkeras.layers.fusion_base import Fusion


@registry.register("fusion", "concat")
@keras.saving.register_keras_serializable(package="mmkeras")
class ConcatFusion(Fusion):
    """Early fusion by concatenation: ``Dense([v_1 * p_1, ..., v_M * p_M, p])``.

    A missing modality's vector is replaced by zeros (selected, never multiplied, so its values
    cannot leak), and the presence flags are concatenated too, so the projection can tell
    "missing" apart from "present and zero".

    Args:
        output_dim: int > 0, width of the fused vector.
        activation: activation of the projection (any ``keras.activations`` name). Defaults to
            ``"relu"``.
        dropout: float in [0, 1), dropout on the fused vector. Defaults to ``0.0``.
        **kwargs: standard ``keras.layers.Layer`` arguments.

    Call arguments:
        vectors: list of M tensors ``(batch, dim_m)``.
        presence: ``(batch, M)`` float tensor of 0/1 flags (1 = present).
        tokens: ignored (accepted for the common fusion contract).
        token_masks: ignored.
        training: bool, whether dropout is active.

    Returns:
        ``(batch, output_dim)`` float32 tensor.

    Example:
        >>> import numpy as np
        >>> fusion = ConcatFusion(output_dim=8)
        >>> vectors = [np.ones((2, 4), "float32"), np.ones((2, 3), "float32")]
        >>> presence = np.array([[1, 1], [1, 0]], "float32")
        >>> tuple(fusion(vectors, presence).shape)
        (2, 8)

    Reference:
        Baltrusaitis, Ahuja and Morency, "Multimodal Machine Learning: A Survey and Taxonomy",
        TPAMI 2019 (early fusion), https://arxiv.org/abs/1705.09406
    """

    def __init__(self, output_dim, activation="relu", dropout=0.0, **kwargs):
        super().__init__(output_dim=output_dim, dropout=dropout, **kwargs)
        self.activation = keras.activations.get(activation)
        self.projection = keras.layers.Dense(
            output_dim, activation=self.activation, dtype=self.dtype_policy, name="projection"
        )

    def build_fusion(self, vector_dims, token_dims):
        self.projection.build((None, sum(vector_dims) + len(vector_dims)))

    def fuse(self, vectors, present, tokens, token_masks, training):
        return self.projection(self.masked_vectors_and_flags(vectors, present))

    def get_config(self):
        config = super().get_config()
        config["activation"] = keras.activations.serialize(self.activation)
        return config
