"""Tests for mmkeras/datasets/__init__.py: names, options, prepare, ensure_prepared, DATASET.md."""

import json

import pytest

from mmkeras import datasets
from mmkeras.datasets import _files


def test_names_lists_the_bundled_datasets():
    assert datasets.names() == ["avdigits", "digits", "emoji", "speech_commands_mini"]


def test_unknown_name_raises_with_the_valid_names(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; valid names: avdigits, digits, emoji, speech_commands_mini"):
        datasets.prepare("mnist", tmp_path)


def test_unknown_option_raises_with_the_valid_options(tmp_path):
    with pytest.raises(
        ValueError,
        match="unknown option\\(s\\) 'snr' for dataset 'avdigits'; valid options: seed, hard, holdout_speakers, "
        "snr_db, image_noise_std, occlusion_size",
    ):
        datasets.prepare("avdigits", tmp_path, snr=3)
    with pytest.raises(ValueError, match="'hard' for dataset 'emoji'; valid options: seed \\(no other options\\)"):
        datasets.prepare("emoji", tmp_path, hard=True)


def test_options_lists_defaults():
    assert datasets.options("digits")["blank_rate"] == 0.15
    assert datasets.options("speech_commands_mini") == {}


def test_none_options_count_as_not_given(tmp_path):
    folder = datasets.prepare("speech_commands_mini", tmp_path / "sc", hard=None, snr_db=None)
    assert json.loads((folder / "dataset.json").read_text())["options"] == {}


def test_bad_seed_raises(tmp_path):
    with pytest.raises(ValueError, match="seed must be a non-negative integer, received -1"):
        datasets.prepare("emoji", tmp_path, seed=-1)


def test_prepare_writes_manifests_media_and_dataset_md(tmp_path):
    folder = datasets.prepare("speech_commands_mini", tmp_path / "sc")
    assert folder == (tmp_path / "sc").absolute()
    assert sorted(p.name for p in folder.iterdir()) == [
        "DATASET.md", "audio", "dataset.json", "test.csv", "train.csv", "validation.csv"
    ]
    assert not list(tmp_path.glob(".*preparing"))  # the staging folder is gone


def test_rerun_into_same_folder_replaces_outputs_and_keeps_other_files(tmp_path):
    folder = datasets.prepare("digits", tmp_path / "d", holdout_speakers=["theo"])
    (folder / "images" / "stale.png").write_bytes(b"x")
    (folder / "notes.txt").write_text("mine")
    datasets.prepare("digits", folder)
    assert not (folder / "images" / "stale.png").exists()
    assert (folder / "notes.txt").read_text() == "mine"
    assert len(_files.read_csv(folder / "test.csv")) == 300
    assert len(list((folder / "images").iterdir())) == 3000


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "audio").mkdir()
    with pytest.raises(ValueError, match="already holds audio not written by mmkeras.datasets.prepare"):
        datasets.prepare("speech_commands_mini", tmp_path)
    assert (tmp_path / "audio").is_dir()


def test_ensure_prepared_skips_a_matching_folder_and_redoes_a_different_recipe(tmp_path):
    folder = datasets.ensure_prepared("emoji", tmp_path / "e", seed=1)
    marker = folder / "images" / "marker"
    marker.write_text("still here")
    assert datasets.ensure_prepared("emoji", folder, seed=1) == folder
    assert marker.exists()
    datasets.ensure_prepared("emoji", folder, seed=2)
    assert not marker.exists()
    assert json.loads((folder / "dataset.json").read_text())["seed"] == 2


def test_ensure_prepared_reprepares_when_a_csv_is_missing(tmp_path):
    folder = datasets.ensure_prepared("speech_commands_mini", tmp_path / "sc")
    (folder / "test.csv").unlink()
    datasets.ensure_prepared("speech_commands_mini", folder)
    assert len(_files.read_csv(folder / "test.csv")) == 51


def test_default_root_and_ensure_prepared_default_to_cwd_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert datasets.default_root() == tmp_path / "data"
    folder = datasets.ensure_prepared("speech_commands_mini")
    assert folder == tmp_path / "data" / "speech_commands_mini"
    assert (folder / "train.csv").is_file()


@pytest.mark.parametrize(
    "name, sources",
    [
        ("avdigits", ["fsdd", "mnist"]),
        ("digits", ["fsdd", "mnist"]),
        ("emoji", ["noto_emoji"]),
        ("speech_commands_mini", ["speech_commands_mini"]),
    ],
)
def test_dataset_md_carries_source_and_license_text_and_counts(tmp_path, name, sources):
    folder = datasets.prepare(name, tmp_path / name)
    text = (folder / "DATASET.md").read_text(encoding="utf-8")
    for source in sources:
        for path in _files.attribution_files(source):
            original = path.read_text(encoding="utf-8").strip()
            if path.name == "SOURCE.md":  # headings are demoted, everything else is verbatim
                original = "\n".join(line for line in original.splitlines() if not line.startswith("#"))
            for paragraph in original.split("\n\n"):
                assert paragraph.strip() in text, f"{source}/{path.name}: {paragraph[:60]!r}"
    counts = json.loads((folder / "dataset.json").read_text())["counts"]
    for split, count in counts.items():
        assert f"| {split} | {count} |" in text
