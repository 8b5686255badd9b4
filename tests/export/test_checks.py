"""Bad serving inputs fail with an InvalidArgumentError naming the input, and never crash the process."""

from __future__ import annotations

import io
import os
import wave

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.config import AudioFeature, ImageFeature
from mmkeras.export import checks


def _wav(samples: np.ndarray, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def served(export3):
    return tf.saved_model.load(str(export3)).signatures["serving_default"]


@pytest.fixture(scope="module")
def real_files(tiny_data):
    return next((tiny_data / "image").glob("*.png")).read_bytes(), next((tiny_data / "audio").glob("*.wav")).read_bytes()


def _call(served, **given):
    size = len(next(iter(given.values())))
    inputs = {name: [b""] * size for name in ("text", "image_bytes", "audio_bytes")} | given
    return served(**{name: tf.constant(values, tf.string) for name, values in inputs.items()})


def _expect_error(served, match, **given):
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        _call(served, **given)


def test_image_problems_read_headers_only():
    png = tf.io.encode_png(tf.zeros([5, 7, 3], tf.uint8)).numpy()
    jpeg = tf.io.encode_jpeg(tf.zeros([9, 4, 3], tf.uint8)).numpy()
    huge = bytearray(png)
    huge[16:24] = (20000).to_bytes(4, "big") + (30000).to_bytes(4, "big")
    problems = checks.image_problems(tf.constant([png, jpeg, b"", bytes(huge), jpeg[:-2], b"BM" + b"\0" * 10]),
                                     ImageFeature(max_bytes=10**6)).numpy().tolist()
    assert problems == [b"", b"", b"", b"is 20000 x 30000 pixels, above the limit of 40000000 pixels",
                        b"is a truncated or corrupt image", b"is a truncated or corrupt image"]
    assert checks.image_problems(tf.constant([png]), ImageFeature(max_bytes=10)).numpy()[0] == b"is larger than max_bytes=10"


def test_wav_problems_mirror_decode_wav():
    good = _wav(np.arange(100))
    stereo_8bit = bytearray(good)
    stereo_8bit[34:36] = (8).to_bytes(2, "little")
    problems = checks.wav_problems(tf.constant([good, _wav(np.zeros(0)), good[:60], good[:30], b"RIFF", bytes(stereo_8bit)]),
                                   AudioFeature()).numpy().tolist()
    assert problems == [b"", b"has zero samples", b"is truncated (its data chunk needs 200 bytes, 16 are there)",
                        b"is truncated (it ends inside the WAV header)", b"is not a WAV file (no RIFF/WAVE header)",
                        b"is not a 16-bit PCM WAV file"]


def test_named_errors_for_each_bad_input(served, real_files):
    png, wav = real_files
    _expect_error(served, r"image_bytes\[2\] is not a PNG/JPEG/GIF/BMP image",
                  image_bytes=[png, b"", b"not an image"])
    _expect_error(served, r"audio_bytes\[0\] is not a WAV file", audio_bytes=[png])
    _expect_error(served, r"audio_bytes\[1\] has zero samples", audio_bytes=[wav, _wav(np.zeros(0))])
    huge = bytearray(png)
    huge[16:24] = (100000).to_bytes(4, "big") * 2
    _expect_error(served, r"image_bytes\[0\] is 100000 x 100000 pixels, above the limit", image_bytes=[bytes(huge)])
    _expect_error(served, r"text\[0\] is not valid UTF-8", text=[b"\xff\xfe"])
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="inputs have different batch lengths: audio_bytes has 1, image_bytes has 2, text has 1"):
        served(text=tf.constant([""]), image_bytes=tf.constant([png, png]), audio_bytes=tf.constant([wav]))


def test_fuzzed_and_truncated_bytes_raise_named_errors_and_the_process_survives(served, real_files):
    png, wav = real_files
    rng = np.random.default_rng(0)
    junk = [rng.bytes(int(n)) for n in rng.integers(1, 400, size=150)]
    junk += [bytes(png[:n]) for n in np.linspace(1, len(png) - 1, 25).astype(int)]
    junk += [bytes(wav[:n]) for n in np.linspace(1, len(wav) - 2, 25).astype(int)]
    for name in ("image_bytes", "audio_bytes"):
        for value in junk:
            with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{name}\[0\] "):
                _call(served, **{name: [value]})
    assert os.getpid() and _call(served, image_bytes=[png], audio_bytes=[wav])["probabilities"].shape == (1, 4)
