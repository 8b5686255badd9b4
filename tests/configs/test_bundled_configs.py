"""The configs that ship in the package: found by name, valid, and reading data from the working folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mmkeras import configs
from mmkeras.config import load_config, save_config
from mmkeras.errors import ConfigError

FUSIONS = ["concat", "cross_attention", "gated", "graph", "hybrid", "late", "low_rank", "mean", "self_attention", "tensor",
           "weighted_sum"]


def test_names_are_the_yaml_files_of_the_package_folder():
    assert configs.names() == ["avdigits", "digits", "emoji", *(f"fusion/{name}" for name in FUSIONS),
                               "speech_commands"]
    assert configs.path("fusion/gated") == configs.FOLDER / "fusion" / "gated.yaml"
    assert configs.path("digits.yaml").read_text().startswith("# The default experiment")


def test_an_existing_file_wins_over_a_bundled_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits.yaml").write_text("train: {epochs: 1}\n")
    assert configs.locate("digits.yaml") == Path("digits.yaml")
    assert configs.locate("digits") == configs.FOLDER / "digits.yaml"
    assert configs.locate(Path("fusion") / "low_rank") == configs.FOLDER / "fusion" / "low_rank.yaml"


def test_an_unknown_name_fails_listing_the_bundled_configs():
    with pytest.raises(ConfigError, match=r"config file digts does not exist, and it is not a bundled config "
                                          r"name \(avdigits, digits, emoji, fusion/concat, "):
        configs.locate("digts")
    with pytest.raises(ConfigError, match=r"'fusion/gru' is not a bundled config; bundled configs: avdigits, "):
        configs.path("fusion/gru")
    with pytest.raises(ConfigError, match="config file digts does not exist"):
        load_config("digts")


@pytest.mark.parametrize("name", configs.names())
def test_every_bundled_config_loads_by_name_with_data_paths_in_the_working_folder(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(name)
    assert Path(config.source) == configs.path(name)
    for split in ("train", "validation", "test"):
        resolved = Path(config.resolve_path(getattr(config.data, split)))
        assert resolved.parent.parent == tmp_path / "data", (name, split, resolved)
    assert set(config.model.encoders) <= set(config.data.features)


def test_a_run_records_the_absolute_paths_of_a_bundled_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_config(load_config("emoji", ["data.test=held_out/test.csv"]), tmp_path / "resolved.yaml")
    monkeypatch.chdir(configs.FOLDER)  # resuming from another folder reads the same files
    again = load_config(tmp_path / "resolved.yaml")
    assert again.data.train == str(tmp_path / "data" / "emoji" / "train.csv")
    assert again.data.test == str(tmp_path / "held_out" / "test.csv")


def test_a_config_file_of_ones_own_still_resolves_against_its_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(configs.FOLDER)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "c.yaml").write_text("data:\n  train: ../data/train.csv\n")
    config = load_config(tmp_path / "mine" / "c.yaml")
    assert config.resolve_path(config.data.train) == str(tmp_path / "data" / "train.csv")


def test_training_prepares_a_bundled_dataset_in_the_working_folder(tmp_path, monkeypatch):
    from mmkeras.training.trainer import ensure_data

    monkeypatch.chdir(tmp_path)
    before = sorted(configs.FOLDER.rglob("*"))
    ensure_data(load_config("speech_commands"))
    header = (tmp_path / "data" / "speech_commands_mini" / "train.csv").read_text().splitlines()[0]
    assert header.split(",")[:2] == ["audio", "label"]
    assert sorted(configs.FOLDER.rglob("*")) == before  # nothing written into the package


def test_fusion_configs_differ_only_in_model_fusion():
    """notebooks/src/02_fusion_methods.py and benchmarks/fusion_table.py rely on it."""
    def without_fusion(name):
        values = yaml.safe_load(configs.path(f"fusion/{name}").read_text())
        return values["model"].pop("fusion"), values

    reference = without_fusion("concat")[1]
    for name in FUSIONS:
        fusion, rest = without_fusion(name)
        assert fusion["type"] == name
        assert rest == reference, name
