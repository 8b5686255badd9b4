"""mmkeras.datasets.subset: balanced first rows of each split, and clear errors."""

import csv

import pytest

from mmkeras.datasets import split_overrides, subset


def _write(folder, rows):
    for split in ("train", "validation", "test"):
        with open(folder / f"{split}.csv", "w", newline="") as handle:
            csv.writer(handle).writerows([["image", "label"], *rows])


def test_a_cut_deals_rows_round_robin_over_the_labels(tmp_path):
    _write(tmp_path, [["a.png", "cat"], ["b.png", "cat"], ["c.png", "cat"], ["d.png", "dog"], ["e.png", "dog"]])
    paths = subset(tmp_path, {"train": 4})
    with open(paths["train"], newline="") as handle:
        assert [row["image"] for row in csv.DictReader(handle)] == ["a.png", "d.png", "b.png", "e.png"]
    assert paths["test"] == tmp_path / "test.csv"  # a split not named keeps every row
    assert split_overrides(tmp_path, {"train": 4})[0] == f"data.train={tmp_path / 'train_first4.csv'}"


def test_a_missing_manifest_and_an_unknown_split_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train\.csv does not exist: prepare the dataset first"):
        subset(tmp_path)
    _write(tmp_path, [["a.png", "cat"]])
    with pytest.raises(ValueError, match=r"^counts names no split: tarin; the splits are train, validation, test$"):
        subset(tmp_path, {"tarin": 2})
