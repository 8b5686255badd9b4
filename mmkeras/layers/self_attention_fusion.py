"""``SelfAttentionFusion``: a small transformer over one token per modality plus a CLS token."""

from __future__ import annotations

import keras
import keras_hub
from keras import ops

from mmkeras import registry
from mmkeras.layers._validation import check_attention, check_positive_int
from mmkeras.layers.fusion_base import Fusion
from mmkeras.layers.modality_projection import ModalityProjection


@registry.register("fusion", "self_attention")
@keras.saving.register_keras_serializable(package="mmkeras")
class SelfAttentionFusion(Fusion):
    """Transformer encoder over ``[CLS, W_1 v_1 + e_1, ..., W_M v_M + e_M]``; returns the CLS state.

    Each modality vector is projected to ``output_dim`` and gets a learned modality embedding
    ``e_m`` (a missing modality's step is ``e_m`` alone). Pre-norm encoder blocks
    (``keras_hub.layers.TransformerEncoder``: multi-head self-attention, then a GELU feed-forward
    network) run over the sequence with a key padding mask that hides missing modalities; the
    learned CLS token is always visible, so an example with no modality attends to CLS alone.
    The output is the layer-normalized CLS state.

    Args:
        output_dim: int > 0, model width and width of the fused vector.
        num_heads: int in [1, output_dim], attention heads, each ``output_dim // num_heads``
            wide. Defaults to ``2``.
        num_layers: int > 0, number of encoder blocks. Defaults to ``1``.
        intermediate_dim: int > 0 or None, feed-forward width; ``None`` means ``2 * output_dim``.
        dropout: float in [0, 1), dropout in the blocks and on the output. Defaults to ``0.0``.
        **kwargs: standard ``keras.layers.Layer`` arguments.

    Call arguments:
        vectors: list of M tensors ``(batch, dim_m)``.
        presence: ``(batch, M)`` float tensor of 0/1 flags (1 = present).
        tokens: ignored (one token per modality is its pooled vector).
        token_masks: ignored.
        training: bool, whether dropout is active.

    Returns:
        ``(batch, output_dim)`` float32 tensor.

    Example:
        >>> import numpy as np
        >>> fusion = SelfAttentionFusion(output_dim=8, num_heads=2)
        >>> vectors = [np.ones((2, 4), "float32"), np.ones((2, 3), "float32")]
        >>> tuple(fusion(vectors, np.array([[1, 1], [0, 0]], "float32")).shape)
        (2, 8)

    Reference:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017,
        https://arxiv.org/abs/1706.03762; CLS pooling as in Devlin et al., "BERT", NAACL 2019,
        https://arxiv.org/abs/1810.04805; pre-norm: Xiong et al., "On Layer Normalization in the
        Transformer Architecture", ICML 2020, https://arxiv.org/abs/2002.04745
    """

    def __init__(self, output_dim, num_heads=2, num_layers=1, intermediate_dim=None, dropout=0.0, **kwargs):
        super().__init__(output_dim=output_dim, dropout=dropout, **kwargs)
        name = type(self).__name__
        self.num_heads, self.intermediate_dim = check_attention(name, self.output_dim, num_heads, intermediate_dim)
        self.num_layers = check_positive_int(name, "num_layers", num_layers)
        policy = self.dtype_policy
        self.projection = ModalityProjection(output_dim, dtype=policy, name="projection")
        self.blocks = [
            keras_hub.layers.TransformerEncoder(
                self.intermediate_dim or 2 * output_dim,
                self.num_heads,
                dropout=self.dropout,
                activation="gelu",
                normalize_first=True,
                dtype=policy,
                name=f"block_{i}",
            )
            for i in range(self.num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(dtype=policy, name="final_norm")

    def build_fusion(self, vector_dims, token_dims):
        width = self.output_dim
        self.projection.build([(None, dim) for dim in vector_dims])
        self.modality_embedding = self.add_weight(
            name="modality_embedding", shape=(len(vector_dims), width), initializer="glorot_uniform"
        )
        self.cls_token = self.add_weight(name="cls_token", shape=(1, 1, width), initializer="glorot_uniform")
        for block in self.blocks:
            block.build((None, len(vector_dims) + 1, width))
        self.final_norm.build((None, width))

    def fuse(self, vectors, present, tokens, token_masks, training):
        return self._encode(vectors, present, training)[0]

    def modality_attention(self, vectors, present, tokens=None, token_masks=None):
        """``(batch, M)``: the attention the CLS token (the read-out) pays to each modality's step,
        averaged over heads and blocks. Takes ``fuse``'s arguments (``present`` is the bool mask);
        the rest of each row (at most 1) is CLS attending to itself. Used by
        ``mmkeras.evaluation.attribution.attention_weights``."""
        _, scores = self._encode(vectors, present, training=False)
        # scores: one (batch, heads, 1 + M queries, 1 + M keys) tensor per block; row 0 is CLS.
        return ops.mean(ops.stack([ops.mean(s[:, :, 0, 1:], axis=1) for s in scores]), axis=0)

    def _encode(self, vectors, present, training):
        """``(fused vector, [attention scores of each block])``."""
        dtype = self.compute_dtype
        embedding = ops.cast(self.modality_embedding, dtype)
        steps = [h + embedding[m] for m, h in enumerate(self.projection(vectors, self.modality_masks(present)))]
        cls = ops.zeros_like(steps[0][:, None, :]) + ops.cast(self.cls_token, dtype)
        x = ops.concatenate([cls] + [ops.expand_dims(s, 1) for s in steps], axis=1)
        # Keys: CLS always, modalities only when present; every query row sees at least CLS.
        key_mask = ops.concatenate([ops.ones_like(present[:, :1]), present], axis=-1)
        scores = []
        for block in self.blocks:
            # Asking for the scores keeps MHA off `ops.dot_product_attention`, whose JAX version
            # requests float32 accumulation that XLA:CPU rejects for float16 inputs.
            x, block_scores = block(x, padding_mask=key_mask, return_attention_scores=True, training=training)
            scores.append(block_scores)
        return self.final_norm(x[:, 0, :]), scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "num_layers": self.num_layers,
                "intermediate_dim": self.intermediate_dim,
            }
        )
        return config
