import numpy as np
import pytest
import tensorflow as tf

from mmkeras.config import AudioFeature
from mmkeras.data.columns import audio_ops as audio
from mmkeras.data.columns.audio import AudioColumn
from tests.data.conftest import sine, wav_bytes


def _decode(contents: bytes, feature) -> tf.Tensor:
    return AudioColumn("audio", feature).decode(tf.constant(contents))


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_decodes_wav_at_any_rate_to_the_configured_rate(rate):
    waveform = _decode(wav_bytes(sine(440, rate, 0.25), rate), AudioFeature(sample_rate=8000))
    assert waveform.shape == (2000,)
    np.testing.assert_allclose(np.abs(waveform.numpy()).max(), 0.5, atol=0.02)


def test_stereo_is_mixed_to_mono_mean():
    left, right = sine(440, 8000, 0.1, 0.5), np.full(800, 0.25)
    waveform = _decode(wav_bytes(np.stack([left, right], 1), 8000), AudioFeature(sample_rate=8000))
    np.testing.assert_allclose(waveform.numpy(), (left + right) / 2, atol=1e-4)


def test_resampling_16k_to_8k_keeps_a_1khz_sine():
    out = audio.resample(tf.constant(sine(1000, 16000, 1.0, 0.8), tf.float32), 16000, 8000).numpy()
    assert out.shape == (8000,)
    spectrum = np.abs(np.fft.rfft(out))
    assert np.fft.rfftfreq(8000, 1 / 8000)[spectrum.argmax()] == 1000.0
    np.testing.assert_allclose(np.sqrt(2 * np.mean(out ** 2)), 0.8, rtol=0.01)  # amplitude from RMS
    np.testing.assert_allclose(out, sine(1000, 8000, 1.0, 0.8), atol=1e-3)


def test_downsampling_removes_content_above_the_new_nyquist():
    tone = sine(6000, 16000, 1.0, 0.8)  # above 4 kHz, must vanish at 8 kHz
    out = audio.resample(tf.constant(tone, tf.float32), 16000, 8000).numpy()
    assert np.abs(out).max() < 1e-3


@pytest.mark.parametrize("frontend,shape", [
    ("waveform", (8000, 1)), ("stft", (61, 129)), ("logmel", (61, 40)), ("mfcc", (61, 13))])
def test_front_end_shapes(frontend, shape):
    feature = AudioFeature(sample_rate=8000, duration=1.0, frontend=frontend)
    values = audio.frontend(audio.fix_length(tf.random.normal([5000]), feature), feature)
    assert values.shape == shape == audio.feature_shape(feature)


def test_fix_length_pads_short_centres_long_and_crops_randomly_when_training():
    feature = AudioFeature(sample_rate=10, duration=1.0)
    assert audio.fix_length(tf.ones([4]), feature).numpy().tolist() == [1] * 4 + [0] * 6
    long = tf.range(20, dtype=tf.float32)
    assert audio.fix_length(long, feature).numpy().tolist() == list(range(5, 15))
    starts = {int(audio.fix_length(long, feature, True, tf.constant([s, 0], tf.int64))[0]) for s in range(20)}
    assert len(starts) > 3 and min(starts) >= 0 and max(starts) <= 10


def test_spec_augment_masks_bands_with_zeros():
    values = tf.ones([50, 20])
    settings = {"time_masks": 2, "time_mask_width": 5, "freq_masks": 1, "freq_mask_width": 4}
    masked = audio.spec_augment(values, settings, tf.constant([1, 2], tf.int64)).numpy()
    zero_frames = (masked == 0).all(axis=1).sum()
    zero_bins = (masked == 0).all(axis=0).sum()
    assert zero_frames <= 10 and zero_bins <= 4 and (masked == 0).any()
    assert set(np.unique(masked)) <= {0.0, 1.0}


def test_settings_are_checked():
    with pytest.raises(ValueError, match="unknown key data.features.audio.spec_augment.masks"):
        AudioFeature(spec_augment={"masks": 1}).check("data.features.audio")
    with pytest.raises(ValueError, match="shorter than one frame"):
        AudioFeature(duration=0.01).check("data.features.audio")
