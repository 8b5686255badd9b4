"""``data.label_fraction``: training reads a seeded, per-class stratified subset of the train rows."""

from collections import Counter

import numpy as np
import pytest

from mmkeras.config import config_from_dict
from mmkeras.data import pipeline
from mmkeras.data.rows import count_rows, label_subset, labelled_rows, split_path
from mmkeras.data.tfrecord import write_tfrecords
from mmkeras.errors import ConfigError
from mmkeras.training.fit_data import train_label_ids

# 19 rows, sorted by class: a (10 rows), b (6), c (3). Row n (1-based) says "w<n>": one token each.
COUNTS = {"a": 10, "b": 6, "c": 3}
FEATURES = {"text": {"modality": "text", "sequence_length": 1}}


def _write_train(folder):
    labels = [label for label, count in COUNTS.items() for _ in range(count)]
    lines = ["text,label"] + [f"w{n},{label}" for n, label in enumerate(labels, start=1)]
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    return labels


def _config(folder, train="train.csv", **data):
    values = {"data": {"train": train, "label": "label", "features": FEATURES, "cache": "none", **data}}
    return config_from_dict(values, source=str(folder / "config.yaml"))


@pytest.fixture
def folder(tmp_path):
    _write_train(tmp_path)
    return tmp_path


def _row_numbers(dataset, preprocessor):
    """The 1-based manifest row numbers of a pass's examples (each row's one token is ``w<n>``)."""
    vocabulary = preprocessor.columns["text"].vectorizer.vocabulary
    ids = np.concatenate([np.asarray(f["text"])[:, 0] for f, _ in dataset])
    return sorted(int(vocabulary[i - 2][1:]) for i in ids)


def _labels_of(numbers):
    labels = [label for label, count in COUNTS.items() for _ in range(count)]
    return Counter(labels[n - 1] for n in numbers)


@pytest.mark.parametrize("fraction, expected", [
    (0.5, {"a": 5, "b": 3, "c": 2}),   # round(1.5) == 2
    (0.1, {"a": 1, "b": 1, "c": 1}),   # round(0.6) == 1, round(0.3) == 0 -> at least 1
    (0.75, {"a": 8, "b": 4, "c": 2}),  # round(7.5) == 8, round(4.5) == 4 (Python's round), round(2.25) == 2
])
def test_the_subset_keeps_every_class_with_round_fraction_rows(folder, fraction, expected):
    kept = labelled_rows(_config(folder, label_fraction=fraction))
    assert _labels_of(kept) == expected
    assert len(set(kept.tolist())) == len(kept) == sum(expected.values())
    assert kept.tolist() == sorted(kept.tolist()) and 1 <= kept.min() and kept.max() <= 19


def test_the_subset_is_deterministic_per_seed(folder):
    first = labelled_rows(_config(folder, label_fraction=0.5, seed=0)).tolist()
    assert labelled_rows(_config(folder, label_fraction=0.5, seed=0)).tolist() == first
    other = labelled_rows(_config(folder, label_fraction=0.5, seed=1)).tolist()
    assert other != first and _labels_of(other) == _labels_of(first)
    assert label_subset(split_path(_config(folder), "train"), "label", 0.5, 1).tolist() == other


def test_training_reads_the_subset_and_evaluation_every_row(folder):
    config = _config(folder, label_fraction=0.5, seed=3)
    kept = labelled_rows(config).tolist()
    p = pipeline.fit_preprocessor(config)
    assert len(p.columns["text"].vectorizer.vocabulary) == 19  # adapted on every train row
    assert p.class_names == ["a", "b", "c"]

    training = pipeline.build_dataset(config, "train", p, training=True, batch_size=4, drop_remainder=False)
    assert pipeline.num_examples(config, "train") == 10 == sum(len(l) for _, l in training)
    assert _row_numbers(training, p) == kept
    labels = np.concatenate([np.asarray(l) for _, l in training])
    assert Counter(labels.tolist()) == {0: 5, 1: 3, 2: 2}

    # The frozen-backbone cache's rows line up with training's (same rows, same order before the shuffle).
    prepared = list(pipeline.prepared_batches(config, "train", p, batch_size=3, training=True))
    assert sum(len(l) for _, l in prepared) == 10 and _row_numbers(prepared, p) == kept
    encoded = list(pipeline.encoding_rows(config, "train", p, ["text"], training=True, batch_size=3))
    assert np.concatenate([e["text"] for e in encoded]).tolist() == np.concatenate(
        [np.asarray(f["text"]) for f, _ in prepared]).tolist()

    evaluation = pipeline.build_dataset(config, "train", p, training=False, batch_size=4, drop_remainder=False)
    assert _row_numbers(evaluation, p) == list(range(1, 20))
    assert pipeline.num_examples(config, "train", training=False) == 19 == count_rows(split_path(config, "train"))
    assert sorted(train_label_ids(config, p)) == [0] * 5 + [1] * 3 + [2] * 2  # balanced class weights' counts


def test_a_fraction_of_one_changes_nothing(folder):
    default, full = _config(folder), _config(folder, label_fraction=1.0)
    assert labelled_rows(full) is None and pipeline.num_examples(full, "train") == 19
    p = pipeline.fit_preprocessor(full)
    runs = [[np.asarray(f["text"]).tolist() for f, _ in pipeline.build_dataset(
        config, "train", p, training=True, batch_size=1)] for config in (default, full)]
    assert runs[0] == runs[1] and len(runs[0]) == 19


def test_other_splits_are_not_subset(folder):
    (folder / "validation.csv").write_text((folder / "train.csv").read_text())
    config = _config(folder, validation="validation.csv", label_fraction=0.1)
    p = pipeline.fit_preprocessor(config)
    assert pipeline.num_examples(config, "validation") == 19
    assert _row_numbers(pipeline.build_dataset(config, "validation", p, training=False, batch_size=8,
                                               drop_remainder=False), p) == list(range(1, 20))


def test_tfrecords_keep_the_same_rows_as_their_manifest(folder):
    config = _config(folder, label_fraction=0.5)
    write_tfrecords(config, "train", str(folder / "records"), num_shards=3)
    records = _config(folder, train="records/train-*.tfrecord", label_fraction=0.5)
    assert labelled_rows(records).tolist() == labelled_rows(config).tolist()
    p = pipeline.fit_preprocessor(records)
    training = pipeline.build_dataset(records, "train", p, training=True, batch_size=4, drop_remainder=False)
    assert pipeline.num_examples(records, "train") == 10
    assert _row_numbers(training, p) == labelled_rows(config).tolist()


def test_a_file_cache_is_not_shared_between_fractions(folder, tmp_path):
    counts = []
    for fraction in (0.5, 0.1, 1.0):
        config = _config(folder, label_fraction=fraction, cache=str(tmp_path / "cache" / "decoded"))
        p = pipeline.fit_preprocessor(config)
        for _ in range(2):  # the second pass reads the cache file
            counts.append(sum(len(l) for _, l in pipeline.build_dataset(
                config, "train", p, training=True, batch_size=4, drop_remainder=False)))
    assert counts == [10, 10, 3, 3, 19, 19]


@pytest.mark.parametrize("value, message", [
    (0, "data.label_fraction must be in (0, 1], got 0"),
    (-0.5, "data.label_fraction must be in (0, 1], got -0.5"),
    (1.5, "data.label_fraction must be in (0, 1], got 1.5"),
    ("abc", "data.label_fraction must be float, got str 'abc'"),
])
def test_label_fraction_must_be_in_the_unit_interval(folder, value, message):
    with pytest.raises(ConfigError) as error:
        _config(folder, label_fraction=value)
    assert str(error.value) == message


def test_label_fraction_accepts_numbers_and_numeric_strings(folder):
    assert _config(folder, label_fraction=1).data.label_fraction == 1
    assert _config(folder, label_fraction="0.25").data.label_fraction == 0.25
    from mmkeras.config import DataConfig
    from mmkeras.config_checks import check_data

    with pytest.raises(ConfigError, match=r"data.label_fraction must be in \(0, 1\], got 'abc'"):
        check_data(DataConfig(label_fraction="abc"))
