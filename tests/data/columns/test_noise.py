"""The corruptions of the robustness curves: their statistics and their determinism."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.data.columns import ImageColumn, ImageFeature
from mmkeras.data.columns.noise import drop_tokens, gaussian_pixels, white_noise_at_snr

SEED = tf.constant([3, 4], tf.int64)


@pytest.mark.parametrize("snr_db", [20.0, 0.0, -10.0])
def test_white_noise_has_the_requested_snr_per_clip(snr_db):
    t = np.linspace(0, 50, 16000, dtype=np.float32)
    waves = tf.constant(np.stack([np.sin(t), 0.1 * np.sin(3 * t)]))
    noisy = white_noise_at_snr(waves, snr_db, SEED).numpy()
    noise_power = ((noisy - waves.numpy()) ** 2).mean(1)
    measured = 10 * np.log10((waves.numpy() ** 2).mean(1) / noise_power)
    np.testing.assert_allclose(measured, snr_db, atol=0.1)
    np.testing.assert_array_equal(noisy, white_noise_at_snr(waves, snr_db, SEED).numpy())  # same seed, same noise
    assert not np.array_equal(noisy, white_noise_at_snr(waves, snr_db, tf.constant([3, 5], tf.int64)).numpy())


def test_gaussian_pixels_has_the_requested_std_and_stays_in_range():
    images = tf.fill([4, 32, 32, 1], 0.5)
    noisy = gaussian_pixels(images, 0.1, SEED).numpy()
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    assert (noisy - 0.5).std() == pytest.approx(0.1, rel=0.05)


def test_token_drop_drops_that_fraction_of_real_tokens_and_never_padding():
    ids = tf.constant(np.r_[np.arange(2, 2002), np.zeros(500)].astype(np.int32)[None])
    dropped = drop_tokens(ids, 0.25, SEED).numpy()[0]
    assert (dropped[:2000] == 0).mean() == pytest.approx(0.25, abs=0.03)
    kept = dropped[:2000] != 0
    np.testing.assert_array_equal(dropped[:2000][kept], np.arange(2, 2002)[kept])
    assert (dropped[2000:] == 0).all()


def test_a_missing_image_stays_missing_under_noise():
    column = ImageColumn("photo", ImageFeature(height=4, width=4))
    batch = {"photo": tf.zeros([2, 4, 4, 1]), "photo_present": tf.constant([1.0, 0.0])}
    noisy = column.add_noise(batch, 0.4, SEED).numpy()
    assert noisy[0].std() > 0.1 and (noisy[1] == 0).all()
