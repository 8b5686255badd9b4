"""``Fusion``: the base class every fusion layer derives from; it owns the call contract.

The contract itself is written in the ``mmkeras.layers`` package docstring. This class checks
the inputs against it, turns ``presence`` into a boolean mask, casts the output to float32 and
answers ``compute_output_shape`` / ``compute_output_spec`` without running the layer.
"""

from __future__ import annotations

import keras
from keras import ops

from mmkeras.layers._validation import check_positive_int, check_rate, masked_select

MAX_MODALITIES = 3


class Fusion(keras.layers.Layer):
    """Base class of the fusion layers: ``(vectors, presence[, tokens, token_masks]) -> (batch, output_dim)``.

    Subclasses implement ``build_fusion(vector_dims, token_dims)`` (create weights) and
    ``fuse(vectors, present, tokens, token_masks, training)`` (compute, in the compute dtype),
    where ``present`` is a boolean ``(batch, M)`` tensor.

    Args:
        output_dim: int > 0, width of the fused vector.
        dropout: float in [0, 1), dropout rate applied to the fused vector during training.
        **kwargs: standard ``keras.layers.Layer`` arguments (``name``, ``dtype``, ...).
    """

    #: True when the layer reads ``tokens``; the model factory then passes token sequences.
    uses_tokens = False
    #: True when the output is class logits (``(batch, num_classes)``), not a fused vector.
    outputs_logits = False

    def __init__(self, output_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.output_dim = check_positive_int(name, "output_dim", output_dim)
        self.dropout = check_rate(name, "dropout", dropout)
        self.num_modalities = None
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="output_dropout")

    # ------------------------------------------------------------------ contract checks
    def _check_shapes(self, vectors_shape, presence_shape, tokens_shape, token_masks_shape):
        name = type(self).__name__
        if not isinstance(vectors_shape, (list, tuple)) or not vectors_shape or not isinstance(
            vectors_shape[0], (list, tuple)
        ):
            raise ValueError(
                f"{name}: `vectors` must be a list of 1 to {MAX_MODALITIES} tensors of shape "
                f"(batch, dim); received shapes {vectors_shape!r}"
            )
        vectors_shape = [tuple(s) for s in vectors_shape]
        if len(vectors_shape) > MAX_MODALITIES:
            raise ValueError(
                f"{name}: at most {MAX_MODALITIES} modalities are supported; received {len(vectors_shape)}"
            )
        for m, shape in enumerate(vectors_shape):
            if len(shape) != 2 or shape[-1] is None:
                raise ValueError(
                    f"{name}: vectors[{m}] must have shape (batch, dim) with a known dim; received {shape}"
                )
        num_modalities = len(vectors_shape)
        presence_shape = tuple(presence_shape)
        if len(presence_shape) != 2 or presence_shape[-1] not in (None, num_modalities):
            raise ValueError(
                f"{name}: `presence` must have shape (batch, {num_modalities}) for {num_modalities} "
                f"modalities; received {presence_shape}"
            )
        if tokens_shape is not None:
            if len(tokens_shape) != num_modalities:
                raise ValueError(
                    f"{name}: `tokens` must hold one sequence per modality ({num_modalities}); "
                    f"received {len(tokens_shape)}"
                )
            for m, shape in enumerate(tokens_shape):
                if len(shape) != 3 or shape[-1] is None:
                    raise ValueError(
                        f"{name}: tokens[{m}] must have shape (batch, steps, dim); received {tuple(shape)}"
                    )
        if token_masks_shape is not None and tokens_shape is None:
            raise ValueError(f"{name}: `token_masks` were given without `tokens`")
        if token_masks_shape is not None and len(token_masks_shape) != num_modalities:
            raise ValueError(
                f"{name}: `token_masks` must hold one mask per modality ({num_modalities}); "
                f"received {len(token_masks_shape)}"
            )
        return vectors_shape

    # ------------------------------------------------------------------ Keras layer API
    def build(self, vectors_shape, presence_shape, tokens_shape=None, token_masks_shape=None):
        vectors_shape = self._check_shapes(vectors_shape, presence_shape, tokens_shape, token_masks_shape)
        self.num_modalities = len(vectors_shape)
        vector_dims = [shape[-1] for shape in vectors_shape]
        token_dims = [shape[-1] for shape in tokens_shape] if tokens_shape is not None else None
        self.build_fusion(vector_dims, token_dims)
        self.built = True

    def build_fusion(self, vector_dims, token_dims):
        """Create the weights, given each modality's vector (and token) width. Every fusion defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define build_fusion(vector_dims, token_dims)")

    def fuse(self, vectors, present, tokens, token_masks, training):
        """The fused ``(batch, output_dim)`` tensor; ``present`` is the bool presence mask. Every fusion
        defines it."""
        raise NotImplementedError(f"{type(self).__name__} must define fuse(vectors, present, tokens, ...)")

    def call(self, vectors, presence, tokens=None, token_masks=None, training=None):
        vectors = list(vectors)
        if len(vectors) != self.num_modalities:
            raise ValueError(
                f"{type(self).__name__} was built for {self.num_modalities} modalities; "
                f"received {len(vectors)} vectors"
            )
        present = ops.greater(presence, ops.cast(0.5, presence.dtype))
        if tokens is not None:
            tokens = list(tokens)
            if token_masks is None:
                token_masks = [None] * len(tokens)
            token_masks = [
                ops.ones(ops.shape(t)[:2], dtype="bool") if m is None else ops.cast(m, "bool")
                for t, m in zip(tokens, token_masks)
            ]
        fused = self.fuse(vectors, present, tokens, token_masks, training)
        fused = self.output_dropout(fused, training=training)
        return ops.cast(fused, "float32")

    def masked_vectors_and_flags(self, vectors, present):
        """``[v_1, ..., v_M, p]`` with missing vectors selected to zeros: ``(batch, sum(dim_m) + M)``.

        The flags let a layer reading this tell "missing" apart from "present and zero".
        """
        masked = [masked_select(present[:, m : m + 1], v) for m, v in enumerate(vectors)]
        return ops.concatenate(masked + [ops.cast(present, self.compute_dtype)], axis=-1)

    @staticmethod
    def modality_masks(present):
        """``present`` ``(batch, M)`` bool as M ``(batch,)`` masks, the form ``ModalityProjection`` takes."""
        return [present[:, m] for m in range(present.shape[-1])]

    def output_width(self):
        """Size of the last output axis (``output_dim``; ``num_classes`` for logit fusions)."""
        return self.output_dim

    def compute_output_shape(self, vectors_shape, presence_shape, tokens_shape=None, token_masks_shape=None):
        vectors_shape = self._check_shapes(vectors_shape, presence_shape, tokens_shape, token_masks_shape)
        return (vectors_shape[0][0], self.output_width())

    def compute_output_spec(self, vectors, presence, tokens=None, token_masks=None, training=None):
        # Keras would report `compute_dtype` (float16 under mixed precision); the output is float32.
        def shapes(values):
            return None if values is None else [tuple(v.shape) for v in values]

        shape = self.compute_output_shape(
            shapes(vectors), tuple(presence.shape), shapes(tokens), shapes(token_masks)
        )
        return keras.KerasTensor(shape, dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update({"output_dim": self.output_dim, "dropout": self.dropout})
        return config
