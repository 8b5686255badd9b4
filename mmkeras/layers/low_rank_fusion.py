"""``LowRankFusion``: low-rank multimodal fusion (LMF), the tensor fusion with factorized weights."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras import registry
from mmkeras.layers._validation import check_positive_int, masked_select
from mmkeras.layers.fusion_base import Fusion


@registry.register("fusion", "low_rank")
@keras.saving.register_keras_serializable(package="mmkeras")
class LowRankFusion(Fusion):
    """Low-rank fusion: ``h = sum_r w_r prod_m ([v_m, 1] W_m^(r)) + b``.

    Equivalent to applying a rank-``rank`` weight tensor to the tensor-fusion outer product of the
    ``[v_m, 1]`` vectors, without ever forming the product: each modality has ``rank`` factor
    matrices of shape ``(dim_m + 1, output_dim)``. A missing modality's vector is set to zeros, so
    only the factor row for its constant 1 remains (as in ``TensorFusion``).

    Args:
        output_dim: int > 0, width of the fused vector.
        rank: int > 0, rank of the factorization. Defaults to ``4``.
        activation: activation applied to ``h``. Defaults to ``"relu"``.
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
        >>> fusion = LowRankFusion(output_dim=8, rank=2)
        >>> vectors = [np.ones((2, 4), "float32"), np.ones((2, 3), "float32")]
        >>> tuple(fusion(vectors, np.array([[1, 1], [0, 1]], "float32")).shape)
        (2, 8)
        >>> [tuple(f.shape) for f in fusion.factors]
        [(2, 5, 8), (2, 4, 8)]

    Reference:
        Liu, Shen, Lakshminarasimhan, Liang, Zadeh and Morency, "Efficient Low-rank Multimodal
        Fusion with Modality-Specific Factors", ACL 2018, https://arxiv.org/abs/1806.00064
    """

    def __init__(self, output_dim, rank=4, activation="relu", dropout=0.0, **kwargs):
        super().__init__(output_dim=output_dim, dropout=dropout, **kwargs)
        self.rank = check_positive_int(type(self).__name__, "rank", rank)
        self.activation = keras.activations.get(activation)
        self.factors = []

    def build_fusion(self, vector_dims, token_dims):
        self.factors = [
            self.add_weight(
                name=f"factor_{m}",
                shape=(self.rank, dim + 1, self.output_dim),
                initializer=keras.initializers.GlorotNormal(),
            )
            for m, dim in enumerate(vector_dims)
        ]
        self.rank_weights = self.add_weight(
            name="rank_weights", shape=(self.rank,), initializer=keras.initializers.Constant(1.0 / self.rank)
        )
        self.bias = self.add_weight(name="bias", shape=(self.output_dim,), initializer="zeros")

    def fuse(self, vectors, present, tokens, token_masks, training):
        dtype = self.compute_dtype
        product = None
        for m, (factor, v) in enumerate(zip(self.factors, vectors)):
            v = masked_select(present[:, m : m + 1], v)
            v = ops.concatenate([v, ops.ones_like(v[:, :1])], axis=-1)
            z = ops.einsum("bd,rdo->bro", v, ops.cast(factor, dtype))
            product = z if product is None else product * z
        fused = ops.einsum("r,bro->bo", ops.cast(self.rank_weights, dtype), product)
        return self.activation(fused + ops.cast(self.bias, dtype))

    def get_config(self):
        config = super().get_config()
        config.update({"rank": self.rank, "activation": keras.activations.serialize(self.activation)})
        return config
