import pytest

from mmkeras.config import (
    ConfigError,
    apply_overrides,
    config_from_dict,
    load_config,
    save_config,
)

FEATURES = {"text": {"modality": "text", "sequence_length": 8}, "image": {"modality": "image"}}


def test_unknown_key_is_named_with_the_valid_keys():
    with pytest.raises(ConfigError) as error:
        config_from_dict({"train": {"epoch": 3}})
    assert "unknown key train.epoch" in str(error.value)
    assert "epochs" in str(error.value) and "batch_size" in str(error.value)


def test_unknown_section_lists_sections():
    with pytest.raises(ConfigError, match="unknown section 'trian'; valid sections: data, model, train, export"):
        config_from_dict({"trian": {}})


def test_wrong_type_names_key_and_value():
    with pytest.raises(ConfigError, match=r"train.batch_size must be int, got str 'big'"):
        config_from_dict({"train": {"batch_size": "big"}})


def test_bool_is_not_accepted_as_int():
    with pytest.raises(ConfigError, match="train.epochs must be int"):
        config_from_dict({"train": {"epochs": True}})


def test_choice_errors_list_the_choices():
    with pytest.raises(ConfigError, match="train.strategy='gpus' is not valid; choose one of: 'auto'"):
        config_from_dict({"train": {"strategy": "gpus"}})


def test_feature_settings_are_validated_per_modality():
    with pytest.raises(ConfigError, match="unknown key data.features.image.sequence_length"):
        config_from_dict({"data": {"features": {"image": {"modality": "image", "sequence_length": 3}}}})
    with pytest.raises(ConfigError, match="data.features.audio.frontend='mel' is not valid"):
        config_from_dict({"data": {"features": {"audio": {"modality": "audio", "frontend": "mel"}}}})
    with pytest.raises(ConfigError, match="data.features.x needs a 'modality' key"):
        config_from_dict({"data": {"features": {"x": {"height": 3}}}})


def test_encoder_for_unknown_column_is_refused():
    with pytest.raises(ConfigError, match="model.encoders.speech names no feature column; columns in data.features: text, image"):
        config_from_dict({"data": {"features": FEATURES}, "model": {"encoders": {"speech": {"type": "lstm"}}}})


def test_component_without_type_is_refused():
    with pytest.raises(ConfigError, match="model.fusion needs a 'type' key"):
        config_from_dict({"model": {"fusion": {"dim": 3}}})


def test_overrides_parse_yaml_values_and_revalidate():
    config = config_from_dict({"data": {"features": FEATURES}})
    out = apply_overrides(config, ["train.jit_compile=true", "data.features.text.sequence_length=4",
                                   "model.fusion.type=gated", "train.learning_rate=0.01"])
    assert out.train.jit_compile is True
    assert out.data.features["text"].sequence_length == 4
    assert out.model.fusion == {"type": "gated"}
    assert out.train.learning_rate == 0.01
    assert config.train.jit_compile is False  # the original is untouched
    with pytest.raises(ConfigError, match="unknown key train.epoch"):
        apply_overrides(config, ["train.epoch=1"])
    with pytest.raises(ConfigError, match="--set expects section.key=value"):
        apply_overrides(config, ["train.epochs"])
    with pytest.raises(ConfigError, match="must start with a section"):
        apply_overrides(config, ["epochs=3"])


def test_load_config_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochz: 1\n")
    with pytest.raises(ConfigError, match=rf"{path}: unknown key train.epochz"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    path.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(path)


def test_manifest_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "configs").mkdir()
    path = tmp_path / "configs" / "c.yaml"
    path.write_text("data:\n  train: ../data/train.csv\n  test: gs://bucket/test.csv\n")
    config = load_config(path)
    assert config.resolve_path(config.data.train) == str(tmp_path / "data" / "train.csv")
    assert config.resolve_path(config.data.test) == "gs://bucket/test.csv"
    save_config(config, tmp_path / "resolved.yaml")
    again = load_config(tmp_path / "resolved.yaml")
    assert again.data.train == str(tmp_path / "data" / "train.csv")


def test_bundled_default_config_loads():
    from pathlib import Path

    config = load_config(Path(__file__).parents[1] / "configs" / "digits.yaml")
    assert set(config.data.features) == {"text", "image", "audio"}
    assert config.model.encoders["audio"]["type"] == "lstm"
    assert config.model.fusion["type"] == "concat"
