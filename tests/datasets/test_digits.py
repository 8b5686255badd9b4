"""Tests for mmkeras/datasets/digits.py: avdigits plus the synthetic text column."""


import numpy as np
import pytest

from mmkeras import datasets
from mmkeras.datasets import _files, digits

SPLITS = _files.SPLITS


def _rows(folder):
    return {split: _files.read_csv(folder / f"{split}.csv") for split in SPLITS}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return datasets.prepare("digits", tmp_path_factory.mktemp("digits"))


def _edit_distance_at_most_one(a, b):
    if a == b:
        return True
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long = sorted((a, b), key=len)
    return len(long) == len(short) + 1 and any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def test_columns_and_counts(prepared):
    rows = _rows(prepared)
    assert list(rows["train"][0]) == ["text", "image", "audio", "label", "speaker", "fsdd_index", "mnist_index"]
    assert {split: len(rows[split]) for split in SPLITS} == {"train": 2400, "validation": 300, "test": 300}


def test_blank_share_is_fifteen_percent_in_every_split(prepared):
    for split, rows in _rows(prepared).items():
        blank = sum(r["text"] == "" for r in rows)
        assert blank == round(0.15 * len(rows)), split


def test_text_is_a_written_form_of_the_label(prepared):
    forms = {"numeral": 0, "word": 0, "typo": 0}
    for rows in _rows(prepared).values():
        for row in rows:
            text, label = row["text"].lower(), int(row["label"])
            if not text:
                continue
            words = [words[label] for words in digits.NUMBER_WORDS.values()]
            if text == str(label):
                forms["numeral"] += 1
            elif text in words:
                forms["word"] += 1
            else:
                assert any(_edit_distance_at_most_one(text, w) for w in words), (text, label)
                forms["typo"] += 1
    n = sum(forms.values())
    assert n == 2550
    assert abs(forms["numeral"] / n - 0.2) < 0.03
    assert abs(forms["typo"] / (n - forms["numeral"]) - 0.2) < 0.03


def test_text_is_deterministic_given_seed(prepared, tmp_path):
    again = datasets.prepare("digits", tmp_path / "a")
    other = datasets.prepare("digits", tmp_path / "b", seed=7)
    assert (again / "train.csv").read_bytes() == (prepared / "train.csv").read_bytes()
    assert [r["text"] for r in _rows(other)["train"]] != [r["text"] for r in _rows(again)["train"]]


def test_hard_variant_keeps_the_same_text_and_pairing(prepared, tmp_path):
    hard = datasets.prepare("digits", tmp_path / "hard", hard=True)
    assert _rows(hard) == _rows(prepared)
    image = _rows(hard)["test"][0]["image"]
    assert (hard / image).read_bytes() != (prepared / image).read_bytes()


def test_rates_are_options(tmp_path):
    rows = _rows(datasets.prepare("digits", tmp_path, blank_rate=0.5, typo_rate=0.0))
    assert sum(r["text"] == "" for r in rows["test"]) == 150
    all_words = {w for words in digits.NUMBER_WORDS.values() for w in words} | {str(d) for d in range(10)}
    assert {r["text"].lower() for r in rows["train"] if r["text"]} <= all_words


def test_bad_rate_raises(tmp_path):
    with pytest.raises(ValueError, match="blank_rate must be a number in \\[0, 1\\], received 1.5"):
        datasets.prepare("digits", tmp_path, blank_rate=1.5)


def test_dataset_md_says_the_text_is_synthetic(prepared):
    text = (prepared / "DATASET.md").read_text(encoding="utf-8")
    assert "**The `text` column is synthetic.**" in text
    assert "15% of the cells of every split are blank" in text
