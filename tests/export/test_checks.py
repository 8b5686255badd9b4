"""Bad serving inputs fail with an InvalidArgumentError naming the input, and never crash the process."""

from __future__ import annotations

import dataclasses
import io
import re
import wave

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.config import config_from_dict
from mmkeras.data.pipeline import build_dataset
from mmkeras.data.preprocessor import Preprocessor
from mmkeras.data.validate import validate


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


def test_named_errors_for_each_bad_input(served, real_files):
    png, wav = real_files
    _expect_error(served, r"image_bytes\[2\] is not a PNG/JPEG/GIF/BMP/WebP image",
                  image_bytes=[png, b"", b"not an image"])
    _expect_error(served, r"audio_bytes\[0\] is not a WAV file", audio_bytes=[png])
    _expect_error(served, r"audio_bytes\[1\] has no samples", audio_bytes=[wav, _wav(np.zeros(0))])
    huge = bytearray(png)
    huge[16:24] = (100000).to_bytes(4, "big") * 2
    _expect_error(served, r"image_bytes\[0\] is 100000 x 100000 pixels \(1 frame\), above the limit",
                  image_bytes=[bytes(huge)])
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
    assert _call(served, image_bytes=[png], audio_bytes=[wav])["probabilities"].shape == (1, 4)


def _bad_files(png: bytes) -> dict:
    """Files that once got different verdicts in validate, training and serving: {name: (bytes, column)}."""
    jpeg = tf.io.encode_jpeg(tf.zeros([12, 12, 3], tf.uint8)).numpy()
    return {
        "zero.wav": (_wav(np.zeros(0)), "audio"),
        "cut.jpg": (jpeg[: len(jpeg) // 2] + b"\xff\xd9", "image"),  # truncated, end marker kept
        "cut.png": (png[: len(png) // 2], "image"),
        "junk.wav": (b"RIFF\x10\x00\x00\x00WAVEfmt ", "audio"),
    }


def test_one_file_gets_one_verdict_in_validate_training_and_serving(served, real_files, run3, tmp_path, capfd):
    png, wav = real_files
    preprocessor = Preprocessor.load(str(run3 / "preprocessor"))
    features = {name: dataclasses.asdict(f) for name, f in preprocessor.features.items()}
    lines = ["text,image,audio,label", "one,,,1"]
    for name, (contents, column) in _bad_files(png).items():
        (tmp_path / name).write_bytes(contents)
        lines.append(",".join(["one", name if column == "image" else "", name if column == "audio" else "", "1"]))
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    config = config_from_dict({"data": {"train": "train.csv", "label": "label", "features": features,
                                        "cache": "none", "on_error": "skip"}}, source=str(tmp_path / "config.yaml"))
    bad = validate(config)
    assert [row.path for row in bad] == list(_bad_files(png))
    # Training: the skip policy reports every bad row with the sentence raise would stop with.
    assert len(list(build_dataset(config, "train", preprocessor, training=False, batch_size=1))) == 1
    skipped = capfd.readouterr().err
    for row in bad:
        assert f"skipped train.csv row {row.row}, column {row.column}: '{row.path}' {row.problem} (" in skipped
        serving_name = f"{row.column}_bytes"
        _expect_error(served, re.escape(f"{serving_name}[0] {row.problem}"),
                      **{serving_name: [(tmp_path / row.path).read_bytes()]})


def test_webp_images_are_accepted_everywhere(served, real_files):
    buffer = io.BytesIO()
    from PIL import Image

    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(buffer, format="WEBP")
    outputs = _call(served, image_bytes=[buffer.getvalue()])
    assert outputs["probabilities"].shape == (1, 4)
