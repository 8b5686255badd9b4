"""A column whose encoder is a KerasHub preset takes its preprocessing from it; mistakes fail at load."""

import pytest

from mmkeras.config import config_from_dict
from mmkeras.errors import ConfigError


def _config(features, encoders):
    return config_from_dict({"data": {"label": "label", "features": features}, "model": {"encoders": encoders}})


def test_the_preset_is_given_to_its_column_and_unset_sizes_come_from_it(tiny_presets):
    config = _config({"photo": {"modality": "image"}, "title": {"modality": "text", "sequence_length": 6}},
                     {"photo": {"type": "keras_hub", "preset": tiny_presets["vit"]},
                      "title": {"type": "keras_hub", "preset": tiny_presets["bert"]}})
    photo, title = config.data.features["photo"], config.data.features["title"]
    assert photo.preset == tiny_presets["vit"] and photo.height is None and photo.channels is None
    from mmkeras.data.columns import build_column

    assert build_column("photo", photo).spec.shape == (32, 32, 3)  # the converter's size, RGB
    assert build_column("title", title).spec.shape == (6,)  # the feature's override


def test_settings_that_contradict_the_preset_name_both_keys(tiny_presets):
    with pytest.raises(ConfigError, match=r"data\.features\.photo\.channels=1 contradicts model\.encoders\.photo\.preset="):
        _config({"photo": {"modality": "image", "channels": 1}},
                {"photo": {"type": "keras_hub", "preset": tiny_presets["vit"]}})
    with pytest.raises(ConfigError, match=r"sample_rate=8000 contradicts model\.encoders\.speech\.preset=.* takes 16000 Hz"):
        _config({"speech": {"modality": "audio", "sample_rate": 8000}},
                {"speech": {"type": "keras_hub", "preset": tiny_presets["whisper"]}})


def test_a_handle_that_cannot_be_resolved_fails_at_load_with_a_hint(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.encoders\.title\.preset='no_such_preset_xyz' cannot be loaded"
                                          r" .*pass a local preset directory"):
        _config({"title": {"modality": "text"}}, {"title": {"type": "keras_hub", "preset": "no_such_preset_xyz"}})
    with pytest.raises(ConfigError, match=r"model\.encoders\.title\.preset is required"):
        _config({"title": {"modality": "text"}}, {"title": {"type": "keras_hub"}})


def test_an_image_size_the_backbone_cannot_take_is_refused(tiny_presets):
    with pytest.raises(ConfigError, match=r"data\.features\.photo\.height=48 contradicts .* takes 32 x 32 images"):
        _config({"photo": {"modality": "image", "height": 48, "width": 48}},
                {"photo": {"type": "keras_hub", "preset": tiny_presets["vit"]}})


def test_train_with_an_unresolvable_preset_exits_2_naming_it_and_writes_no_run_directory(tmp_path, capsys):
    from mmkeras.cli import main

    config = tmp_path / "hub.yaml"
    config.write_text("data:\n  train: train.csv\n  label: label\n  features:\n    title: {modality: text}\n"
                      "model:\n  encoders:\n    title: {type: keras_hub, preset: no_such_preset_xyz}\n")
    assert main(["train", "--config", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "model.encoders.title.preset='no_such_preset_xyz' cannot be loaded" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
