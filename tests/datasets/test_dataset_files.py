"""Tests for mmkeras/datasets/_files.py: PNG, WAV, IDX, CSV helpers and the stratified split."""

import hashlib

import numpy as np
import pytest

from mmkeras.datasets import _files


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3), (5, 7, 4)])
def test_encode_png_round_trips_through_tf_decode_png(tmp_path, shape):
    import tensorflow as tf

    pixels = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    _files.write_png(tmp_path / "x.png", pixels)
    decoded = tf.io.decode_png(tf.io.read_file(str(tmp_path / "x.png")), channels=0).numpy()
    expected = pixels[:, :, None] if pixels.ndim == 2 else pixels
    assert decoded.shape == expected.shape
    np.testing.assert_array_equal(decoded, expected)


def test_encode_png_rejects_non_uint8_and_bad_shapes():
    with pytest.raises(ValueError, match="uint8 pixels, received dtype float32"):
        _files.encode_png(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"received \(2, 2, 2\)"):
        _files.encode_png(np.zeros((2, 2, 2), dtype=np.uint8))


def test_wav_round_trips_and_decodes_with_tf(tmp_path):
    import tensorflow as tf

    samples = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    _files.write_wav(tmp_path / "x.wav", samples, 8000)
    back, rate = _files.read_wav(tmp_path / "x.wav")
    assert rate == 8000
    np.testing.assert_array_equal(back, samples)
    audio, tf_rate = tf.audio.decode_wav(tf.io.read_file(str(tmp_path / "x.wav")))
    assert int(tf_rate) == 8000
    np.testing.assert_allclose(audio.numpy()[:, 0], samples / 32768.0)


def test_write_wav_rejects_float_samples(tmp_path):
    with pytest.raises(ValueError, match="1-D int16 samples, received float64"):
        _files.write_wav(tmp_path / "x.wav", np.zeros(4), 8000)


def test_read_idx_reads_bundled_mnist_with_published_class_counts():
    folder = _files.source_dir("mnist")
    images = _files.read_idx(folder / "t10k-images-idx3-ubyte.gz")
    labels = _files.read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_bundled_mnist_files_are_the_original_bytes():
    folder = _files.source_dir("mnist")
    digest = hashlib.md5((folder / "t10k-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    assert digest == "9fb629c4189551a2d022fa330f9573f3"  # the md5 published with MNIST


@pytest.mark.parametrize(
    "source, licenses",
    [
        ("fsdd", []),
        ("mnist", []),
        ("noto_emoji", ["LICENSE-gemoji.txt", "LICENSE-noto-emoji.txt"]),
        ("speech_commands_mini", ["LICENSE-speech-commands.txt"]),
    ],
)
def test_every_bundled_source_ships_its_source_and_license_files(source, licenses):
    paths = _files.attribution_files(source)
    assert [p.name for p in paths] == ["SOURCE.md", *licenses]
    assert "License" in paths[0].read_text(encoding="utf-8")


def test_stratified_split_is_disjoint_proportional_and_seeded():
    labels = ["a"] * 100 + ["b"] * 40
    split = _files.stratified_split(labels, (0.7, 0.15, 0.15), seed=3)
    positions = [p for name in _files.SPLITS for p in split[name]]
    assert sorted(positions) == list(range(140))
    assert [len(split[name]) for name in _files.SPLITS] == [98, 21, 21]
    assert sum(labels[p] == "b" for p in split["test"]) == 6
    assert split == _files.stratified_split(labels, (0.7, 0.15, 0.15), seed=3)
    assert split != _files.stratified_split(labels, (0.7, 0.15, 0.15), seed=4)


def test_stratified_split_rejects_fractions_not_summing_to_one():
    with pytest.raises(ValueError, match=r"summing to 1, received \(0.5, 0.2, 0.2\)"):
        _files.stratified_split(["a"], (0.5, 0.2, 0.2), seed=0)
