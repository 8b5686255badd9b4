"""``TransformerBlock``: one pre- or post-norm transformer block, self- or cross-attention."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras.layers._validation import check_positive_int, check_rate


@keras.saving.register_keras_serializable(package="mmkeras")
class TransformerBlock(keras.layers.Layer):
    """Multi-head attention then a feed-forward network, each with dropout and a residual.

    Post-norm (``normalize_first=False``, Vaswani et al.)::

        x = LN(x + Dropout(MHA(x, c)))        x = LN(x + Dropout(FFN(x)))

    Pre-norm (``normalize_first=True``, Xiong et al.; trains without warm-up)::

        x = x + Dropout(MHA(LN(x), LN_c(c)))  x = x + Dropout(FFN(LN(x)))

    ``FFN(x) = W_2 activation(W_1 x)``. Without ``context`` the block is self-attention
    (``c = x``); with it, cross-attention: queries from ``inputs``, keys and values from
    ``context``, which pre-norm normalizes with its own ``LN_c``. ``key_padding_mask`` hides keys;
    queries are all computed (pool them with their own mask). A query with no visible key gets a
    finite, meaningless output, so callers give every query one key that is always visible.

    Without ``context`` this is exactly ``keras_hub.layers.TransformerEncoder`` (same sublayers,
    same defaults; the tests check equal outputs with copied weights), and ``SelfAttentionFusion``
    uses KerasHub's layer. This block is kept where KerasHub's does not fit:

    - cross-attention (``CrossAttentionFusion``): KerasHub's encoder has none; its
      ``TransformerDecoder`` does, but always adds a self-attention sublayer before it and reads
      the context unnormalized, which is a different block;
    - a Functional model (the ``transformer`` text encoder): there KerasHub's encoder must be
      called without ``return_attention_scores`` (its ``compute_output_shape`` answers one shape
      for the pair), and then its attention runs ``ops.dot_product_attention``, which fails on
      JAX under ``mixed_float16`` on CPU (XLA:CPU rejects float16 with float32 accumulation) when
      dropout is 0. This block always takes the explicit-scores path.

    Args:
        num_heads: int > 0, attention heads, each ``width // num_heads`` wide (``width`` is the
            last axis of ``inputs``, at least ``num_heads``).
        intermediate_dim: int > 0, hidden width of the feed-forward network.
        dropout: float in [0, 1), dropout on the attention weights and on both residual
            branches. Defaults to ``0.0``.
        activation: activation of the feed-forward network. Defaults to ``"relu"``.
        layer_norm_epsilon: float > 0 of every layer norm. Defaults to ``1e-5``.
        normalize_first: pre-norm when True, post-norm when False. Defaults to ``False``.
        **kwargs: standard ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: ``(batch, steps, width)`` queries (and keys and values without ``context``).
        context: optional ``(batch, context_steps, context_width)`` keys and values. A block
            built with a context must always be called with one, and one built without never.
        key_padding_mask: optional ``(batch, key_steps)`` bool, True for keys that may be
            attended (``key_steps`` is ``context_steps`` with a context, else ``steps``).
        training: bool, whether dropout is active.

    Returns:
        ``(batch, steps, width)`` tensor in the compute dtype.

    Example:
        >>> import numpy as np
        >>> block = TransformerBlock(num_heads=2, intermediate_dim=16, normalize_first=True)
        >>> x, context = np.ones((2, 3, 8), "float32"), np.ones((2, 5, 4), "float32")
        >>> mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
        >>> tuple(block(x, context, key_padding_mask=mask).shape)
        (2, 3, 8)

    Reference:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017,
        https://arxiv.org/abs/1706.03762; Xiong et al., "On Layer Normalization in the
        Transformer Architecture", ICML 2020 (pre-norm), https://arxiv.org/abs/2002.04745
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.0,
        activation="relu",
        layer_norm_epsilon=1e-5,
        normalize_first=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.num_heads = check_positive_int(name, "num_heads", num_heads)
        self.intermediate_dim = check_positive_int(name, "intermediate_dim", intermediate_dim)
        self.dropout = check_rate(name, "dropout", dropout)
        self.activation = keras.activations.get(activation)
        if isinstance(layer_norm_epsilon, bool) or not isinstance(layer_norm_epsilon, (int, float)) or (
            layer_norm_epsilon <= 0
        ):
            raise ValueError(
                f"{name}: `layer_norm_epsilon` must be a float > 0; received layer_norm_epsilon={layer_norm_epsilon!r}"
            )
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        if not isinstance(normalize_first, bool):
            raise ValueError(f"{name}: `normalize_first` must be True or False; received {normalize_first!r}")
        self.normalize_first = normalize_first
        self.cross_attention = None

    def _norm(self, name, shape):
        norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name)
        norm.build(shape)
        return norm

    def _check_shapes(self, inputs_shape, context_shape):
        name = type(self).__name__
        if len(inputs_shape) != 3 or inputs_shape[-1] is None:
            raise ValueError(f"{name}: `inputs` must be (batch, steps, width) with a known width; received {inputs_shape}")
        if inputs_shape[-1] < self.num_heads:
            raise ValueError(
                f"{name}: the width of `inputs` ({inputs_shape[-1]}) must be at least num_heads={self.num_heads}"
            )
        if context_shape is not None and (len(context_shape) != 3 or context_shape[-1] is None):
            raise ValueError(
                f"{name}: `context` must be (batch, context_steps, width) with a known width; received {context_shape}"
            )

    def build(self, inputs_shape, context_shape=None, key_padding_mask_shape=None):
        inputs_shape = tuple(inputs_shape)
        context_shape = None if context_shape is None else tuple(context_shape)
        self._check_shapes(inputs_shape, context_shape)
        width = inputs_shape[-1]
        self.cross_attention = context_shape is not None
        keys_shape = context_shape if self.cross_attention else inputs_shape
        policy = self.dtype_policy
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, width // self.num_heads, dropout=self.dropout, dtype=policy, name="attention"
        )
        self.attention.build(inputs_shape, keys_shape)
        self.attention_norm = self._norm("attention_norm", inputs_shape)
        # Post-norm reads the context as given (already normalized where it comes from a block).
        self.context_norm = (
            self._norm("context_norm", context_shape) if self.cross_attention and self.normalize_first else None
        )
        self.attention_dropout = keras.layers.Dropout(self.dropout, dtype=policy, name="attention_dropout")
        self.ffn_norm = self._norm("ffn_norm", inputs_shape)
        self.ffn_in = keras.layers.Dense(
            self.intermediate_dim, activation=self.activation, dtype=policy, name="ffn_in"
        )
        self.ffn_in.build(inputs_shape)
        self.ffn_out = keras.layers.Dense(width, dtype=policy, name="ffn_out")
        self.ffn_out.build(inputs_shape[:-1] + (self.intermediate_dim,))
        self.ffn_dropout = keras.layers.Dropout(self.dropout, dtype=policy, name="ffn_dropout")
        self.built = True

    def call(self, inputs, context=None, key_padding_mask=None, training=None):
        if (context is not None) != self.cross_attention:
            built_for = "with a `context` (cross-attention)" if self.cross_attention else "without a `context`"
            raise ValueError(f"{type(self).__name__} {self.name!r} was built {built_for}; call it the same way")
        attention_mask = None
        if key_padding_mask is not None:
            attention_mask = ops.expand_dims(ops.cast(key_padding_mask, "bool"), 1)
        x = inputs
        h = self.attention_norm(x) if self.normalize_first else x
        if context is None:
            keys = h
        else:
            keys = self.context_norm(context) if self.normalize_first else context
        # Asking for the scores keeps MHA off `ops.dot_product_attention`, whose JAX version
        # requests float32 accumulation that XLA:CPU rejects for float16 inputs.
        h, _ = self.attention(h, keys, attention_mask=attention_mask, return_attention_scores=True, training=training)
        x = x + self.attention_dropout(h, training=training)
        if not self.normalize_first:
            x = self.attention_norm(x)
        h = self.ffn_norm(x) if self.normalize_first else x
        h = self.ffn_out(self.ffn_in(h))
        x = x + self.ffn_dropout(h, training=training)
        if not self.normalize_first:
            x = self.ffn_norm(x)
        return x

    def compute_output_shape(self, inputs_shape, context_shape=None, key_padding_mask_shape=None):
        inputs_shape = tuple(inputs_shape)
        self._check_shapes(inputs_shape, None if context_shape is None else tuple(context_shape))
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "normalize_first": self.normalize_first,
            }
        )
        return config
