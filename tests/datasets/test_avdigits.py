"""Tests for mmkeras/datasets/avdigits.py: FSDD recordings paired with MNIST images."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmkeras import datasets
from mmkeras.datasets import _files, avdigits

SPLITS = _files.SPLITS


def _rows(folder):
    return {split: _files.read_csv(folder / f"{split}.csv") for split in SPLITS}


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return datasets.prepare("avdigits", tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def holdout(tmp_path_factory):
    return datasets.prepare("avdigits", tmp_path_factory.mktemp("holdout"), holdout_speakers=["theo"])


@pytest.fixture(scope="module")
def hard(tmp_path_factory):
    return datasets.prepare("avdigits", tmp_path_factory.mktemp("hard"), hard=True, snr_db=5.0)


def test_official_split_counts_and_fsdd_indices(plain):
    rows = _rows(plain)
    assert {split: len(rows[split]) for split in SPLITS} == {"train": 2400, "validation": 300, "test": 300}
    assert {int(r["fsdd_index"]) for r in rows["test"]} == set(range(0, 5))
    assert {int(r["fsdd_index"]) for r in rows["validation"]} == set(range(5, 10))
    assert {int(r["fsdd_index"]) for r in rows["train"]} == set(range(10, 50))
    for split, per_digit in [("train", 240), ("validation", 30), ("test", 30)]:
        assert np.bincount([int(r["label"]) for r in rows[split]]).tolist() == [per_digit] * 10
    assert list(rows["train"][0]) == ["image", "audio", "label", "speaker", "fsdd_index", "mnist_index"]


@pytest.mark.parametrize("column", ["image", "audio"])
def test_no_image_or_recording_is_shared_between_splits(plain, column):
    seen = [{r[column] for r in rows} for rows in _rows(plain).values()]
    assert sum(len(s) for s in seen) == 3000 == len(set().union(*seen))


def test_images_are_the_mnist_pixels_of_the_recordings_digit(plain):
    mnist_images, mnist_labels = avdigits.load_mnist()
    for rows in _rows(plain).values():
        for row in rows:
            index = int(row["mnist_index"])
            pixels = np.array(Image.open(plain / row["image"]))
            np.testing.assert_array_equal(pixels, mnist_images[index], err_msg=row["image"])
            assert str(mnist_labels[index]) == row["label"] == Path(row["audio"]).name.split("_")[0]


def test_clean_recordings_are_the_original_fsdd_bytes(plain):
    source = _files.source_dir("fsdd") / "recordings"
    for row in _rows(plain)["test"][:50]:
        assert (plain / row["audio"]).read_bytes() == (source / Path(row["audio"]).name).read_bytes()


def test_files_decode_with_tensorflow(plain):
    import tensorflow as tf

    row = _rows(plain)["validation"][0]
    image = tf.io.decode_png(tf.io.read_file(str(plain / row["image"])))
    assert image.shape == (28, 28, 1) and image.dtype == tf.uint8
    audio, rate = tf.audio.decode_wav(tf.io.read_file(str(plain / row["audio"])))
    assert int(rate) == 8000 and audio.shape[1] == 1 and audio.shape[0] > 1000


def test_holdout_speaker_is_the_whole_test_split_and_absent_elsewhere(holdout):
    rows = _rows(holdout)
    assert {split: len(rows[split]) for split in SPLITS} == {"train": 2250, "validation": 250, "test": 500}
    assert {r["speaker"] for r in rows["test"]} == {"theo"}
    assert "theo" not in {r["speaker"] for split in ("train", "validation") for r in rows[split]}
    assert {int(r["fsdd_index"]) for r in rows["validation"]} == set(range(0, 5))
    images = [{r["image"] for r in rows[split]} for split in SPLITS]
    assert len(set().union(*images)) == 3000


def test_holdout_speakers_accepts_a_comma_separated_string(tmp_path):
    rows = _rows(datasets.prepare("avdigits", tmp_path, holdout_speakers="theo,george"))
    assert {r["speaker"] for r in rows["test"]} == {"george", "theo"}
    assert len(rows["test"]) == 1000


def test_hard_audio_snr_is_the_requested_one(hard):
    source = _files.source_dir("fsdd") / "recordings"
    measured = []
    for rows in _rows(hard).values():
        for row in rows:
            clean, _ = _files.read_wav(source / Path(row["audio"]).name)
            noisy, rate = _files.read_wav(hard / row["audio"])
            assert rate == 8000 and len(noisy) == len(clean)
            clean, noisy = clean.astype(float), noisy.astype(float)
            gain = clean @ noisy / (clean @ clean)  # undoes the anti-clipping scale
            noise = noisy - gain * clean
            measured.append(10 * np.log10(np.sum((gain * clean) ** 2) / np.sum(noise**2)))
    measured = np.array(measured)
    assert np.all(np.abs(measured - 5.0) < 0.5), (measured.min(), measured.max())


def test_hard_images_are_occluded_and_noisy_versions_of_the_same_digit(plain, hard):
    assert _rows(hard)["test"] == _rows(plain)["test"]  # same pairing, only the content changes
    mnist_images, _ = avdigits.load_mnist()
    differences = []
    for row in _rows(hard)["test"][:100]:
        pixels = np.array(Image.open(io.BytesIO((hard / row["image"]).read_bytes())))
        assert pixels.shape == (28, 28)
        differences.append(np.abs(pixels.astype(float) - mnist_images[int(row["mnist_index"])]).mean())
    assert np.mean(differences) > 40  # pixel noise of std 0.4 * 255, clipped, plus the blanked square


def test_degrade_image_blanks_a_square_of_the_requested_size():
    image = np.full((28, 28), 255, dtype=np.uint8)
    out = avdigits.degrade_image(image, noise_std=0.0, occlusion_size=10, rng=np.random.default_rng(0))
    assert int((out == 0).sum()) == 100


def test_add_noise_at_snr_scales_down_instead_of_clipping():
    loud = np.full(4000, 32000, dtype=np.int16)
    noisy = avdigits.add_noise_at_snr(loud, snr_db=0.0, rng=np.random.default_rng(0))
    assert np.abs(noisy.astype(int)).max() <= 32767
    assert np.unique(noisy).size > 1000  # not a clipped rail


def test_same_seed_same_pairing_other_seed_other_pairing(plain, tmp_path):
    again = datasets.prepare("avdigits", tmp_path / "a")
    other = datasets.prepare("avdigits", tmp_path / "b", seed=1)
    assert (again / "train.csv").read_bytes() == (plain / "train.csv").read_bytes()
    assert (other / "train.csv").read_bytes() != (plain / "train.csv").read_bytes()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"holdout_speakers": ["bob"]}, "unknown speaker\\(s\\) \\['bob'\\]; valid speakers: george, jackson, lucas"),
        ({"snr_db": 3.0}, "snr_db only apply with hard=True"),
        ({"hard": "yes"}, "hard must be True or False, received 'yes'"),
        ({"hard": True, "occlusion_size": 40}, "occlusion_size must be an integer number of pixels in 0..28, received 40"),
        (
            {"holdout_speakers": avdigits.speakers()},
            "holding out all speakers .* leaves nothing to train on",
        ),
    ],
)
def test_invalid_options_raise(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        datasets.prepare("avdigits", tmp_path, **options)
