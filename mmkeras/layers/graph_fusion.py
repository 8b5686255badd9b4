"""``GraphFusion``: modalities as the nodes of a fully connected graph, fused by graph attention."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras import registry
from mmkeras.layers._validation import check_choice, check_positive_int, masked_select, masked_softmax
from mmkeras.layers.fusion_base import Fusion
from mmkeras.layers.modality_projection import ModalityProjection

MERGE_HEADS = ("concat", "mean")
# LeakyReLU slope of the attention logits, as in Velickovic et al. 2018.
NEGATIVE_SLOPE = 0.2


@registry.register("fusion", "graph")
@keras.saving.register_keras_serializable(package="mmkeras")
class GraphFusion(Fusion):
    """Graph attention over the modalities: each present modality is a node, every node sees every node.

    The nodes start as ``h_i = W_i v_i`` (a linear projection per modality to ``node_dim``). Each
    of ``rounds`` rounds of message passing, with ``K = heads`` attention heads of its own, computes

    ``e^k_ij = LeakyReLU_0.2(a^k_dst . (W^k h_i) + a^k_src . (W^k h_j))`` (that is,
    ``a^T [W h_i || W h_j]``), ``alpha^k_ij = softmax_j(e^k_ij)`` over the *present* nodes ``j``
    (self-loops included), and ``m^k_i = sum_j alpha^k_ij W^k h_j``; the heads are merged as
    ``ELU(m^1_i) || ... || ELU(m^K_i)`` (``merge_heads="concat"``, each head ``node_dim / K`` wide)
    or ``ELU(mean_k m^k_i)`` (``"mean"``, each head ``node_dim`` wide), and with ``residual`` the
    merged message is added to ``h_i``. The readout is the mean of the final node states over the
    present nodes, then ``Dense(output_dim, activation)``.

    A missing modality is a removed node: its state is selected to exact zeros after every round,
    its attention logits are selected away from every softmax and it is left out of the readout,
    so its values never reach the output. With every modality missing the readout sees zeros and
    the output is ``activation(bias)``.

    Args:
        output_dim: int > 0, width of the fused vector.
        node_dim: int > 0 or None, width of the node states; ``None`` means ``output_dim``.
        rounds: int > 0, rounds of message passing (each with its own weights). Defaults to ``2``.
        heads: int > 0, attention heads per round. With ``merge_heads="concat"`` it must divide
            ``node_dim``. Defaults to ``2``.
        merge_heads: ``"concat"`` (GAT's hidden layers) or ``"mean"`` (GAT's output layer).
            Defaults to ``"concat"``.
        residual: bool, add each round's merged message to the node state. Defaults to ``True``.
        activation: activation of the readout projection. Defaults to ``"relu"``.
        dropout: float in [0, 1), dropout on the fused vector. Defaults to ``0.0``.
        **kwargs: standard ``keras.layers.Layer`` arguments.

    Call arguments:
        vectors: list of M tensors ``(batch, dim_m)``.
        presence: ``(batch, M)`` float tensor of 0/1 flags (1 = present).
        tokens: ignored (a node is a modality's pooled vector).
        token_masks: ignored.
        training: bool, whether dropout is active.

    Returns:
        ``(batch, output_dim)`` float32 tensor.

    Example:
        >>> import numpy as np
        >>> fusion = GraphFusion(output_dim=8, rounds=2, heads=2)
        >>> vectors = [np.ones((2, 4), "float32"), np.ones((2, 3), "float32")]
        >>> out = fusion(vectors, np.array([[1, 1], [0, 0]], "float32"))
        >>> tuple(out.shape), bool(np.all(np.isfinite(out)))
        ((2, 8), True)

    Reference:
        Velickovic, Cucurull, Casanova, Romero, Lio and Bengio, "Graph Attention Networks",
        ICLR 2018, https://arxiv.org/abs/1710.10903
    """

    def __init__(self, output_dim, node_dim=None, rounds=2, heads=2, merge_heads="concat", residual=True,
                 activation="relu", dropout=0.0, **kwargs):
        super().__init__(output_dim=output_dim, dropout=dropout, **kwargs)
        name = type(self).__name__
        self.node_dim = None if node_dim is None else check_positive_int(name, "node_dim", node_dim)
        self.rounds = check_positive_int(name, "rounds", rounds)
        self.heads = check_positive_int(name, "heads", heads)
        self.merge_heads = check_choice(name, "merge_heads", merge_heads, MERGE_HEADS)
        if not isinstance(residual, bool):
            raise ValueError(f"{name}: `residual` must be True or False; received residual={residual!r}")
        self.residual = residual
        width = self.node_dim or self.output_dim
        if self.merge_heads == "concat" and width % self.heads:
            raise ValueError(
                f"{name}: with merge_heads='concat', `heads` must divide node_dim={width} (each head is "
                f"node_dim // heads wide); received heads={self.heads}"
            )
        self.head_dim = width // self.heads if self.merge_heads == "concat" else width
        self.activation = keras.activations.get(activation)
        policy = self.dtype_policy
        self.projection = ModalityProjection(width, dtype=policy, name="projection")
        self.messages = [
            keras.layers.Dense(self.heads * self.head_dim, use_bias=False, dtype=policy, name=f"message_{r}")
            for r in range(self.rounds)
        ]
        self.readout = keras.layers.Dense(output_dim, activation=self.activation, dtype=policy, name="readout")

    def build_fusion(self, vector_dims, token_dims):
        width = self.node_dim or self.output_dim
        self.projection.build([(None, dim) for dim in vector_dims])
        self.attention_dst, self.attention_src = [], []
        for r, message in enumerate(self.messages):
            message.build((None, len(vector_dims), width))
            for side, weights in (("dst", self.attention_dst), ("src", self.attention_src)):
                weights.append(self.add_weight(
                    name=f"attention_{side}_{r}", shape=(self.heads, self.head_dim), initializer="glorot_uniform"
                ))
        self.readout.build((None, width))

    def attention(self, nodes, present, r):
        """``(batch, heads, M, M)``: round ``r``'s attention of node i (axis 2) to node j (axis 3),
        0 where j is missing; also ``W h`` as ``(batch, M, heads, head_dim)``."""
        dtype = self.compute_dtype
        transformed = ops.reshape(self.messages[r](nodes), (-1, nodes.shape[1], self.heads, self.head_dim))
        dst = ops.einsum("bmkd,kd->bkm", transformed, ops.cast(self.attention_dst[r], dtype))
        src = ops.einsum("bmkd,kd->bkm", transformed, ops.cast(self.attention_src[r], dtype))
        logits = ops.leaky_relu(dst[:, :, :, None] + src[:, :, None, :], negative_slope=NEGATIVE_SLOPE)
        neighbours = ops.broadcast_to(present[:, None, None, :], ops.shape(logits))
        return masked_softmax(logits, neighbours, axis=-1), transformed

    def fuse(self, vectors, present, tokens, token_masks, training):
        keep = ops.expand_dims(present, -1)
        nodes = ops.stack(self.projection(vectors, self.modality_masks(present)), axis=1)
        for r in range(self.rounds):
            alpha, transformed = self.attention(nodes, present, r)
            message = ops.einsum("bkij,bjkd->bikd", alpha, transformed)
            if self.merge_heads == "concat":
                message = ops.reshape(ops.elu(message), (-1, nodes.shape[1], self.heads * self.head_dim))
            else:
                message = ops.elu(ops.mean(message, axis=2))
            # Removed nodes stay exact zeros, so they send nothing in the next round.
            nodes = masked_select(keep, nodes + message if self.residual else message)
        count = ops.sum(ops.cast(present, nodes.dtype), axis=1, keepdims=True)
        pooled = ops.sum(nodes, axis=1) / ops.maximum(count, ops.cast(1.0, nodes.dtype))
        return self.readout(pooled)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "node_dim": self.node_dim,
                "rounds": self.rounds,
                "heads": self.heads,
                "merge_heads": self.merge_heads,
                "residual": self.residual,
                "activation": keras.activations.serialize(self.activation),
            }
        )
        return config
