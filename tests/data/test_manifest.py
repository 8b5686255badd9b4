import json

import pytest

from mmkeras.data.manifest import ManifestError, read_manifest


def test_csv_paths_resolve_against_the_manifest_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "train.csv").write_text("image,label\nimg/a.png,1\n/abs/b.png,2\ngs://b/c.png,3\n")
    m = read_manifest(str(tmp_path / "sub" / "train.csv"), required=["image", "label"])
    assert [m.resolve(c) for c in m.column("image")] == [
        str(tmp_path / "sub" / "img" / "a.png"), "/abs/b.png", "gs://b/c.png"]
    assert m.name == "train.csv" and len(m) == 3


def test_jsonl_manifest_reads_ints_and_nulls_as_strings(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [{"text": "hi", "label": 3}, {"text": None, "label": 10}]))
    m = read_manifest(str(path), required=["text", "label"])
    assert m.rows == [{"text": "hi", "label": "3"}, {"text": "", "label": "10"}]


def test_missing_column_error_names_manifest_column_and_present_columns(tmp_path):
    (tmp_path / "train.csv").write_text("text,target\nhi,1\n")
    with pytest.raises(ManifestError, match=r"train.csv: column 'label' is missing; present columns: text, target"):
        read_manifest(str(tmp_path / "train.csv"), required=["text", "label"])


def test_missing_manifest_is_named(tmp_path):
    with pytest.raises(ManifestError, match="nope.csv does not exist"):
        read_manifest(str(tmp_path / "nope.csv"))
