"""Tests for mmkeras/datasets/emoji.py: Noto emoji images + names, labelled by group."""

import collections

import pytest

from mmkeras import datasets
from mmkeras.datasets import _files, emoji

SPLITS = _files.SPLITS


def _rows(folder):
    return {split: _files.read_csv(folder / f"{split}.csv") for split in SPLITS}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return datasets.prepare("emoji", tmp_path_factory.mktemp("emoji"))


def test_counts_are_a_stratified_70_15_15_split(prepared):
    rows = _rows(prepared)
    assert {split: len(rows[split]) for split in SPLITS} == {"train": 1121, "validation": 240, "test": 240}
    totals = collections.Counter(r["label"] for split in SPLITS for r in rows[split])
    assert len(totals) == 8 and totals["People & Body"] == 363
    for split, share in [("validation", 0.15), ("test", 0.15)]:
        per_label = collections.Counter(r["label"] for r in rows[split])
        for label, total in totals.items():
            assert abs(per_label[label] - share * total) <= 0.5, (split, label)


def test_splits_are_disjoint(prepared):
    images = [{r["image"] for r in rows} for rows in _rows(prepared).values()]
    assert sum(len(s) for s in images) == len(set().union(*images)) == 1601


def test_text_is_name_plus_keywords_and_images_are_original_bytes(prepared):
    source = _files.source_dir("noto_emoji")
    by_image = {row["image"]: row for row in _files.read_csv(source / "manifest.csv")}
    for rows in _rows(prepared).values():
        for row in rows:
            original = by_image[row["image"]]
            assert row["text"].startswith(original["text"])
            assert row["label"] == original["label"]
    row = _rows(prepared)["train"][0]
    assert (prepared / row["image"]).read_bytes() == (source / row["image"]).read_bytes()
    assert emoji.emoji_text({"text": "cat", "keywords": ""}) == "cat"


def test_png_decodes_with_tensorflow_as_72x72_rgba(prepared):
    import tensorflow as tf

    row = _rows(prepared)["test"][0]
    image = tf.io.decode_png(tf.io.read_file(str(prepared / row["image"])), channels=0)
    assert image.shape == (72, 72, 4)


def test_split_is_seeded(prepared, tmp_path):
    assert _rows(datasets.prepare("emoji", tmp_path / "a")) == _rows(prepared)
    assert _rows(datasets.prepare("emoji", tmp_path / "b", seed=1))["test"] != _rows(prepared)["test"]
