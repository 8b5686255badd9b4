"""check_model: the config-load dry build of the model, driven by the registry."""

import pytest

from mmkeras import registry
from mmkeras.config import ModelConfig
from mmkeras.data.schema import FeatureSpec
from mmkeras.errors import ConfigError
from mmkeras.models import dry_build

SPECS = [FeatureSpec("text", "text", (8,), "int32", vocab_size=50),
         FeatureSpec("image", "image", (16, 16, 1), "float32"),
         FeatureSpec("audio", "audio", (12, 10), "float32")]
ENCODERS = [(kind, name) for kind in ("text_encoder", "image_encoder", "audio_encoder")
            for name in registry.names(kind) if not registry.loads_files(kind, name)]


def _pending_variables():
    from keras.src.backend.common import global_state

    return len(global_state.get_global_attribute("uninitialized_variables", []) or [])


@pytest.fixture(autouse=True)
def _forget_builds():
    dry_build._built.clear()


@pytest.mark.parametrize("fusion", registry.names("fusion"))
def test_every_fusion_dry_builds_and_leaves_no_variables_behind(fusion):
    before = _pending_variables()
    dry_build.check_model(ModelConfig(fusion={"type": fusion, "output_dim": 8}), SPECS)
    assert _pending_variables() == before


@pytest.mark.parametrize("kind, name", ENCODERS)
def test_every_encoder_dry_builds_with_an_attention_fusion(kind, name):
    column = {"text_encoder": "text", "image_encoder": "image", "audio_encoder": "audio"}[kind]
    model = ModelConfig(encoders={column: {"type": name}}, fusion={"type": "cross_attention", "output_dim": 8})
    dry_build.check_model(model, SPECS)


def test_a_component_that_loads_files_has_its_keys_checked_but_is_not_built():
    @registry.register("text_encoder", "test_from_disk", loads_files=True)
    def build_from_disk(inputs, spec, *, name, path: str = "model.bin"):
        raise AssertionError("a dry build must not open model files")

    try:
        dry_build.check_model(ModelConfig(encoders={"text": {"type": "test_from_disk", "path": "x"}}), SPECS[:1])
        with pytest.raises(ConfigError, match="unknown key model.encoders.text.pth; valid keys: type, path"):
            dry_build.check_model(ModelConfig(encoders={"text": {"type": "test_from_disk", "pth": "x"}}), SPECS[:1])
    finally:
        registry.unregister("text_encoder", "test_from_disk")


def test_a_keras_error_names_the_setting_it_comes_from():
    model = ModelConfig(head={"type": "softmax", "hidden_units": [4], "activation": "relux"})
    with pytest.raises(ConfigError, match="model.head.activation='relux' is not valid: Could not interpret"):
        dry_build.check_model(model, SPECS[:1])


def test_too_many_columns_are_refused_naming_data_features():
    specs = SPECS + [FeatureSpec("caption", "text", (8,), "int32", vocab_size=50)]
    with pytest.raises(ConfigError, match="data.features has 4 columns; a model takes 1 to 3"):
        dry_build.check_model(ModelConfig(), specs)
