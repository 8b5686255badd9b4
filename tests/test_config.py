import os

import pytest

from mmkeras.config import (
    ConfigError,
    TrainConfig,
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
    assert config.train.jit_compile == TrainConfig().jit_compile  # the original is untouched
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

    config = load_config(Path(__file__).parents[1] / "mmkeras" / "configs" / "digits.yaml")
    assert set(config.data.features) == {"text", "image", "audio"}
    assert config.model.encoders["audio"]["type"] == "conv1d"  # docs/results.md "Defaults, measured"
    assert config.model.fusion["type"] == "concat"


# ----------------------------------------------------------------- everything caught at load (issue 11)
def _with(overrides, features=FEATURES):
    return apply_overrides(config_from_dict({"data": {"features": features}}), overrides)


@pytest.mark.parametrize("overrides, message", [
    (["model.encoders.image.type=conv2d", "model.encoders.image.units=-3"],
     "model.encoders.image.units must be a positive integer (or a list of them); got -3"),
    (["model.encoders.image.type=conv2d", "model.encoders.image.units=big"],
     "model.encoders.image.units must be a positive integer (or a list of them); got 'big'"),
    (["model.encoders.text.type=embedding", "model.encoders.text.pooling=sum"],
     "model.encoders.text.pooling='sum' is not valid; choose one of: 'mean', 'max'"),
    (["model.encoders.text.type=embedding", "model.encoders.text.units=8"],
     "unknown key model.encoders.text.units; valid keys: type, dropout, embedding_dim, pooling"),
    (["model.encoders.image.type=lstm"], "model.encoders.image.type: Unknown image_encoder 'lstm'"),
    (["model.fusion.output_dim=-1"], "model.fusion.output_dim=-1 is not valid: ConcatFusion: `output_dim`"),
    (["model.fusion.type=gated", "model.fusion.dropout=2"], "model.fusion.dropout=2 is not valid"),
    (["model.fusion.type=merge"], "model.fusion.type: Unknown fusion 'merge'; valid choices: concat"),
    (["model.fusion.size=3"], "unknown key model.fusion.size; valid keys: type"),
    (["model.head.hidden_units=[8]", "model.head.activation=relux"],
     "model.head.activation='relux' is not valid: Could not interpret activation"),
    (["model.head.hidden_units=[-1]"], "model.head.hidden_units must be a list of positive integers; got [-1]"),
    (["model.head.type=sigmoid", "model.head.dropout=1.5"], "model.head.dropout must be a float in [0, 1); got 1.5"),
    (["model.head.auxiliary=maybe"], "model.head.auxiliary must be true or false, got str 'maybe'"),
    (["model.head.auxiliary=true", "model.head.auxiliary_weight=heavy"],
     "model.head.auxiliary_weight must be a number, got str 'heavy'"),
    (["model.fusion.type=gated", "model.fusion.dropout=x"], "model.fusion.dropout must be a number, got str 'x'"),
])
def test_component_keys_and_values_are_checked_at_load(overrides, message):
    with pytest.raises(ConfigError) as error:
        _with(overrides)
    assert message in str(error.value)


@pytest.mark.parametrize("override, message", [
    ("train.epochs=0", "train.epochs must be >= 1, got 0"),
    ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
    ("train.learning_rate=0", "train.learning_rate must be a finite number > 0, got 0"),
    ("train.steps_per_execution=0", "train.steps_per_execution must be >= 1, got 0"),
    ("train.weight_decay=-0.1", "train.weight_decay must be >= 0, got -0.1"),
    ("train.warmup_epochs=5", "train.warmup_epochs must be < train.epochs (5), got 5"),
    ("train.label_smoothing=1.0", "train.label_smoothing must be in [0, 1), got 1.0"),
    ("model.modality_dropout=1", "model.modality_dropout must be in [0, 1), got 1"),
    ("data.shuffle_buffer=0", "data.shuffle_buffer must be >= 1, got 0"),
    ("export.top_k=0", "export.top_k must be >= 1, got 0"),
    ("export.warmup_examples=-1", "export.warmup_examples must be >= 0, got -1"),
    ("data.features.text.sequence_length=0", "data.features.text.sequence_length must be >= 1, got 0"),
    ("data.features.text.max_tokens=2", "data.features.text.max_tokens must be >= 3, got 2"),
    ("data.features.image.height=0", "data.features.image.height must be >= 1, got 0"),
    ("data.features.image.max_bytes=0", "data.features.image.max_bytes must be >= 1, got 0"),
    ("data.features.image.augment={flip: sideways}", "data.features.image.augment.flip='sideways' is not valid"),
    ("data.features.image.augment={zoom: 0.1}", "unknown key data.features.image.augment.zoom; valid keys: flip"),
    ("data.features.image.augment={rotation: 0.9}", "data.features.image.augment.rotation=0.9 is not valid"),
])
def test_numeric_ranges_and_augment_settings_name_key_and_value(override, message):
    with pytest.raises(ConfigError) as error:
        _with([override])
    assert message in str(error.value)


@pytest.mark.parametrize("override, message", [
    ("data.features.audio.frame_step=0", "data.features.audio.frame_step must be >= 1, got 0"),
    ("data.features.audio.num_mel_bins=0", "data.features.audio.num_mel_bins must be >= 1, got 0"),
    ("data.features.audio.sample_rate=0", "data.features.audio.sample_rate must be >= 1, got 0"),
    ("data.features.audio.duration=.inf", "data.features.audio.duration must be a finite number, got inf"),
    ("data.features.audio.duration=0", "data.features.audio.duration must be a finite number > 0, got 0"),
    ("data.features.audio.spec_augment={time_maskz: 2}",
     "unknown key data.features.audio.spec_augment.time_maskz; valid keys: time_masks"),
    ("data.features.audio.spec_augment={time_masks: two}",
     "data.features.audio.spec_augment.time_masks='two' is not valid"),
])
def test_audio_settings_and_spec_augment_are_checked_at_load(override, message):
    with pytest.raises(ConfigError) as error:
        _with([override], {"audio": {"modality": "audio"}})
    assert message in str(error.value)


def test_float_fields_accept_numeric_strings_and_int_fields_do_not():
    config = _with(["train.learning_rate='1e-3'", "model.head.dropout='1e-1'", "model.encoders.text.type=embedding",
                    "model.encoders.text.dropout='2e-1'", "data.features.image.augment={rotation: '1e-1'}"])
    assert config.train.learning_rate == 0.001
    assert config.model.head["dropout"] == 0.1
    assert config.model.encoders["text"] == {"type": "embedding", "dropout": 0.2}
    assert config.data.features["image"].augment == {"rotation": 0.1}
    with pytest.raises(ConfigError, match="train.epochs must be int, got str '3'"):
        _with(["train.epochs='3'"])
    with pytest.raises(ConfigError, match="train.epochs must be int, got float 3.0"):
        _with(["train.epochs=3.0"])
    with pytest.raises(ConfigError, match="train.learning_rate must be float, got str 'fast'"):
        _with(["train.learning_rate=fast"])


def test_yaml_exponent_without_a_dot_loads_as_a_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learning_rate: 1e-3\n  weight_decay: 5e-5\n")
    config = load_config(path)
    assert (config.train.learning_rate, config.train.weight_decay) == (0.001, 0.00005)


def test_prepare_must_name_a_bundled_dataset():
    with pytest.raises(ConfigError, match="data.prepare='digitz' is not a bundled dataset; choose one of: "
                                          "avdigits, digits, emoji, speech_commands_mini"):
        config_from_dict({"data": {"prepare": "digitz"}})


def test_cache_file_whose_folder_cannot_be_created_is_refused(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=rf"data.cache='afile/cache/train': folder {tmp_path}/afile/cache "
                                          rf"cannot be created, because {tmp_path}/afile is a file"):
        config_from_dict({"data": {"cache": "afile/cache/train"}}, source=str(tmp_path / "c.yaml"))
    ok = config_from_dict({"data": {"cache": "new/folder/cache"}}, source=str(tmp_path / "c.yaml"))
    assert ok.data.cache == "new/folder/cache" and not (tmp_path / "new").exists()  # nothing is created


def test_config_path_that_is_a_directory_or_not_utf8_is_named(tmp_path):
    with pytest.raises(ConfigError, match=rf"config path {tmp_path} is a directory, not a YAML file"):
        load_config(tmp_path)
    path = tmp_path / "latin1.yaml"
    path.write_bytes("train:\n  epochs: 3 # réglé\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=rf"{path} is not UTF-8 text \(byte 0xe9 on line 2\)"):
        load_config(path)


def test_encoders_that_load_files_have_keys_checked_without_loading(tmp_path):
    hub = {"text": {"modality": "text"}}
    missing = str(tmp_path / "no_such_savedmodel")
    config = _with([f"model.encoders.text.type=hub", f"model.encoders.text.handle={missing}"], hub)
    assert config.model.encoders["text"] == {"type": "hub", "handle": missing}  # not opened at load
    with pytest.raises(ConfigError, match="unknown key model.encoders.text.handel; valid keys: type, call_endpoint"):
        _with(["model.encoders.text.type=hub", f"model.encoders.text.handel={missing}"], hub)


def test_load_config_selects_the_backend_of_train_backend_before_keras_is_imported(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "c.yaml"
    path.write_text("train:\n  backend: jax\n")
    script = ("import os, sys\nfrom mmkeras.config import load_config\n"
              f"load_config({str(path)!r})\nprint('keras' in sys.modules, os.environ['KERAS_BACKEND'])\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "KERAS_BACKEND": "tensorflow"}, cwd=Path(__file__).parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "jax"]


def test_once_keras_is_imported_load_config_keeps_its_backend(tmp_path, monkeypatch):
    import keras

    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", keras.backend.backend())
    config = config_from_dict({"train": {"backend": other}, "data": {"features": FEATURES}})
    assert config.train.backend == other  # train() refuses the mismatch; loading does not
    assert os.environ["KERAS_BACKEND"] == keras.backend.backend()


def test_a_multi_worker_config_is_checked_without_building_the_model(monkeypatch):
    from mmkeras.models import dry_build

    def no_build(*args, **kwargs):
        raise AssertionError("building (a Keras LSTM lists the GPUs) starts TensorFlow before the strategy")

    monkeypatch.setattr(dry_build, "build_model", no_build)
    values = {"data": {"features": FEATURES}, "train": {"strategy": "multi_worker"},
              "model": {"encoders": {"image": {"type": "conv2d"}}, "fusion": {"type": "gated"}}}
    assert config_from_dict(values).model.fusion == {"type": "gated"}
    values["model"]["encoders"]["image"]["unit"] = 3
    with pytest.raises(ConfigError, match="unknown key model.encoders.image.unit; valid keys: type, dropout"):
        config_from_dict(values)


# ----------------------------------------------------------------- --set data.features.<column>=null
@pytest.mark.parametrize("null", ["null", "~", ""])
def test_setting_a_feature_to_null_removes_the_column_and_its_encoder(null):
    config = config_from_dict({"data": {"features": FEATURES},
                               "model": {"encoders": {"text": {"type": "bilstm"}, "image": {"type": "conv2d"}}}})
    out = apply_overrides(config, [f"data.features.text={null}"])
    assert list(out.data.features) == ["image"]
    assert out.model.encoders == {"image": {"type": "conv2d"}}
    assert list(config.data.features) == ["text", "image"]  # the original is untouched


def test_removing_an_unknown_or_the_last_column_is_refused():
    config = config_from_dict({"data": {"features": FEATURES}})
    with pytest.raises(ConfigError, match=r"--set 'data.features.speech=null': data.features has no column "
                                          r"'speech'; columns: text, image"):
        apply_overrides(config, ["data.features.speech=null"])
    with pytest.raises(ConfigError, match=r"'image' is the only column in data.features; a model needs at least one"):
        apply_overrides(config, ["data.features.text=null", "data.features.image=null"])
