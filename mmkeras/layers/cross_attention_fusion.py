"""``CrossAttentionFusion``: each modality's tokens attend to the other present modalities' tokens."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras import registry
from mmkeras.layers._validation import check_positive_int, masked_select
from mmkeras.layers.fusion_base import Fusion


@registry.register("fusion", "cross_attention")
@keras.saving.register_keras_serializable(package="mmkeras")
class CrossAttentionFusion(Fusion):
    """Cross-modal attention, masked pooling per modality, then a mean over present modalities.

    Every modality's tokens are projected to ``output_dim`` and get a learned modality embedding.
    Modality ``m``'s tokens (queries) attend, with their own ``MultiHeadAttention``, to the real
    tokens of every *other present* modality plus one learned "null" key that is always visible
    (so a modality with no present partner, or a single-modality model, attends to the null
    token instead of to an empty set). A residual connection and a GELU feed-forward network
    follow (pre-norm). Each modality's sequence is then mean-pooled over its real tokens, and the
    pooled vectors are averaged over the present modalities (zeros when none is present).

    When ``tokens`` is None, each modality's pooled vector is used as a one-step sequence.

    Args:
        output_dim: int > 0, model width and width of the fused vector.
        num_heads: int > 0, attention heads; each head has ``max(output_dim // num_heads, 1)`` dims.
            Defaults to ``2``.
        intermediate_dim: int > 0 or None, feed-forward width; ``None`` means ``2 * output_dim``.
        dropout: float in [0, 1), dropout in attention and on the output. Defaults to ``0.0``.
        **kwargs: standard ``keras.layers.Layer`` arguments.

    Call arguments:
        vectors: list of M tensors ``(batch, dim_m)``; used only when ``tokens`` is None.
        presence: ``(batch, M)`` float tensor of 0/1 flags (1 = present).
        tokens: optional list of M tensors ``(batch, steps_m, dim_m)``.
        token_masks: optional list of M tensors ``(batch, steps_m)``, 1 (or True) for real tokens.
        training: bool, whether dropout is active.

    Returns:
        ``(batch, output_dim)`` float32 tensor.

    Example:
        >>> import numpy as np
        >>> fusion = CrossAttentionFusion(output_dim=8)
        >>> vectors = [np.ones((2, 4), "float32"), np.ones((2, 3), "float32")]
        >>> tokens = [np.ones((2, 5, 4), "float32"), np.ones((2, 2, 3), "float32")]
        >>> masks = [np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "float32"), np.ones((2, 2), "float32")]
        >>> presence = np.array([[1, 1], [1, 0]], "float32")
        >>> tuple(fusion(vectors, presence, tokens=tokens, token_masks=masks).shape)
        (2, 8)

    Reference:
        Tsai et al., "Multimodal Transformer for Unaligned Multimodal Language Sequences",
        ACL 2019, https://arxiv.org/abs/1906.00295
    """

    uses_tokens = True

    def __init__(self, output_dim, num_heads=2, intermediate_dim=None, dropout=0.0, **kwargs):
        super().__init__(output_dim=output_dim, dropout=dropout, **kwargs)
        name = type(self).__name__
        self.num_heads = check_positive_int(name, "num_heads", num_heads)
        if intermediate_dim is not None:
            check_positive_int(name, "intermediate_dim", intermediate_dim)
        self.intermediate_dim = intermediate_dim
        self.projections = []

    def build_fusion(self, vector_dims, token_dims):
        width = self.output_dim
        policy = self.dtype_policy
        hidden = self.intermediate_dim or 2 * width
        dims = token_dims if token_dims is not None else vector_dims
        sequence = (None, None, width)
        self.projections, self.query_norms, self.key_norms, self.attentions = [], [], [], []
        self.ffn_norms, self.ffn_ins, self.ffn_outs = [], [], []
        for m, dim in enumerate(dims):
            projection = keras.layers.Dense(width, dtype=policy, name=f"projection_{m}")
            query_norm = keras.layers.LayerNormalization(dtype=policy, name=f"query_norm_{m}")
            key_norm = keras.layers.LayerNormalization(dtype=policy, name=f"key_norm_{m}")
            attention = keras.layers.MultiHeadAttention(
                self.num_heads, max(width // self.num_heads, 1), dropout=self.dropout, dtype=policy,
                name=f"attention_{m}",
            )
            ffn_norm = keras.layers.LayerNormalization(dtype=policy, name=f"ffn_norm_{m}")
            ffn_in = keras.layers.Dense(hidden, activation="gelu", dtype=policy, name=f"ffn_in_{m}")
            ffn_out = keras.layers.Dense(width, dtype=policy, name=f"ffn_out_{m}")
            projection.build((None, None, dim))
            for norm in (query_norm, key_norm, ffn_norm):
                norm.build(sequence)
            attention.build(sequence, sequence)
            ffn_in.build(sequence)
            ffn_out.build((None, None, hidden))
            self.projections.append(projection)
            self.query_norms.append(query_norm)
            self.key_norms.append(key_norm)
            self.attentions.append(attention)
            self.ffn_norms.append(ffn_norm)
            self.ffn_ins.append(ffn_in)
            self.ffn_outs.append(ffn_out)
        self.modality_embedding = self.add_weight(
            name="modality_embedding", shape=(len(dims), width), initializer="glorot_uniform"
        )
        self.null_token = self.add_weight(name="null_token", shape=(1, 1, width), initializer="glorot_uniform")

    def fuse(self, vectors, present, tokens, token_masks, training):
        dtype = self.compute_dtype
        if tokens is None:
            tokens = [ops.expand_dims(v, 1) for v in vectors]
            token_masks = [ops.ones_like(present[:, :1]) for _ in vectors]
        embedding = ops.cast(self.modality_embedding, dtype)
        # A token is usable when it is real and its modality is present; unusable tokens are
        # replaced by zeros before anything reads them.
        usable = [
            ops.logical_and(mask, present[:, m : m + 1]) for m, mask in enumerate(token_masks)
        ]
        sequences = [
            self.projections[m](masked_select(ops.expand_dims(usable[m], -1), t)) + embedding[m]
            for m, t in enumerate(tokens)
        ]
        null = ops.zeros_like(sequences[0][:, :1, :]) + ops.cast(self.null_token, dtype)
        always = ops.ones_like(present[:, :1])
        total = 0.0
        for m, query in enumerate(sequences):
            others = [j for j in range(len(sequences)) if j != m]
            keys = ops.concatenate([null] + [sequences[j] for j in others], axis=1)
            key_mask = ops.concatenate([always] + [usable[j] for j in others], axis=-1)
            h = self.query_norms[m](query)
            # Asking for the scores keeps MHA off `ops.dot_product_attention`, whose JAX version
            # requests float32 accumulation that XLA:CPU rejects for float16 inputs.
            attended, _ = self.attentions[m](
                h,
                self.key_norms[m](keys),
                attention_mask=ops.expand_dims(key_mask, 1),
                return_attention_scores=True,
                training=training,
            )
            x = query + attended
            x = x + self.ffn_outs[m](self.ffn_ins[m](self.ffn_norms[m](x)))
            weights = ops.expand_dims(ops.cast(usable[m], dtype), -1)
            pooled = ops.sum(masked_select(ops.expand_dims(usable[m], -1), x), axis=1)
            count = ops.sum(weights, axis=1)
            pooled = pooled / ops.maximum(count, ops.ones_like(count))
            total = total + masked_select(present[:, m : m + 1], pooled)
        count = ops.sum(ops.cast(present, dtype), axis=-1, keepdims=True)
        return total / ops.maximum(count, ops.ones_like(count))

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "intermediate_dim": self.intermediate_dim})
        return config
