"""The corruptions robustness curves apply, one per modality, on ``prepare``'s batched output.

Each takes the column's batch of prepared values, a level and a stateless seed (int ``[2]``), and
returns the corrupted values; the same seed gives the same corruption. ``NOISE`` names each one
with its unit and its levels, mild to severe; a column class points at its entry.

Example:
    >>> import tensorflow as tf
    >>> ids = tf.constant([[5, 6, 7, 0]])
    >>> drop_tokens(ids, 1.0, tf.constant([0, 1])).numpy().tolist()   # every real token dropped
    [[0, 0, 0, 0]]
    >>> wave = tf.sin(tf.linspace(0.0, 100.0, 8000))[None]
    >>> noisy = white_noise_at_snr(wave, 0.0, tf.constant([0, 1]))      # noise as loud as the signal
    >>> round(float(tf.reduce_mean((noisy - wave) ** 2) / tf.reduce_mean(wave ** 2)), 1)
    1.0
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import tensorflow as tf


class Noise(NamedTuple):
    """One modality's corruption: what it is, its unit, its levels (mild to severe), the function."""

    name: str
    unit: str
    levels: tuple
    apply: Callable


def gaussian_pixels(images: tf.Tensor, std: float, seed: tf.Tensor) -> tf.Tensor:
    """Images in [0, 1] plus Gaussian noise of standard deviation ``std``, clipped to [0, 1]."""
    noise = tf.random.stateless_normal(tf.shape(images), seed, stddev=std, dtype=images.dtype)
    return tf.clip_by_value(images + noise, 0.0, 1.0)


def white_noise_at_snr(waveforms: tf.Tensor, snr_db: float, seed: tf.Tensor) -> tf.Tensor:
    """Waveforms ``[B, samples]`` plus white noise at ``snr_db`` dB below each clip's own power."""
    power = tf.reduce_mean(tf.square(waveforms), axis=-1, keepdims=True)
    std = tf.sqrt(power / 10.0 ** (snr_db / 10.0))
    return waveforms + std * tf.random.stateless_normal(tf.shape(waveforms), seed, dtype=waveforms.dtype)


def drop_tokens(ids: tf.Tensor, rate: float, seed: tf.Tensor, padding_id: int = 0) -> tf.Tensor:
    """Token ids with each non-padding token replaced by ``padding_id`` with probability ``rate``."""
    dropped = tf.random.stateless_uniform(tf.shape(ids), seed) < rate
    return tf.where(dropped & tf.not_equal(ids, padding_id), tf.cast(padding_id, ids.dtype), ids)


NOISE = {
    "image": Noise("Gaussian pixel noise", "std (pixels in [0, 1])", (0.05, 0.1, 0.2, 0.4, 0.8), gaussian_pixels),
    "audio": Noise("white noise", "SNR (dB)", (30.0, 20.0, 10.0, 0.0, -10.0), white_noise_at_snr),
    "text": Noise("token drop", "fraction of tokens dropped", (0.1, 0.25, 0.5, 0.75, 1.0), drop_tokens),
}
