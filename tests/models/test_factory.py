import itertools
from dataclasses import dataclass

import keras
import numpy as np
import pytest

from mmkeras import registry
from mmkeras.config import ModelConfig
from mmkeras.errors import ConfigError
from mmkeras.data.schema import FeatureSpec
from mmkeras.models import build_model, loss_weights

SPECS = {
    "text": FeatureSpec("text", "text", (8,), "int32", vocab_size=20),
    "image": FeatureSpec("image", "image", (16, 16, 1), "float32"),
    "speech": FeatureSpec("speech", "audio", (12, 8), "float32"),
}
# Small widths keep the tests fast; the encoder *types* stay the modality defaults.
TINY = {"text": {"type": "embedding", "embedding_dim": 8}, "image": {"type": "conv2d", "filters": [4, 8], "units": 8},
        "speech": {"type": "lstm", "units": 8}}
SUBSETS = [c for r in (1, 2, 3) for c in itertools.combinations(SPECS, r)]
FUSIONS = registry.names("fusion")
BATCH = 4


@dataclass
class FakePreprocessor:
    input_specs: list
    num_classes: int = 3
    class_names: tuple = ("a", "b", "c")


def _pre(columns, num_classes=3):
    return FakePreprocessor([SPECS[c] for c in columns], num_classes, tuple("abcdefgh"[:num_classes]))


def _config(columns, fusion="concat", encoders=None, **kwargs):
    fusion = fusion if isinstance(fusion, dict) else {"type": fusion, "output_dim": 8}
    encoders = encoders if encoders is not None else {c: TINY[c] for c in columns}
    return ModelConfig(encoders=encoders, fusion=fusion, **kwargs)


def _batch(columns, seed=0, present=None):
    rng = np.random.default_rng(seed)
    batch = {}
    for column in columns:
        spec = SPECS[column]
        if spec.dtype == "int32":
            batch[column] = rng.integers(0, spec.vocab_size, (BATCH, *spec.shape)).astype("int32")
        else:
            batch[column] = rng.random((BATCH, *spec.shape)).astype("float32")
        flags = np.ones(BATCH, "float32") if present is None else present[column]
        batch[spec.presence_key] = np.asarray(flags, "float32")
    return batch


def _predict(model, batch):
    return np.asarray(keras.tree.flatten(model.predict_on_batch(batch))[0] if isinstance(model.output, dict)
                      else model.predict_on_batch(batch))


# End to end, each fusion runs once, on a subset of columns taken in turn so that every one of
# the 7 subsets is covered (cross_attention, the one that reads tokens, on all three); every
# fusion x subset pair is covered at the layer level (tests/layers/test_fusions.py).
FUSION_CASES = [(fusion, SUBSETS[(i + 5) % len(SUBSETS)]) for i, fusion in enumerate(FUSIONS)]
assert {subset for _, subset in FUSION_CASES} == set(SUBSETS)


@pytest.mark.parametrize("fusion, columns", FUSION_CASES, ids=[f"{f}-{'+'.join(c)}" for f, c in FUSION_CASES])
def test_every_fusion_builds_and_ignores_missing_modalities(fusion, columns):
    model = build_model(_config(columns, fusion), _pre(columns))
    assert model.output_shape == (None, 3) and model.output_names == ["probabilities"]
    # The model is fed by the pipeline's dict: {column, column_present}.
    assert sorted(model.input) == sorted([c for c in columns] + [f"{c}_present" for c in columns])
    # Fusion weights from a fixed draw, not from Keras's global initializer stream (whose order
    # any change to build_model shifts), and positive biases: with an unlucky draw every ReLU of a
    # tensor or low-rank fusion was dead, and "present values matter" below failed.
    rng = np.random.default_rng(0)
    for weight in model.get_layer(f"{fusion}_fusion").weights:
        value = np.full(weight.shape, 0.1) if weight.path.endswith("bias") else 0.5 * rng.normal(size=weight.shape)
        weight.assign(value.astype("float32"))
    present = {c: np.array([1, 0, 1, 0], "float32") if i == 0 else np.ones(BATCH, "float32")
               for i, c in enumerate(columns)}
    batch = _batch(columns, present=present)
    probabilities = _predict(model, batch)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    # Masking rule end to end: a missing modality's values never change the output.
    flipped = dict(batch)
    first = columns[0]
    flipped[first] = _batch(columns, seed=1)[first]
    again = _predict(model, flipped)
    missing = present[first] == 0
    np.testing.assert_array_equal(again[missing], probabilities[missing])
    if len(columns) > 1:
        assert not np.allclose(again[~missing], probabilities[~missing])


SMALL_SETTINGS = {"bilstm": {"embedding_dim": 4, "units": 4}, "resnet": {"filters": [4, 8]},
                  "crnn": {"filters": [4], "units": 4}, "transformer": {"embedding_dim": 8, "intermediate_dim": 8}}
ENCODER_CASES = [
    (modality, name)
    for modality, kind in (("text", "text_encoder"), ("image", "image_encoder"), ("speech", "audio_encoder"))
    for name in registry.names(kind)
    # Encoders that load a SavedModel, weights or a preset are covered in tests/encoders.
    if not registry.loads_files(kind, name)
]


@pytest.mark.parametrize("column, encoder", ENCODER_CASES, ids=[f"{c}-{e}" for c, e in ENCODER_CASES])
def test_every_encoder_builds_with_concat(column, encoder):
    columns = ("text", column) if column != "text" else ("text",)
    encoders = {column: {"type": encoder, **SMALL_SETTINGS.get(encoder, {})}}
    model = build_model(_config(columns, encoders=encoders), _pre(columns))
    probabilities = _predict(model, _batch(columns))
    assert probabilities.shape == (BATCH, 3) and np.isfinite(probabilities).all()


def test_default_encoders_per_modality():
    model = build_model(ModelConfig(), _pre(tuple(SPECS)))
    names = {layer.name for layer in model.layers}
    assert {"text_embedding", "image_conv1", "image_conv2", "speech_block1_conv", "concat_fusion"} <= names


def _learnable_data(n=64, seed=0):
    """The label is readable from each modality: the text's first id, the image and speech means."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    text = rng.integers(4, 20, (n, 8)).astype("int32")
    text[:, 0] = labels + 1
    image = (rng.random((n, 16, 16, 1)) * 0.2 + labels[:, None, None, None] * 0.4).astype("float32")
    speech = (rng.normal(size=(n, 12, 8)) * 0.1 + labels[:, None, None] - 1).astype("float32")
    features = {"text": text, "image": image, "speech": speech}
    for column in SPECS:
        features[f"{column}_present"] = (rng.random(n) > 0.2).astype("float32")
    return features, keras.utils.to_categorical(labels, 3)


def test_training_lowers_the_loss_with_modality_dropout_and_auxiliary_heads():
    config = _config(tuple(SPECS), "gated", modality_dropout=0.3,
                     head={"type": "softmax", "hidden_units": [8], "auxiliary": True, "auxiliary_weight": 0.5})
    pre = _pre(tuple(SPECS))
    model = build_model(config, pre)
    assert sorted(model.output) == ["aux_image", "aux_speech", "aux_text", "probabilities"]
    weights = loss_weights(config, pre)
    assert weights == {"probabilities": 1.0, "aux_text": 0.5, "aux_image": 0.5, "aux_speech": 0.5}
    model.compile(keras.optimizers.Adam(1e-2), loss={k: "categorical_crossentropy" for k in weights},
                  loss_weights=weights)
    x, y = _learnable_data()
    targets = {k: y for k in weights}
    before = model.evaluate(x, targets, batch_size=16, verbose=0, return_dict=True)["loss"]
    model.fit(x, targets, batch_size=8, epochs=4, verbose=0)
    after = model.evaluate(x, targets, batch_size=16, verbose=0, return_dict=True)["loss"]
    assert after < 0.7 * before


def test_keras_round_trip_gives_identical_predictions(tmp_path):
    columns = tuple(SPECS)
    encoders = {"text": {"type": "transformer", "embedding_dim": 8, "intermediate_dim": 8},
                "image": {"type": "resnet", "filters": [4, 8]}, "speech": {"type": "crnn", "filters": [4], "units": 4}}
    config = _config(columns, "cross_attention", encoders=encoders, modality_dropout=0.2,
                     head={"type": "sigmoid", "hidden_units": [4], "auxiliary": True})
    model = build_model(config, _pre(columns))
    batch = _batch(columns, present={"text": [1, 0, 1, 1], "image": [1, 1, 0, 1], "speech": [0, 1, 1, 1]})
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    expected, got = model.predict_on_batch(batch), reloaded.predict_on_batch(batch)
    for key in expected:
        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(expected[key]))


def test_jit_compiled_train_step():
    columns = tuple(SPECS)
    # conv1d speech: an LSTM under XLA compiles slowly on CPU, and is covered by the other tests.
    encoders = {**TINY, "speech": {"type": "conv1d", "filters": [4]}}
    model = build_model(_config(columns, "self_attention", encoders=encoders, modality_dropout=0.5), _pre(columns))
    model.compile("adam", "categorical_crossentropy", jit_compile=True)
    x, y = _learnable_data(n=8)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_gives_float32_probabilities(policy):
    keras.config.set_dtype_policy(policy)  # conftest restores the policy
    columns = tuple(SPECS)
    encoders = {**TINY, "text": {"type": "transformer", "embedding_dim": 8, "intermediate_dim": 8}}
    model = build_model(_config(columns, "late", encoders=encoders), _pre(columns))
    assert model.get_layer("image_conv1").compute_dtype == policy.split("_")[1]
    probabilities = model.predict_on_batch(_batch(columns))
    assert keras.backend.standardize_dtype(probabilities.dtype) == "float32"
    np.testing.assert_allclose(np.asarray(probabilities).sum(-1), 1.0, rtol=1e-5)


def test_late_fusion_gets_only_the_activation():
    model = build_model(_config(("text",), {"type": "late", "output_dim": 4}), _pre(("text",), num_classes=5))
    assert "head_logits" not in {layer.name for layer in model.layers}
    assert model.output_shape == (None, 5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"encoders": {"text": {"type": "embedding", "units": 3}}}, r"unknown key model\.encoders\.text\.units; valid keys: type, dropout, embedding_dim, pooling"),
        ({"encoders": {"text": {"type": "gpt"}}}, r"model\.encoders\.text\.type: Unknown text_encoder 'gpt'"),
        ({"encoders": {"video": {"type": "conv2d"}}}, r"model\.encoders\.video names no feature column; columns: text, image"),
        ({"fusion": {"type": "sum"}}, r"model\.fusion\.type: Unknown fusion 'sum'; valid choices: concat"),
        ({"fusion": {"type": "concat", "units": 3}}, r"unknown key model\.fusion\.units; valid keys: type, activation, dropout, output_dim"),
        ({"fusion": {"type": "concat", "output_dim": -1}}, r"model\.fusion \(concat\): .*output_dim"),
        ({"fusion": {"type": "late", "num_classes": 3}}, r"unknown key model\.fusion\.num_classes"),
        ({"head": {"type": "softmax", "hidden": [3]}}, r"unknown key model\.head\.hidden; valid keys: type, activation, auxiliary, auxiliary_weight, dropout, hidden_units"),
        ({"head": {"type": "softmax", "hidden_units": [4]}, "fusion": {"type": "late"}}, r"model\.head\.hidden_units .* 'late' fusion"),
        ({"modality_dropout": 1.0}, r"model\.modality_dropout must be in \[0, 1\)"),
    ],
)
def test_config_errors_name_the_key(kwargs, message):
    config = ModelConfig(**kwargs)
    with pytest.raises(ConfigError, match=message):
        build_model(config, _pre(("text", "image")))


def test_too_many_columns_is_a_config_error():
    specs = [FeatureSpec(f"t{i}", "text", (8,), "int32", vocab_size=5) for i in range(4)]
    with pytest.raises(ConfigError, match="data.features has 4 columns; a model takes 1 to 3"):
        build_model(ModelConfig(), FakePreprocessor(specs))
