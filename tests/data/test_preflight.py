"""check_before_training: every split's manifest read and its labels checked before an epoch runs."""

import json

import pytest

from mmkeras.config import config_from_dict
from mmkeras.data.manifest import ManifestError
from mmkeras.data.preflight import check_before_training

TRAIN = "text,label\nred apple,fruit\nblue car,vehicle\ngreen pear,fruit\n"


def _config(tmp_path, **splits):
    for name, text in splits.items():
        (tmp_path / name).write_text(text)
    names = {split: next((n for n in splits if n.startswith(split)), None) for split in ("train", "validation", "test")}
    return config_from_dict({"data": {**names, "label": "label",
                                      "features": {"text": {"modality": "text", "sequence_length": 4}}}},
                            source=str(tmp_path / "config.yaml"))


def test_clean_splits_pass_and_report_the_rows_read(tmp_path):
    config = _config(tmp_path, **{"train.csv": TRAIN, "validation.csv": "text,label\nold car,vehicle\n",
                                  "test.jsonl": json.dumps({"text": "a plum", "label": "fruit"}) + "\n"})
    assert check_before_training(config) == {"train": 3, "validation": 1, "test": 1}


@pytest.mark.parametrize("split", ["validation", "test"])
def test_a_label_train_lacks_is_named_with_file_row_and_the_train_classes(tmp_path, split):
    config = _config(tmp_path, **{"train.csv": TRAIN,
                                  f"{split}.csv": "text,label\nold car,vehicle\nred bike,bicycle\nbus,van\n"})
    with pytest.raises(ManifestError, match=rf"{split}.csv row 2: label 'bicycle' is not a class of the train "
                                            r"split \(train.csv classes: fruit, vehicle\); 2 rows in all"):
        check_before_training(config)


def test_a_column_missing_from_the_validation_split_is_named(tmp_path):
    config = _config(tmp_path, **{"train.csv": TRAIN, "validation.csv": "txt,label\nold car,vehicle\n"})
    with pytest.raises(ManifestError, match=r"validation.csv: column 'text' is missing; present columns: txt, label"):
        check_before_training(config)


def test_labels_that_are_one_number_spelled_two_ways_are_refused_naming_both(tmp_path):
    config = _config(tmp_path, **{"train.csv": "text,label\na,5\nb,6\nc,5.0\n"})
    with pytest.raises(ManifestError, match=r"train.csv row 3: label '5.0' and label '5' \(train.csv row 1\) are "
                                            "the same number spelled two ways"):
        check_before_training(config)
    config = _config(tmp_path, **{"train.csv": "text,label\na,5\nb,6\n", "test.csv": "text,label\nc,06\n"})
    with pytest.raises(ManifestError, match=r"test.csv row 1: label '06' and label '6' \(train.csv row 2\)"):
        check_before_training(config)


def test_an_empty_label_or_a_single_train_class_is_refused(tmp_path):
    config = _config(tmp_path, **{"train.csv": TRAIN, "validation.csv": "text,label\nold car,\n"})
    with pytest.raises(ManifestError, match=r"validation.csv row 1: the label column 'label' is empty"):
        check_before_training(config)
    config = _config(tmp_path, **{"train.csv": "text,label\na,cat\nb,cat\n"})
    with pytest.raises(ManifestError, match=r"train.csv has 1 class\(es\) in column 'label' \(cat\)"):
        check_before_training(config)


def test_a_swallowing_quote_in_the_test_split_is_found_before_training(tmp_path):
    config = _config(tmp_path, **{"train.csv": TRAIN, "test.csv": 'text,label\n"old car,vehicle\nred apple,fruit\n'})
    with pytest.raises(ManifestError, match=r"test.csv row 1 \(line 2\), column 'text': an unbalanced quote"):
        check_before_training(config)


def test_a_tfrecord_split_is_skipped_without_being_read(tmp_path):
    config = _config(tmp_path, **{"train.csv": TRAIN})
    config.data.validation = "shards/validation-*.tfrecord"  # does not exist: it is not opened
    assert check_before_training(config) == {"train": 3, "validation": None}
