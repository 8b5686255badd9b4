"""Columns preprocessed by a KerasHub preset: the preset's own layers, in tf.data and after a reload."""

import io
import shutil
import wave

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.config import AudioFeature, ImageFeature, TextFeature
from mmkeras.data.columns import PRESET_COLUMNS, build_column


def _feature(cls, preset, **settings):
    feature = cls(**settings)
    feature.preset = preset
    return feature


def _wav(seconds: float, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((np.sin(np.arange(int(seconds * rate)) * 0.2) * 8000).astype("<i2").tobytes())
    return buffer.getvalue()


def test_text_ids_are_the_presets_own_preprocessor_output(tiny_presets):
    import keras_hub

    column = build_column("caption", _feature(TextFeature, tiny_presets["bert"], sequence_length=6))
    assert isinstance(column, PRESET_COLUMNS["text"])
    reference = keras_hub.models.TextClassifierPreprocessor.from_preset(tiny_presets["bert"], sequence_length=6)
    for text in ["one two three", "The cats", ""]:
        expected = reference(tf.constant([text]))["token_ids"][0].numpy().tolist()
        assert column.decode(tf.constant(text)).numpy().tolist() == expected
    assert column.spec.shape == (6,) and column.spec.padding_id == 0 and column.spec.vocab_size == 30


def test_image_pipeline_equals_the_presets_converter(tiny_presets):
    import keras_hub

    column = build_column("photo", _feature(ImageFeature, tiny_presets["vit"]))
    gray = np.random.default_rng(0).integers(0, 255, (28, 40, 1)).astype(np.uint8)
    png = tf.io.encode_png(gray)
    decoded = column.decode(png)
    features = column.featurize({"photo": decoded[None], "photo_present": tf.ones([1])})[0]
    converter = keras_hub.layers.ImageConverter.from_preset(tiny_presets["vit"])
    expected = converter(tf.image.grayscale_to_rgb(tf.cast(gray, tf.float32))[None])[0]
    assert column.spec.shape == (32, 32, 3) and features.shape == (32, 32, 3)
    np.testing.assert_allclose(features.numpy(), expected.numpy(), atol=1e-5)


def test_audio_is_resampled_to_the_converters_rate_and_framed_by_it(tiny_presets):
    import keras_hub

    column = build_column("speech", _feature(AudioFeature, tiny_presets["whisper"], duration=0.5))
    waveform = column.decode(tf.constant(_wav(0.5, 8000)))
    assert waveform.shape == (8000,)  # 0.5 s of 8 kHz audio at the converter's 16 kHz
    prepared = column.prepare(waveform, tf.constant(1.0))
    frames = column.featurize({"speech": prepared["speech"][None], "speech_present": tf.ones([1])})[0]
    converter = keras_hub.layers.AudioConverter.from_preset(tiny_presets["whisper"])
    np.testing.assert_allclose(frames.numpy(), converter(prepared["speech"][None])[0].numpy(), atol=1e-5)
    assert column.spec.shape == (100, 16)


def test_a_reloaded_column_uses_the_runs_copy_not_the_preset(tiny_presets, tmp_path):
    preset = tmp_path / "bert"
    shutil.copytree(tiny_presets["bert"], preset)
    column = build_column("caption", _feature(TextFeature, str(preset), sequence_length=6))
    before = column.decode(tf.constant("seven digits")).numpy().tolist()
    column.save_assets(str(tmp_path / "run" / "caption"))
    shutil.rmtree(preset)  # the original is gone, as a hub download is without network
    reloaded = build_column("caption", _feature(TextFeature, str(preset), sequence_length=6))
    reloaded.load_assets(str(tmp_path / "run" / "caption"))
    assert reloaded.decode(tf.constant("seven digits")).numpy().tolist() == before


def test_an_unresolvable_preset_is_named_with_a_hint(tmp_path):
    column = build_column("caption", _feature(TextFeature, str(tmp_path / "nowhere")))
    with pytest.raises(ValueError, match=r"data\.features\.caption\.preset='.*nowhere' cannot be loaded .*pass a local preset directory"):
        column.spec
