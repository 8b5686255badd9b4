"""Audio signal processing (pure TF): resample, cut/pad, front ends, SpecAugment masks.

Resampling is band-limited, done in the FFT domain (the spectrum is truncated or zero-padded), so a
tone keeps its frequency and amplitude. ``fix_length`` cuts a random window when training and the
centre otherwise, and pads short clips at the end. ``frontend`` computes ``waveform``
(``[samples, 1]``), ``stft`` magnitudes, ``logmel`` or ``mfcc`` frames with ``tf.signal``, for one
waveform or a batch ``[B, samples]`` (the pipeline runs it on whole batches); ``spec_augment_mask``
draws SpecAugment's random time and frequency bands per example.

Example:
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> feature = SimpleNamespace(sample_rate=8000, duration=1.0, frontend="logmel", frame_length=256,
    ...                           frame_step=128, fft_length=256, num_mel_bins=40, num_mfcc=13)
    >>> tone = tf.constant(np.sin(np.arange(16000) * 0.1), tf.float32)
    >>> waveform = resample(tone, 16000, 8000)
    >>> waveform.shape, frontend(fix_length(waveform, feature), feature).shape, feature_shape(feature)
    (TensorShape([8000]), TensorShape([61, 40]), (61, 40))
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

LOG_OFFSET = 1e-6
SPEC_AUGMENT_KEYS = ("time_masks", "time_mask_width", "freq_masks", "freq_mask_width")


def num_samples(feature) -> int:
    return int(round(feature.duration * feature.sample_rate))


def num_frames(feature) -> int:
    return 1 + (num_samples(feature) - feature.frame_length) // feature.frame_step


def num_bins(feature) -> int:
    """Feature size per frame (1 for the waveform front end)."""
    return {
        "waveform": 1,
        "stft": feature.fft_length // 2 + 1,
        "logmel": feature.num_mel_bins,
        "mfcc": feature.num_mfcc,
    }[feature.frontend]


def feature_shape(feature) -> tuple:
    """Per-example shape of the front end's output."""
    if feature.frontend == "waveform":
        return (num_samples(feature), 1)
    return (num_frames(feature), num_bins(feature))


def check_feature(feature, where: str) -> None:
    """Fail on settings that cannot produce frames, naming the config key."""
    if feature.sample_rate <= 0 or feature.duration <= 0:
        raise ValueError(f"{where}: sample_rate and duration must be > 0, got "
                         f"{feature.sample_rate} and {feature.duration}")
    if feature.frontend != "waveform":
        if feature.fft_length < feature.frame_length:
            raise ValueError(f"{where}.fft_length={feature.fft_length} must be >= frame_length={feature.frame_length}")
        if num_samples(feature) < feature.frame_length:
            raise ValueError(f"{where}: duration {feature.duration}s at {feature.sample_rate} Hz is shorter "
                             f"than one frame ({feature.frame_length} samples)")
        if feature.frontend == "mfcc" and feature.num_mfcc > feature.num_mel_bins:
            raise ValueError(f"{where}.num_mfcc={feature.num_mfcc} must be <= num_mel_bins={feature.num_mel_bins}")
    settings = feature.spec_augment
    if not isinstance(settings, dict):
        raise ValueError(f"{where}.spec_augment must be a mapping with keys {', '.join(SPEC_AUGMENT_KEYS)}")
    for key, value in settings.items():
        if key not in SPEC_AUGMENT_KEYS:
            raise ValueError(f"unknown key {where}.spec_augment.{key}; valid keys: {', '.join(SPEC_AUGMENT_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where}.spec_augment.{key}={value!r} is not valid; expected an integer >= 0")
    if settings and feature.frontend == "waveform":
        raise ValueError(f"{where}.spec_augment needs a spectral front end (stft, logmel, mfcc), not 'waveform'")


def resample(waveform: tf.Tensor, rate_in: tf.Tensor, rate_out: int) -> tf.Tensor:
    """Band-limited resampling of a 1-D float waveform by truncating / zero-padding its spectrum."""
    rate_in = tf.cast(rate_in, tf.int64)
    n = tf.shape(waveform, out_type=tf.int64)[0]

    def fft_resample():
        m = (n * rate_out + rate_in // 2) // rate_in  # round(n * rate_out / rate_in)
        spectrum = tf.signal.rfft(waveform, fft_length=tf.cast(n, tf.int32)[None])
        # irfft crops or zero-pads the spectrum to m // 2 + 1 bins: that is the band limit.
        out = tf.signal.irfft(spectrum, fft_length=tf.cast(m, tf.int32)[None])
        return out * tf.cast(m, tf.float32) / tf.cast(n, tf.float32)

    return tf.cond(tf.logical_or(tf.equal(rate_in, rate_out), tf.equal(n, 0)),
                   lambda: tf.identity(waveform), fft_resample)


def fix_length(waveform: tf.Tensor, feature, training: bool = False,
               seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Cut to ``duration`` (random window when training with a ``seed``, else the centre); pad at the end."""
    length = num_samples(feature)
    excess = tf.maximum(tf.shape(waveform)[0] - length, 0)
    if training and seed is not None:
        start = tf.random.stateless_uniform([], seed, 0, excess + 1, dtype=tf.int32)
    else:
        start = excess // 2
    waveform = waveform[start : start + length]
    waveform = tf.pad(waveform, [[0, length - tf.shape(waveform)[0]]])
    return tf.ensure_shape(waveform, [length])


def frontend(waveform: tf.Tensor, feature) -> tf.Tensor:
    """Fixed-length waveform(s) ``[..., samples]`` -> features of ``feature_shape`` (before normalization)."""
    if feature.frontend == "waveform":
        return waveform[..., None]
    stft = tf.signal.stft(waveform, feature.frame_length, feature.frame_step, feature.fft_length,
                          window_fn=tf.signal.hann_window, pad_end=False)
    magnitude = tf.abs(stft)
    if feature.frontend == "stft":
        return magnitude
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(
        feature.num_mel_bins, feature.fft_length // 2 + 1, feature.sample_rate,
        lower_edge_hertz=20.0, upper_edge_hertz=feature.sample_rate / 2.0,
    )
    log_mel = tf.math.log(tf.tensordot(magnitude, mel_matrix, 1) + LOG_OFFSET)
    if feature.frontend == "logmel":
        return log_mel
    return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., : feature.num_mfcc]


def _band_mask(size: int, count: int, max_width: int, seed: tf.Tensor) -> tf.Tensor:
    """Boolean ``[size]``: True inside ``count`` random bands of width 0..``max_width``."""
    if count == 0 or max_width == 0:
        return tf.zeros([size], tf.bool)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    widths = tf.random.stateless_uniform([count], seeds[0], 0, min(max_width, size) + 1, dtype=tf.int32)
    fraction = tf.random.stateless_uniform([count], seeds[1])
    starts = tf.cast(fraction * tf.cast(size - widths + 1, tf.float32), tf.int32)
    positions = tf.range(size)[None, :]
    inside = (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])
    return tf.reduce_any(inside, axis=0)


def spec_augment_mask(shape: tuple, settings: dict, seed: tf.Tensor) -> tf.Tensor:
    """Float ``[frames, bins]``: 0 inside SpecAugment's random time and frequency bands, 1 elsewhere.

    The mask is drawn per example (before ``batch()``) and applied to a batch of features later.
    """
    frames, bins = shape
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    time = _band_mask(frames, settings.get("time_masks", 0), settings.get("time_mask_width", 0), seeds[0])
    freq = _band_mask(bins, settings.get("freq_masks", 0), settings.get("freq_mask_width", 0), seeds[1])
    return tf.cast(tf.logical_not(time[:, None] | freq[None, :]), tf.float32)


def spec_augment(features: tf.Tensor, settings: dict, seed: tf.Tensor) -> tf.Tensor:
    """SpecAugment (Park et al., 2019) time and frequency masking of ``[frames, bins]``; masks are 0."""
    if not settings:
        return features
    return features * tf.cast(spec_augment_mask(features.shape, settings, seed), features.dtype)
