"""``SelfAttentionFusion``: a small transformer over one token per modality plus a CLS token."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras import registry
from mmkeras.layers._validation import check_positive_int, masked_select
from mmkeras.layers.fusion_base import Fusion


@registry.register("fusion", "self_attention")
@keras.saving.register_keras_serializable(package="mmkeras")
class SelfAttentionFusion(Fusion):
    """Transformer encoder over ``[CLS, W_1 v_1 + e_1, ..., W_M v_M + e_M]``; returns the CLS state.

    Each modality vector is projected to ``output_dim`` and gets a learned modality embedding
    ``e_m``. Pre-norm encoder blocks (multi-head self-attention, then a GELU feed-forward
    network) run over the sequence with an attention mask that hides missing modalities as keys;
    the learned CLS token is always visible, so an example with no modality attends to CLS alone.
    The output is the layer-normalized CLS state.

    Args:
        output_dim: int > 0, model width and width of the fused vector.
        num_heads: int > 0, attention heads; each head has ``max(output_dim // num_heads, 1)`` dims.
            Defaults to ``2``.
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
        https://arxiv.org/abs/1810.04805
    """

    def __init__(self, output_dim, num_heads=2, num_layers=1, intermediate_dim=None, dropout=0.0, **kwargs):
        super().__init__(output_dim=output_dim, dropout=dropout, **kwargs)
        name = type(self).__name__
        self.num_heads = check_positive_int(name, "num_heads", num_heads)
        self.num_layers = check_positive_int(name, "num_layers", num_layers)
        if intermediate_dim is not None:
            check_positive_int(name, "intermediate_dim", intermediate_dim)
        self.intermediate_dim = intermediate_dim
        self.projections = []

    def build_fusion(self, vector_dims, token_dims):
        width = self.output_dim
        policy = self.dtype_policy
        self.projections = []
        for m, dim in enumerate(vector_dims):
            dense = keras.layers.Dense(width, dtype=policy, name=f"projection_{m}")
            dense.build((None, dim))
            self.projections.append(dense)
        self.modality_embedding = self.add_weight(
            name="modality_embedding", shape=(len(vector_dims), width), initializer="glorot_uniform"
        )
        self.cls_token = self.add_weight(name="cls_token", shape=(1, 1, width), initializer="glorot_uniform")
        sequence = (None, len(vector_dims) + 1, width)
        hidden = self.intermediate_dim or 2 * width
        # Flat lists (one per sublayer kind) so that `.keras` saving walks every weight.
        self.attention_norms, self.attentions, self.ffn_norms = [], [], []
        self.ffn_ins, self.ffn_outs = [], []
        for i in range(self.num_layers):
            attention_norm = keras.layers.LayerNormalization(dtype=policy, name=f"block_{i}_attention_norm")
            attention = keras.layers.MultiHeadAttention(
                self.num_heads,
                max(width // self.num_heads, 1),
                dropout=self.dropout,
                dtype=policy,
                name=f"block_{i}_attention",
            )
            ffn_norm = keras.layers.LayerNormalization(dtype=policy, name=f"block_{i}_ffn_norm")
            ffn_in = keras.layers.Dense(hidden, activation="gelu", dtype=policy, name=f"block_{i}_ffn_in")
            ffn_out = keras.layers.Dense(width, dtype=policy, name=f"block_{i}_ffn_out")
            attention_norm.build(sequence)
            attention.build(sequence, sequence)
            ffn_norm.build(sequence)
            ffn_in.build(sequence)
            ffn_out.build((None, len(vector_dims) + 1, hidden))
            self.attention_norms.append(attention_norm)
            self.attentions.append(attention)
            self.ffn_norms.append(ffn_norm)
            self.ffn_ins.append(ffn_in)
            self.ffn_outs.append(ffn_out)
        self.block_dropout = keras.layers.Dropout(self.dropout, dtype=policy, name="block_dropout")
        self.final_norm = keras.layers.LayerNormalization(dtype=policy, name="final_norm")
        self.final_norm.build((None, width))

    def fuse(self, vectors, present, tokens, token_masks, training):
        dtype = self.compute_dtype
        embedding = ops.cast(self.modality_embedding, dtype)
        steps = [
            masked_select(present[:, m : m + 1], dense(v)) + embedding[m]
            for m, (dense, v) in enumerate(zip(self.projections, vectors))
        ]
        cls = ops.zeros_like(steps[0][:, None, :]) + ops.cast(self.cls_token, dtype)
        x = ops.concatenate([cls] + [ops.expand_dims(s, 1) for s in steps], axis=1)
        # Keys: CLS always, modalities only when present; every query row sees at least CLS.
        key_mask = ops.concatenate([ops.ones_like(present[:, :1]), present], axis=-1)
        attention_mask = ops.expand_dims(key_mask, 1)
        for i in range(self.num_layers):
            h = self.attention_norms[i](x)
            # Asking for the scores keeps MHA off `ops.dot_product_attention`, whose JAX version
            # requests float32 accumulation that XLA:CPU rejects for float16 inputs.
            h, _ = self.attentions[i](
                h, h, attention_mask=attention_mask, return_attention_scores=True, training=training
            )
            x = x + self.block_dropout(h, training=training)
            h = self.ffn_outs[i](self.ffn_ins[i](self.ffn_norms[i](x)))
            x = x + self.block_dropout(h, training=training)
        return self.final_norm(x[:, 0, :])

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
