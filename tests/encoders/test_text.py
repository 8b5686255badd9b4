import keras
import keras_hub
import numpy as np
import pytest

from mmkeras import registry
from mmkeras.errors import ConfigError
from mmkeras.data.schema import FeatureSpec
from mmkeras.encoders import build_encoder
from mmkeras.layers import TransformerBlock

SPEC = FeatureSpec(column="review", modality="text", shape=(8,), dtype="int32", vocab_size=30)
IDS = np.array([[3, 4, 5, 0, 0, 0, 0, 0], [7, 7, 7, 7, 7, 7, 7, 7], [2, 0, 0, 0, 0, 0, 0, 0], [0] * 8], "int32")
# Encoders that load a SavedModel or a preset have their own test files.
NATIVE = [name for name in registry.names("text_encoder") if not registry.loads_files("text_encoder", name)]
SMALL = {
    "embedding": {"embedding_dim": 6},
    "bilstm": {"embedding_dim": 6, "units": 3},
    "conv1d": {"embedding_dim": 6, "filters": [5, 6]},
    "transformer": {"embedding_dim": 6, "num_heads": 2, "intermediate_dim": 8},
}


def _encoder_model(settings):
    ids = keras.Input(SPEC.shape, dtype="int32", name="review")
    out = build_encoder(ids, SPEC, settings)
    return out, keras.Model(ids, [out.vector, out.tokens, out.token_mask])


@pytest.mark.parametrize("name", NATIVE)
def test_text_encoder_shapes_and_padding_mask(name):
    out, model = _encoder_model({"type": name, **SMALL[name]})
    width = 6
    assert tuple(out.vector.shape) == (None, width)
    assert tuple(out.tokens.shape) == (None, 8, width)
    vector, tokens, mask = (np.asarray(t) for t in model(IDS))
    assert vector.shape == (4, width) and tokens.shape == (4, 8, width)
    np.testing.assert_array_equal(mask, IDS != 0)
    assert np.isfinite(vector).all()
    np.testing.assert_array_equal(vector[3], np.zeros(width))  # all padding pools to zeros


@pytest.mark.parametrize("name", NATIVE)
def test_text_encoder_layers_are_prefixed_with_the_column(name):
    _, model = _encoder_model({"type": name, **SMALL[name]})
    weighted = [layer.name for layer in model.layers if layer.weights]
    assert weighted and all(n.startswith("review_") for n in weighted)


def test_embedding_mean_pools_only_real_tokens():
    out, model = _encoder_model({"type": "embedding", "embedding_dim": 4})
    table = np.asarray(model.get_layer("review_embedding").embeddings)
    vector = np.asarray(model(IDS)[0])
    np.testing.assert_allclose(vector[0], table[[3, 4, 5]].mean(0), rtol=1e-5)
    np.testing.assert_allclose(vector[2], table[2], rtol=1e-5)


def test_embedding_max_pooling():
    _, model = _encoder_model({"type": "embedding", "embedding_dim": 4, "pooling": "max"})
    table = np.asarray(model.get_layer("review_embedding").embeddings)
    np.testing.assert_allclose(np.asarray(model(IDS)[0])[0], table[[3, 4, 5]].max(0), rtol=1e-5)


@pytest.mark.parametrize("name", ["embedding", "transformer"])
def test_text_encoder_vector_ignores_what_padding_embeds(name):
    # Padding ids are 0: give id 0 a wildly different embedding; a vector that attends to,
    # recurs over or pools padding moves with it.
    _, model = _encoder_model({"type": name, **SMALL[name]})
    reference = np.asarray(model(IDS)[0])
    table = model.get_layer("review_embedding").embeddings
    values = np.asarray(table).copy()
    values[0] = 100.0 * np.random.default_rng(0).normal(size=values.shape[1])
    table.assign(values)
    np.testing.assert_allclose(np.asarray(model(IDS)[0])[:3], reference[:3], rtol=1e-5, atol=1e-6)


def test_transformer_is_keras_hub_positions_then_post_norm_blocks():
    _, model = _encoder_model({"type": "transformer", **SMALL["transformer"]})
    assert isinstance(model.get_layer("review_position_embedding"), keras_hub.layers.PositionEmbedding)
    block = model.get_layer("review_block1")
    assert isinstance(block, TransformerBlock) and not block.normalize_first and not block.cross_attention
    # A token's vector depends on its position: the same ids in another order give another vector.
    reordered = IDS.copy()
    reordered[1] = [5, 4, 3, 0, 0, 0, 0, 0]  # row 0 is 3, 4, 5 then padding
    vector = np.asarray(model(reordered)[0])
    assert np.max(np.abs(vector[0] - vector[1])) > 1e-4


def test_transformer_width_must_divide_by_heads():
    with pytest.raises(ConfigError, match=r"embedding_dim=6 must be divisible by model\.encoders\.review\.num_heads=4"):
        _encoder_model({"type": "transformer", "embedding_dim": 6, "num_heads": 4})


def test_text_encoder_needs_vocab_size():
    spec = FeatureSpec(column="review", modality="text", shape=(8,), dtype="int32")
    with pytest.raises(ConfigError, match="vocab_size"):
        build_encoder(keras.Input((8,), dtype="int32"), spec, {"type": "embedding"})
