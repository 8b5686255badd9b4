"""``LateFusion``: per-modality classifiers whose logits are mixed by presence-renormalized weights."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras import registry
from mmkeras.layers._validation import masked_softmax
from mmkeras.layers.fusion_base import Fusion
from mmkeras.layers.modality_projection import ModalityProjection


@registry.register("fusion", "late")
@keras.saving.register_keras_serializable(package="mmkeras")
class LateFusion(Fusion):
    """Late (decision-level) fusion: one classifier per modality, logits mixed by learned weights.

    Modality ``m`` has its own head ``logits_m = W2_m activation(W1_m v_m)`` (hidden width
    ``output_dim``); the output is ``sum_m a_m logits_m`` with ``a = softmax(modality_logits)``
    taken over the present modalities. The output is class **logits** (``outputs_logits = True``):
    the model factory puts only a softmax after it. With all modalities missing the logits are
    zeros (a uniform prediction).

    Args:
        output_dim: int > 0, hidden width of each per-modality head.
        num_classes: int > 1, number of classes (width of the output logits).
        activation: activation of the heads' hidden layers. Defaults to ``"relu"``.
        dropout: float in [0, 1), dropout on the output logits. Defaults to ``0.0``.
        **kwargs: standard ``keras.layers.Layer`` arguments.

    Call arguments:
        vectors: list of M tensors ``(batch, dim_m)``.
        presence: ``(batch, M)`` float tensor of 0/1 flags (1 = present).
        tokens: ignored.
        token_masks: ignored.
        training: bool, whether dropout is active.

    Returns:
        ``(batch, num_classes)`` float32 logits.

    Example:
        >>> import numpy as np
        >>> fusion = LateFusion(output_dim=8, num_classes=3)
        >>> vectors = [np.ones((2, 4), "float32"), np.ones((2, 3), "float32")]
        >>> logits = fusion(vectors, np.array([[1, 1], [0, 0]], "float32"))
        >>> tuple(logits.shape), float(np.abs(logits[1]).max())
        ((2, 3), 0.0)

    Reference:
        Snoek, Worring and Smeulders, "Early versus Late Fusion in Semantic Video Analysis",
        ACM Multimedia 2005, https://doi.org/10.1145/1101149.1101236
    """

    outputs_logits = True

    def __init__(self, output_dim, num_classes, activation="relu", dropout=0.0, **kwargs):
        super().__init__(output_dim=output_dim, dropout=dropout, **kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"LateFusion: `num_classes` must be an integer >= 2; received num_classes={num_classes!r}")
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        policy = self.dtype_policy
        self.hidden = ModalityProjection(output_dim, activation=self.activation, dtype=policy, name="hidden")
        self.classifiers = ModalityProjection(num_classes, dtype=policy, name="classifiers")

    def build_fusion(self, vector_dims, token_dims):
        self.hidden.build([(None, dim) for dim in vector_dims])
        self.classifiers.build([(None, self.output_dim)] * len(vector_dims))
        self.modality_logits = self.add_weight(
            name="modality_logits", shape=(len(vector_dims),), initializer="zeros"
        )

    def output_width(self):
        return self.num_classes

    def modality_weights(self, present):
        """``(batch, M)`` mixing weights: softmax of the logits over the present modalities."""
        logits = ops.zeros(ops.shape(present), dtype=self.compute_dtype)
        logits = logits + ops.cast(self.modality_logits, self.compute_dtype)
        return masked_softmax(logits, present, axis=-1)

    def fuse(self, vectors, present, tokens, token_masks, training):
        weights = self.modality_weights(present)
        masks = self.modality_masks(present)
        logits = self.classifiers(self.hidden(vectors, masks), masks)
        return sum(weights[:, m : m + 1] * logit for m, logit in enumerate(logits))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_classes": self.num_classes, "activation": keras.activations.serialize(self.activation)}
        )
        return config
