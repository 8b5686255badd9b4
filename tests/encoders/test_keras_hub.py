"""KerasHub backbones as encoders: what is frozen stays bit-identical, what is tuned learns, on both backends."""

import numpy as np
import pytest

import keras

from mmkeras.config import ModelConfig
from mmkeras.data.schema import FeatureSpec
from mmkeras.encoders.keras_hub import backbone_blocks, build_keras_hub
from mmkeras.errors import ConfigError
from mmkeras.models.factory import build_model

TEXT = FeatureSpec("text", "text", (8,), "int32", vocab_size=30, padding_id=0)
IMAGE = FeatureSpec("image", "image", (32, 32, 3), "float32")
AUDIO = FeatureSpec("audio", "audio", (100, 16), "float32")


class _Preprocessor:
    def __init__(self, *specs):
        self.input_specs = list(specs)
        self.num_classes = 3
        self.class_names = ["a", "b", "c"]


def _model(presets, fusion="concat", **encoders):
    specs = {"text": TEXT, "image": IMAGE, "audio": AUDIO}
    settings = {column: {"type": "keras_hub", "preset": presets[{"text": "bert", "image": "vit", "audio": "whisper"}[column]],
                         **options} for column, options in encoders.items()}
    config = ModelConfig(encoders=settings, fusion={"type": fusion, "output_dim": 8})
    return build_model(config, _Preprocessor(*[specs[c] for c in encoders]))


def _batch(columns, size=8, seed=0):
    rng = np.random.default_rng(seed)
    batch = {}
    if "text" in columns:
        ids = rng.integers(5, 30, (size, 8)).astype("int32")
        ids[:, 0], ids[:, 5:] = 2, 0  # [CLS] ... then padding
        batch["text"] = ids
    if "image" in columns:
        batch["image"] = rng.uniform(-1, 1, (size, 32, 32, 3)).astype("float32")
    if "audio" in columns:
        batch["audio"] = rng.normal(size=(size, 100, 16)).astype("float32")
    for column in columns:
        batch[f"{column}_present"] = np.ones(size, "float32")
    return batch, keras.utils.to_categorical(rng.integers(0, 3, size), 3)


def _fit(model, columns, steps=3):
    x, y = _batch(columns)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy")
    model.fit(x, y, batch_size=4, epochs=steps, verbose=0)


def _values(weights) -> dict:
    return {w.path: keras.ops.convert_to_numpy(w).copy() for w in weights}


def _layers(layer):
    """Every layer inside ``layer`` (sub-models and wrappers opened)."""
    for child in getattr(layer, "layers", []) + ([layer.layer] if hasattr(layer, "layer") else []):
        yield child
        yield from _layers(child)


def _backbone(model, column):
    return next(layer for layer in _layers(model) if layer.name.startswith(f"{column}_backbone"))


def test_a_frozen_backbone_stays_bit_identical_while_the_head_learns(tiny_presets):
    model = _model(tiny_presets, text={}, image={})
    frozen = _values(_backbone(model, "text").weights + _backbone(model, "image").weights)
    head = _values(model.trainable_weights)
    assert frozen and not (set(frozen) & set(head))
    _fit(model, ["text", "image"])
    after = _values(_backbone(model, "text").weights + _backbone(model, "image").weights)
    assert all(np.array_equal(frozen[path], after[path]) for path in frozen)
    assert any(not np.array_equal(head[w.path], keras.ops.convert_to_numpy(w)) for w in model.trainable_weights)


def test_trainable_tunes_everything_and_trainable_layers_only_the_last_blocks(tiny_presets):
    tuned = _model(tiny_presets, text={"trainable": True})
    assert {w.path for w in _backbone(tuned, "text").weights} <= {w.path for w in tuned.trainable_weights}
    partial = _model(tiny_presets, image={"trainable_layers": 1})
    backbone = _backbone(partial, "image")
    before = _values(backbone.weights)
    _fit(partial, ["image"])
    changed = {w.path for w in backbone.weights if not np.array_equal(before[w.path], keras.ops.convert_to_numpy(w))}
    first, last = backbone_blocks(backbone)  # the tiny ViT has two
    assert changed and changed <= {w.path for w in last.weights}
    assert not changed & {w.path for w in first.weights}


def test_lora_trains_only_its_adapters(tiny_presets):
    model = _model(tiny_presets, text={"lora_rank": 2})
    backbone_trainable = [w.path for w in _backbone(model, "text").trainable_weights]
    assert backbone_trainable and all("lora" in path for path in backbone_trainable)


def test_pooling_choices_give_the_numbers_they_promise(tiny_presets):
    x, _ = _batch(["text"], size=2)
    ids = keras.Input((8,), dtype="int32", name="text")
    pooled = {}
    for pooling in ("cls", "mean", "masked_mean"):
        out = build_keras_hub(ids, TEXT, name="text", preset=tiny_presets["bert"], pooling=pooling)
        pooled[pooling] = keras.ops.convert_to_numpy(keras.Model(ids, out.vector)(x["text"]))
        sequence = keras.ops.convert_to_numpy(keras.Model(ids, out.tokens)(x["text"]))
        mask = keras.ops.convert_to_numpy(keras.Model(ids, out.token_mask)(x["text"]))
    assert mask[:, :5].all() and not mask[:, 5:].any()  # ids != padding_id
    np.testing.assert_allclose(pooled["cls"], sequence[:, 0], atol=1e-5)
    np.testing.assert_allclose(pooled["mean"], sequence.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(pooled["masked_mean"], sequence[:, :5].mean(axis=1), atol=1e-5)


def test_whisper_gives_its_encoder_half_and_every_modality_round_trips(tiny_presets, tmp_path):
    model = _model(tiny_presets, fusion="cross_attention", text={}, image={"trainable_layers": 1}, audio={})
    assert sorted(model.input) == ["audio", "audio_present", "image", "image_present", "text", "text_present"]
    x, _ = _batch(["text", "image", "audio"], size=2)
    model.save(tmp_path / "hub.keras")
    reloaded = keras.models.load_model(tmp_path / "hub.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6)


def test_an_unresolvable_preset_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.encoders\.text\.preset='.*missing' cannot be loaded .*local preset"):
        build_model(ModelConfig(encoders={"text": {"type": "keras_hub", "preset": str(tmp_path / "missing")}}),
                    _Preprocessor(TEXT))


def test_a_frozen_backbone_runs_in_inference_mode_even_when_fit_trains(tiny_presets):
    x, _ = _batch(["text"], size=4)
    frozen = _model(tiny_presets, text={})
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(frozen(x, training=True)),
                                  keras.ops.convert_to_numpy(frozen(x, training=False)))
    tuned = _model(tiny_presets, text={"trainable": True})  # BERT's dropout (0.1) is on when training
    assert not np.allclose(keras.ops.convert_to_numpy(tuned(x, training=True)),
                           keras.ops.convert_to_numpy(tuned(x, training=False)))


def test_a_dual_encoder_gives_each_modality_its_tower_in_the_shared_space(tmp_path):
    import keras_hub
    from keras_hub.src.models.siglip.siglip_text_encoder import SigLIPTextEncoder
    from keras_hub.src.models.siglip.siglip_vision_encoder import SigLIPVisionEncoder

    vision = SigLIPVisionEncoder(patch_size=8, hidden_dim=16, num_layers=1, num_heads=2, intermediate_dim=32,
                                 image_shape=(32, 32, 3))
    text = SigLIPTextEncoder(vocabulary_size=30, embedding_dim=16, hidden_dim=16, num_layers=1, num_heads=2,
                             intermediate_dim=32, max_sequence_length=8)
    backbone = keras_hub.models.SigLIPBackbone(vision, text)
    backbone.save_to_preset(str(tmp_path / "siglip"))
    ids, images = keras.Input((8,), dtype="int32"), keras.Input((32, 32, 3))
    towers = keras.Model([ids, images], [build_keras_hub(ids, TEXT, name="t", preset=str(tmp_path / "siglip")).vector,
                                         build_keras_hub(images, IMAGE, name="i", preset=str(tmp_path / "siglip")).vector])
    x_ids, x_images = np.ones((2, 8), "int32"), np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    text_vector, image_vector = [keras.ops.convert_to_numpy(v) for v in towers([x_ids, x_images])]
    np.testing.assert_allclose(image_vector, keras.ops.convert_to_numpy(backbone.get_vision_embeddings(x_images)), atol=1e-5)
    np.testing.assert_allclose(text_vector, keras.ops.convert_to_numpy(backbone.get_text_embeddings(x_ids)), atol=1e-5)


@pytest.mark.parametrize("family", ["resnet", "distilbert"])
def test_other_backbone_families_encode_and_tune_their_last_block(family, tmp_path):
    import keras_hub

    if family == "resnet":
        backbone = keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 64],
            stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
            use_pre_activation=False, image_shape=(32, 32, 3))
        spec, inputs, expected = IMAGE, keras.Input((32, 32, 3)), (None, 16, 64)  # a 4 x 4 feature map's cells
    else:
        backbone = keras_hub.models.DistilBertBackbone(vocabulary_size=30, num_layers=2, num_heads=2, hidden_dim=8,
                                                       intermediate_dim=16, max_sequence_length=16)
        spec, inputs, expected = TEXT, keras.Input((8,), dtype="int32"), (None, 8, 8)
    backbone.save_to_preset(str(tmp_path / family))
    out = build_keras_hub(inputs, spec, name="x", preset=str(tmp_path / family), trainable_layers=1)
    assert tuple(out.tokens.shape) == expected and tuple(out.vector.shape) == (None, expected[-1])
    model = keras.Model(inputs, out.vector)
    tuned = {w.path for w in model.trainable_weights}
    blocks = backbone_blocks(next(layer for layer in _layers(model) if layer.name.startswith("x_backbone")))
    last = blocks[-1] if isinstance(blocks[-1], list) else [blocks[-1]]
    assert tuned and tuned == {w.path for layer in last for w in layer.trainable_weights}
