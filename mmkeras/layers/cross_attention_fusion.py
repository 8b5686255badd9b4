"""``CrossAttentionFusion``: each modality's tokens attend to the other present modalities' tokens."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras import registry
from mmkeras.layers._validation import check_attention
from mmkeras.layers.fusion_base import Fusion
from mmkeras.layers.masked_pooling import MaskedGlobalPooling
from mmkeras.layers.modality_projection import ModalityProjection
from mmkeras.layers.transformer_block import TransformerBlock


@registry.register("fusion", "cross_attention")
@keras.saving.register_keras_serializable(package="mmkeras")
class CrossAttentionFusion(Fusion):
    """Cross-modal attention, masked pooling per modality, then a mean over present modalities.

    Every modality's tokens are projected to ``output_dim`` and get a learned modality embedding.
    Modality ``m``'s tokens (queries) attend, with their own pre-norm ``TransformerBlock``
    (cross-attention, then a GELU feed-forward network), to the real tokens of every *other
    present* modality plus one learned "null" key that is always visible (so a modality with no
    present partner, or a single-modality model, attends to the null token instead of to an
    empty set). Each modality's sequence is then mean-pooled over its real tokens, and the
    pooled vectors are averaged over the present modalities (zeros when none is present).

    When ``tokens`` is None, each modality's pooled vector is used as a one-step sequence.

    Args:
        output_dim: int > 0, model width and width of the fused vector.
        num_heads: int in [1, output_dim], attention heads, each ``output_dim // num_heads``
            wide. Defaults to ``2``.
        intermediate_dim: int > 0 or None, feed-forward width; ``None`` means ``2 * output_dim``.
        dropout: float in [0, 1), dropout in the blocks and on the output. Defaults to ``0.0``.
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
        self.num_heads, self.intermediate_dim = check_attention(
            type(self).__name__, self.output_dim, num_heads, intermediate_dim
        )
        self.projection = ModalityProjection(output_dim, dtype=self.dtype_policy, name="projection")
        self.pooling = MaskedGlobalPooling("mean", dtype=self.dtype_policy, name="pooling")
        self.blocks = []

    def build_fusion(self, vector_dims, token_dims):
        width = self.output_dim
        dims = token_dims if token_dims is not None else vector_dims
        self.projection.build([(None, None, dim) for dim in dims])
        sequence = (None, None, width)
        self.pooling.build(sequence)
        self.blocks = []
        for m in range(len(dims)):
            block = TransformerBlock(
                self.num_heads,
                self.intermediate_dim or 2 * width,
                dropout=self.dropout,
                activation="gelu",
                normalize_first=True,
                dtype=self.dtype_policy,
                name=f"block_{m}",
            )
            block.build(sequence, sequence)
            self.blocks.append(block)
        self.modality_embedding = self.add_weight(
            name="modality_embedding", shape=(len(dims), width), initializer="glorot_uniform"
        )
        self.null_token = self.add_weight(name="null_token", shape=(1, 1, width), initializer="glorot_uniform")

    def _cross_inputs(self, vectors, present, tokens, token_masks):
        """Per modality ``m``: ``(queries, keys, key mask, usable query mask, others)``, where the keys
        are the null token then the tokens of each modality in ``others`` (every one but ``m``)."""
        dtype = self.compute_dtype
        if tokens is None:
            tokens = [ops.expand_dims(v, 1) for v in vectors]
            token_masks = [ops.ones_like(present[:, :1]) for _ in vectors]
        embedding = ops.cast(self.modality_embedding, dtype)
        # A token is usable when it is real and its modality is present; the projection selects
        # the others away before anything reads them.
        usable = [ops.logical_and(mask, present[:, m : m + 1]) for m, mask in enumerate(token_masks)]
        sequences = [h + embedding[m] for m, h in enumerate(self.projection(tokens, usable))]
        null = ops.zeros_like(sequences[0][:, :1, :]) + ops.cast(self.null_token, dtype)
        always = ops.ones_like(present[:, :1])
        for m, query in enumerate(sequences):
            others = [j for j in range(len(sequences)) if j != m]
            keys = ops.concatenate([null] + [sequences[j] for j in others], axis=1)
            key_mask = ops.concatenate([always] + [usable[j] for j in others], axis=-1)
            yield query, keys, key_mask, usable[m], others

    def fuse(self, vectors, present, tokens, token_masks, training):
        pooled = [self.pooling(block(query, keys, key_padding_mask=key_mask, training=training), mask=usable)
                  for block, (query, keys, key_mask, usable, _) in
                  zip(self.blocks, self._cross_inputs(vectors, present, tokens, token_masks))]
        # A missing modality pools to zeros (no usable token), so the sum runs over the present ones.
        dtype = self.compute_dtype
        count = ops.sum(ops.cast(present, dtype), axis=-1, keepdims=True)
        return sum(pooled) / ops.maximum(count, ops.ones_like(count))

    def modality_attention(self, vectors, present, tokens=None, token_masks=None):
        """``(batch, M)``: the attention each modality's tokens receive from the other present
        modalities' real tokens, averaged over heads, query tokens and present query modalities.
        Takes ``fuse``'s arguments (``present`` is the bool mask); the rest of each row (at most 1)
        goes to the null token. Used by ``mmkeras.evaluation.attribution.attention_weights``."""
        received, weights = [], []
        for block, (query, keys, key_mask, usable, others) in zip(
                self.blocks, self._cross_inputs(vectors, present, tokens, token_masks)):
            # The block's own attention sublayer on its pre-norm inputs (blocks here are pre-norm).
            mask = ops.expand_dims(ops.cast(key_mask, "bool"), 1)
            _, scores = block.attention(block.attention_norm(query), block.context_norm(keys),
                                        attention_mask=mask, return_attention_scores=True)
            query_weight = ops.cast(usable, "float32")[:, :, None]
            per_key = ops.sum(ops.mean(ops.cast(scores, "float32"), axis=1) * query_weight, axis=1)
            per_key = per_key / ops.maximum(ops.sum(query_weight, axis=1), 1.0)  # (batch, 1 + key tokens)
            mass, start = {}, 1  # key 0 is the null token; then each other modality's tokens in turn
            for j in others:
                steps = 1 if tokens is None else tokens[j].shape[1]
                mass[j], start = ops.sum(per_key[:, start : start + steps], axis=-1), start + steps
            zeros = ops.zeros_like(per_key[:, 0])
            received.append(ops.stack([mass.get(j, zeros) for j in range(self.num_modalities)], axis=-1))
            weights.append(ops.cast(ops.any(usable, axis=-1), "float32"))
        weights = ops.stack(weights, axis=-1)[:, :, None]  # (batch, M queries, 1)
        total = ops.sum(ops.stack(received, axis=1) * weights, axis=1)
        return total / ops.maximum(ops.sum(weights, axis=1), 1.0)

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "intermediate_dim": self.intermediate_dim})
        return config
