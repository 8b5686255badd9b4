"""``ModalityDropout``: randomly marks present modalities as missing during training."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmkeras")
class ModalityDropout(keras.layers.Layer):
    """Zeroes each presence flag with probability ``rate`` during training, never all of an example's.

    Training on examples whose modalities are randomly hidden teaches the fusion to predict from
    any subset, so the model degrades gracefully when a modality is missing at inference. When
    every present flag of an example would be dropped, one of them, drawn uniformly, is kept
    instead (so no example loses all of its data, and one with a single modality is never
    emptied). Flags that are already 0 stay 0. At inference the layer is the identity.

    Args:
        rate: float in [0, 1), probability of hiding each present modality.
        seed: optional int seed of the random draws.
        **kwargs: standard ``keras.layers.Layer`` arguments.

    Call arguments:
        presence: ``(batch, M)`` float 0/1 flags.
        training: bool; flags are dropped only when True.

    Returns:
        ``(batch, M)`` flags, same dtype as ``presence``.

    Example:
        >>> import numpy as np
        >>> layer = ModalityDropout(rate=0.99, seed=1)
        >>> presence = np.array([[1, 1, 1], [0, 1, 0]], "float32")
        >>> out = np.asarray(layer(presence, training=True))
        >>> out.sum(axis=1).tolist(), out[1].tolist()
        ([1.0, 1.0], [0.0, 1.0, 0.0])
        >>> np.asarray(layer(presence, training=False)).tolist() == presence.tolist()
        True

    Reference:
        Neverova et al., "ModDrop: adaptive multi-modal gesture recognition", TPAMI 2016.
        https://arxiv.org/abs/1501.00102
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise ValueError(f"ModalityDropout: `rate` must be a float in [0, 1); received rate={rate!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"ModalityDropout: `seed` must be an int or None; received seed={seed!r}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, presence, training=None):
        if not training or self.rate == 0.0:
            return presence
        keep = keras.random.uniform(ops.shape(presence), seed=self.seed_generator) >= self.rate
        dropped = ops.where(keep, presence, ops.zeros_like(presence))
        any_left = ops.sum(dropped, axis=-1, keepdims=True) > 0
        scores = keras.random.uniform(ops.shape(presence), seed=self.seed_generator)
        scores = ops.where(presence > 0, scores, ops.full_like(scores, -1.0))
        one_kept = ops.one_hot(ops.argmax(scores, axis=-1), presence.shape[-1], dtype=presence.dtype) * presence
        return ops.where(any_left, dropped, one_kept)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config
