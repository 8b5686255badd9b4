import keras
import pytest

from mmkeras import registry
from mmkeras.errors import ConfigError
from mmkeras.data.schema import FeatureSpec
from mmkeras.encoders import DEFAULT_ENCODERS, ENCODER_KINDS, build_encoder, check_settings

TEXT = FeatureSpec(column="review", modality="text", shape=(8,), dtype="int32", vocab_size=30)


def _ids():
    return keras.Input(TEXT.shape, dtype="int32", name=TEXT.column)


def test_every_modality_default_is_registered():
    for modality, name in DEFAULT_ENCODERS.items():
        assert name in registry.names(ENCODER_KINDS[modality])


def test_registered_encoder_names():
    assert registry.names("text_encoder") == ["bilstm", "conv1d", "embedding", "hub", "keras_hub", "transformer"]
    assert registry.names("image_encoder") == ["conv2d", "keras_app", "keras_hub", "resnet"]
    assert registry.names("audio_encoder") == ["conv1d", "crnn", "keras_hub", "lstm"]


def test_build_encoder_uses_modality_default_without_settings():
    out = build_encoder(_ids(), TEXT, None)
    assert out.vector.shape == (None, 64) and out.tokens.shape == (None, 8, 64)


def test_unknown_setting_names_the_key_and_lists_valid_ones():
    with pytest.raises(ConfigError) as error:
        build_encoder(_ids(), TEXT, {"type": "embedding", "embeding_dim": 8})
    message = str(error.value)
    assert "model.encoders.review.embeding_dim" in message
    assert "valid keys: type, dropout, embedding_dim, pooling" in message


def test_unknown_encoder_type_lists_registered_names():
    with pytest.raises(ConfigError, match=r"model\.encoders\.review\.type: .*'lstm'.*valid choices: bilstm, conv1d"):
        build_encoder(_ids(), TEXT, {"type": "lstm"})


def test_bad_setting_value_names_the_key():
    with pytest.raises(ConfigError, match=r"model\.encoders\.review\.pooling='median' is not valid"):
        build_encoder(_ids(), TEXT, {"type": "embedding", "pooling": "median"})
    with pytest.raises(ConfigError, match=r"model\.encoders\.review\.units must be a positive integer"):
        build_encoder(_ids(), TEXT, {"type": "bilstm", "units": 0})


def test_required_setting_is_reported():
    def build_x(inputs, spec, *, name, handle, units=4): ...

    with pytest.raises(ConfigError, match=r"model\.encoders\.text\.handle is required"):
        check_settings(build_x, {"type": "x"}, "model.encoders.text")
    assert check_settings(build_x, {"type": "x", "handle": "h"}, "model.encoders.text") == {"handle": "h"}


def test_class_settings_come_from_init_along_the_bases():
    fusion = registry.get("fusion", "concat")
    values = check_settings(fusion, {"type": "concat", "output_dim": 4, "dropout": 0.1}, "model.fusion")
    assert values == {"output_dim": 4, "dropout": 0.1}
    with pytest.raises(ConfigError, match=r"unknown key model\.fusion\.trainable"):
        check_settings(fusion, {"type": "concat", "trainable": False}, "model.fusion")
