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


# ----------------------------------------------------------------- what would lose rows silently (issue 11)
@pytest.mark.parametrize("text, column, lines", [
    ('text,image,label\nhi,a.png,cat\n"hello,b.png,dog\nworld,c.png,cat\nbye,d.png,dog\n', "text", "3-5"),
    ('text,image,label\n"hello,a.png,cat\nworld,b.png,dog\n"quoted",c.png,cat\nlast,d.png,dog\n', "text", "2-4"),
    ('text,image,label\nhello,a.png,"cat\nworld,b.png,dog\n', "label", "2-3"),
])
def test_unbalanced_quote_that_swallows_rows_is_refused_naming_row_line_and_column(tmp_path, text, column, lines):
    path = tmp_path / "train.csv"
    path.write_text(text)
    start = lines.split("-")[0]
    row = int(start) - 1
    with pytest.raises(ManifestError) as error:
        read_manifest(str(path))
    assert (f"train.csv row {row} (line {start}), column {column!r}: an unbalanced quote opens this cell, "
            f"so lines {lines} were read as one cell") in str(error.value)


def test_quoted_cell_spanning_lines_that_closes_cleanly_is_kept(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"two lines,\nwith commas, even",cat\n"say ""hi""",dog\n')
    m = read_manifest(str(path), required=["text", "label"])
    assert m.rows == [{"text": "two lines,\nwith commas, even", "label": "cat"},
                      {"text": 'say "hi"', "label": "dog"}]


def test_column_named_twice_is_refused_naming_both_positions(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,image,label,text\nhi,a.png,cat,ho\n")
    with pytest.raises(ManifestError, match=r"train.csv: column 'text' appears twice in the header "
                                            r"\(columns 1 and 4\)"):
        read_manifest(str(path))


def test_jsonl_list_or_object_where_a_string_is_needed_names_file_line_and_key(tmp_path):
    path = tmp_path / "train.jsonl"
    records = [{"text": "hi", "label": 3, "tags": ["a"]}, {"text": "ho", "label": 4.0},
               {"text": ["a", "b"], "label": "x"}, {"text": {"t": 1}, "label": "y"}]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    with pytest.raises(ManifestError, match=r"train.jsonl line 3, key 'text': expected a string or a number, "
                                            r"got a list \[\"a\", \"b\"\]"):
        read_manifest(str(path), required=["text", "label"])
    m = read_manifest(str(path), required=["label"])  # a list in a column nobody reads is fine
    assert m.column("label") == ["3", "4", "x", "y"]
