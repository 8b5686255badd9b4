"""``HybridFusion``: an early-fusion classifier and per-modality classifiers, mixed by learned weights."""

from __future__ import annotations

import keras
from keras import ops

from mmkeras import registry
from mmkeras.layers._validation import masked_softmax
from mmkeras.layers.fusion_base import Fusion
from mmkeras.layers.modality_projection import ModalityProjection


@registry.register("fusion", "hybrid")
@keras.saving.register_keras_serializable(package="mmkeras")
class HybridFusion(Fusion):
    """Hybrid fusion: feature-level and decision-level fusion at once, mixed by learned weights.

    Each modality gets a hidden representation ``h_m = activation(W_m v_m)`` (width
    ``output_dim``), shared by two kinds of classifier:

    - the **early** branch fuses the features: ``z = activation(W_e [h_1, ..., h_M, p])`` (the
      missing ``h_m`` selected to zeros, ``p`` the presence flags) and ``logits_0 = C_0 z``;
    - the **per-modality decisions** ``logits_m = C_m h_m``, as in ``LateFusion``.

    The output is ``a_0 logits_0 + sum_m a_m logits_m`` with ``a = softmax(mixture_logits)``
    over the early branch (always present) and the *present* modalities: a missing modality's
    decision drops out and the weights renormalise over the rest. Like ``late``, the output is
    class **logits** (``outputs_logits = True``) and the model factory puts only a softmax after
    it. With every modality missing, only the early branch remains, and it sees zeros and flags 0:
    the logits are a learned prior, ``C_0 activation(b_e) + c_0``.

    Args:
        output_dim: int > 0, width of the per-modality representations and of ``z``.
        num_classes: int > 1, number of classes (width of the output logits).
        activation: activation of ``h_m`` and ``z``. Defaults to ``"relu"``.
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
        >>> fusion = HybridFusion(output_dim=8, num_classes=3)
        >>> vectors = [np.ones((2, 4), "float32"), np.ones((2, 3), "float32")]
        >>> logits = fusion(vectors, np.array([[1, 1], [1, 0]], "float32"))
        >>> weights = fusion.modality_weights(np.array([[True, True], [True, False]]))
        >>> tuple(logits.shape), np.asarray(weights, "float64").round(3).tolist()
        ((2, 3), [[0.333, 0.333, 0.333], [0.5, 0.5, 0.0]])

    Reference:
        Atrey, Hossain, El Saddik and Kankanhalli, "Multimodal fusion for multimedia analysis: a
        survey", Multimedia Systems 16, 2010 (hybrid fusion: feature- and decision-level),
        https://doi.org/10.1007/s00530-010-0182-0
    """

    outputs_logits = True

    def __init__(self, output_dim, num_classes, activation="relu", dropout=0.0, **kwargs):
        super().__init__(output_dim=output_dim, dropout=dropout, **kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"HybridFusion: `num_classes` must be an integer >= 2; received num_classes={num_classes!r}"
            )
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        policy = self.dtype_policy
        self.hidden = ModalityProjection(output_dim, activation=self.activation, dtype=policy, name="hidden")
        self.classifiers = ModalityProjection(num_classes, dtype=policy, name="classifiers")
        self.early = keras.layers.Dense(output_dim, activation=self.activation, dtype=policy, name="early")
        self.early_classifier = keras.layers.Dense(num_classes, dtype=policy, name="early_classifier")

    def build_fusion(self, vector_dims, token_dims):
        num = len(vector_dims)
        self.hidden.build([(None, dim) for dim in vector_dims])
        self.classifiers.build([(None, self.output_dim)] * num)
        self.early.build((None, num * self.output_dim + num))
        self.early_classifier.build((None, self.output_dim))
        # Index 0 is the early branch, 1..M the modalities' decisions.
        self.mixture_logits = self.add_weight(name="mixture_logits", shape=(num + 1,), initializer="zeros")

    def output_width(self):
        return self.num_classes

    def modality_weights(self, present):
        """``(batch, 1 + M)`` mixing weights: the early branch first, then each modality's decision
        (0 where it is missing); a softmax of ``mixture_logits`` over the branches present."""
        present = ops.cast(present, "bool")
        branches = ops.concatenate([ops.ones_like(present[:, :1]), present], axis=-1)
        logits = ops.zeros(ops.shape(branches), dtype=self.compute_dtype)
        logits = logits + ops.cast(self.mixture_logits, self.compute_dtype)
        return masked_softmax(logits, branches, axis=-1)

    def fuse(self, vectors, present, tokens, token_masks, training):
        weights = self.modality_weights(present)
        masks = self.modality_masks(present)
        hidden = self.hidden(vectors, masks)
        # `hidden` is already exact zeros where a modality is missing (ModalityProjection selects it).
        early = self.early(ops.concatenate(hidden + [ops.cast(present, self.compute_dtype)], axis=-1))
        logits = [self.early_classifier(early)] + self.classifiers(hidden, masks)
        return sum(weights[:, k : k + 1] * logit for k, logit in enumerate(logits))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_classes": self.num_classes, "activation": keras.activations.serialize(self.activation)}
        )
        return config
