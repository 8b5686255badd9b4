"""Tests for mmkeras/datasets/speech_commands_mini.py: 300 clips, official split."""

import collections

import pytest

from mmkeras import datasets
from mmkeras.datasets import _files

SPLITS = _files.SPLITS


def _rows(folder):
    return {split: _files.read_csv(folder / f"{split}.csv") for split in SPLITS}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return datasets.prepare("speech_commands_mini", tmp_path_factory.mktemp("sc"))


def test_official_split_counts_and_columns(prepared):
    rows = _rows(prepared)
    assert {split: len(rows[split]) for split in SPLITS} == {"train": 205, "validation": 44, "test": 51}
    assert list(rows["train"][0]) == ["audio", "label", "transcript", "speaker", "utterance", "is_core_command"]
    labels = collections.Counter(r["label"] for split in SPLITS for r in rows[split])
    assert len(labels) == 30 and set(labels.values()) == {10}
    assert all(r["transcript"] == r["label"] for split in SPLITS for r in rows[split])


def test_no_clip_or_speaker_is_shared_between_splits(prepared):
    rows = _rows(prepared)
    clips = [{r["audio"] for r in rows[split]} for split in SPLITS]
    assert len(set().union(*clips)) == 300
    speakers = [{r["speaker"] for r in rows[split]} for split in SPLITS]
    assert sum(len(s) for s in speakers) == len(set().union(*speakers)) == 41


def test_clips_are_original_bytes_and_decode_with_tensorflow(prepared):
    import tensorflow as tf

    row = _rows(prepared)["test"][0]
    source = _files.source_dir("speech_commands_mini")
    original = source / "audio" / row["label"] / row["audio"].split("/")[-1]
    assert (prepared / row["audio"]).read_bytes() == original.read_bytes()
    audio, rate = tf.audio.decode_wav(tf.io.read_file(str(prepared / row["audio"])))
    assert int(rate) == 16000 and audio.shape[1] == 1 and 12000 <= audio.shape[0] <= 16000


def test_seed_does_not_change_the_official_split(prepared, tmp_path):
    assert _rows(datasets.prepare("speech_commands_mini", tmp_path, seed=5)) == _rows(prepared)
