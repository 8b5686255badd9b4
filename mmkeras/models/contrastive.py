"""Contrastive losses (SigLIP, CLIP) and ``ContrastiveModel``, which trains towers on paired modalities.

Each row of a batch is a pair when both of its columns are present: its two embeddings are the
positive, every other pair's embedding in the batch is a negative. Rows that lack either column
take no part in that pair's loss (as query, positive or negative).

* SigLIP (Zhai et al. 2023, "Sigmoid Loss for Language Image Pre-Training"): every (i, j) is a
  binary problem, ``logits = exp(t) * a @ b.T + bias``; the loss is ``-sum log sigmoid(z_ij *
  logits_ij) / n`` with ``z = +1`` on the diagonal, ``-1`` elsewhere, ``n`` the pairs. Learned
  ``t`` (init log 10) and ``bias`` (init -10), as in the paper.
* CLIP (Radford et al. 2021): symmetric InfoNCE, ``logits = exp(t) * a @ b.T`` with ``t`` learned
  (init log(1 / 0.07), capped at log 100), the mean of the row-wise and column-wise cross entropies.

Embeddings are expected L2-normalised (``mmkeras.models.towers``); losses are computed in float32.

Example:
    >>> import numpy as np
    >>> a = np.eye(3, 4, dtype="float32"); present = np.ones(3, "float32")
    >>> float(clip_loss(a, a, present, np.log(100.0))) < 1e-3      # aligned pairs: ~0 loss
    True
    >>> float(siglip_loss(a, a[::-1], present, 0.0, 0.0)) > float(siglip_loss(a, a, present, 0.0, 0.0))
    True
"""

from __future__ import annotations

import math

import keras
from keras import ops

from mmkeras.data.schema import PRESENCE_SUFFIX
from mmkeras.models.towers import tower_inputs

LOSSES = ("siglip", "clip")
SIGLIP_INIT = {"log_scale": math.log(10.0), "bias": -10.0}
CLIP_INIT = {"log_scale": math.log(1 / 0.07)}
CLIP_MAX_LOG_SCALE = math.log(100.0)
_MASKED = -1e9


def _pairs(a, b, present):
    a, b = ops.cast(a, "float32"), ops.cast(b, "float32")
    present = ops.cast(present, "float32")
    return ops.matmul(a, ops.transpose(b)), present, ops.maximum(ops.sum(present), 1.0)


def siglip_loss(a, b, present, log_scale, bias):
    """SigLIP loss of embeddings ``a``, ``b`` ``(n, d)`` over the rows where ``present`` ``(n,)`` is 1."""
    similarity, present, count = _pairs(a, b, present)
    logits = similarity * ops.exp(ops.cast(log_scale, "float32")) + ops.cast(bias, "float32")
    signs = 2.0 * ops.eye(ops.shape(similarity)[0], dtype="float32") - 1.0
    mask = present[:, None] * present[None, :]
    return -ops.sum(mask * ops.log_sigmoid(signs * logits)) / count


def clip_loss(a, b, present, log_scale):
    """CLIP (symmetric InfoNCE) loss of ``a``, ``b`` ``(n, d)`` over the rows where ``present`` is 1."""
    similarity, present, count = _pairs(a, b, present)
    scale = ops.exp(ops.minimum(ops.cast(log_scale, "float32"), CLIP_MAX_LOG_SCALE))
    logits = similarity * scale
    diagonal = ops.diagonal(logits)
    absent = (1.0 - present) * _MASKED
    rows = ops.logsumexp(logits + absent[None, :], axis=1) - diagonal
    columns = ops.logsumexp(logits + absent[:, None], axis=0) - diagonal
    return 0.5 * (ops.sum(present * rows) + ops.sum(present * columns)) / count


def pair_name(pair) -> str:
    """``"image-text"`` for the pair ``("image", "text")``."""
    return "-".join(pair)


class ContrastiveModel(keras.Model):
    """Towers (``{column: embedding}``) trained with a contrastive loss on every pair in ``pairs``.

    Args:
        towers: a model taking the pipeline's features and returning ``{column: (batch, d)}``
            L2-normalised embeddings.
        pairs: ``[(column_a, column_b), ...]``; the loss is their mean.
        loss: ``"siglip"`` or ``"clip"``.
        global_batch: optional ``fn(embeddings, presence) -> (embeddings, presence, weight)`` that
            gathers the other replicas' rows (negatives across the global batch) and returns the
            weight that turns the gathered loss into this replica's share (``1 / replicas``).

    Call arguments:
        inputs: the feature dict (``column`` and ``column_present`` per column); labels are ignored.

    Example:
        >>> import numpy as np
        >>> inputs = {c: keras.Input((4,), name=c) for c in ("a", "b")}
        >>> towers = keras.Model(inputs, {c: keras.layers.UnitNormalization()(keras.layers.Dense(3)(x))
        ...                               for c, x in inputs.items()})
        >>> model = ContrastiveModel(towers, [("a", "b")], loss="clip")
        >>> model.compile(optimizer="adam")
        >>> x = {"a": np.eye(4, dtype="float32"), "b": np.eye(4, dtype="float32"),
        ...      "a_present": np.ones(4, "float32"), "b_present": np.ones(4, "float32")}
        >>> model.evaluate(x, verbose=0) > 0
        True
    """

    def __init__(self, towers, pairs, loss: str = "siglip", global_batch=None, **kwargs):
        super().__init__(**kwargs)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}; got {loss!r}")
        if not pairs:
            raise ValueError("pairs is empty: name at least one pair of columns")
        self.towers = towers
        self.pairs = [tuple(pair) for pair in pairs]
        self.loss_name = loss
        self.global_batch = global_batch
        init = SIGLIP_INIT if loss == "siglip" else CLIP_INIT
        self.log_scales = [self.add_weight(shape=(), initializer=keras.initializers.Constant(init["log_scale"]),
                                           name=f"log_scale_{pair_name(p)}") for p in self.pairs]
        self.biases = [self.add_weight(shape=(), initializer=keras.initializers.Constant(init["bias"]),
                                       name=f"bias_{pair_name(p)}") for p in self.pairs] if loss == "siglip" else []

    def call(self, inputs, training=False):
        return self.towers(tower_inputs(self.towers, inputs), training=training)

    def pair_losses(self, embeddings: dict, presence: dict) -> list:
        """The loss of each pair (in ``pairs`` order) on one batch."""
        losses = []
        for index, (a, b) in enumerate(self.pairs):
            present = presence[a] * presence[b]
            if self.loss_name == "siglip":
                losses.append(siglip_loss(embeddings[a], embeddings[b], present, self.log_scales[index],
                                          self.biases[index]))
            else:
                losses.append(clip_loss(embeddings[a], embeddings[b], present, self.log_scales[index]))
        return losses

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        columns = sorted({c for pair in self.pairs for c in pair})
        presence = {c: ops.cast(x[c + PRESENCE_SUFFIX], "float32") for c in columns}
        embeddings = {c: ops.cast(y_pred[c], "float32") for c in columns}
        weight = 1.0
        if self.global_batch is not None:
            embeddings, presence, weight = self.global_batch(embeddings, presence)
        loss = ops.mean(ops.stack(self.pair_losses(embeddings, presence))) * weight
        regularization = self.losses
        return loss + ops.sum(ops.stack(regularization)) if regularization else loss

    def temperatures(self) -> dict:
        """``{pair: {"scale": exp(t), "bias": b}}`` as learned (bias for SigLIP only)."""
        out = {}
        for index, pair in enumerate(self.pairs):
            log_scale = float(keras.ops.convert_to_numpy(self.log_scales[index]))
            if self.loss_name == "clip":
                log_scale = min(log_scale, CLIP_MAX_LOG_SCALE)
            out[pair_name(pair)] = {"scale": round(math.exp(log_scale), 4)}
            if self.biases:
                out[pair_name(pair)]["bias"] = round(float(keras.ops.convert_to_numpy(self.biases[index])), 4)
        return out
