"""The ``hub`` text encoder, on a tiny SavedModel each test writes (an embedding table + a signature)."""

import keras
import numpy as np
import pytest

from mmkeras.errors import ConfigError
from mmkeras.data.schema import FeatureSpec
from mmkeras.encoders import build_encoder

SPEC = FeatureSpec(column="review", modality="text", shape=(8,), dtype="int32", vocab_size=20)
IDS = np.array([[3, 4, 5, 0, 0, 0, 0, 0], [6, 0, 0, 0, 0, 0, 0, 0]] * 2, "int32")

tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the hub encoder runs a TensorFlow SavedModel (TF backend only)"
)


def _write_saved_model(path, outputs=("pooled_output", "sequence_output")):
    import tensorflow as tf

    class TinyTextEncoder(tf.Module):
        def __init__(self):
            super().__init__()
            self.embeddings = tf.Variable(tf.random.stateless_normal([20, 6], seed=[1, 2]), name="embeddings")

        @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.int64, name="input_word_ids")])
        def __call__(self, ids):
            sequence = tf.gather(self.embeddings, ids)
            result = {"pooled_output": tf.reduce_mean(sequence, axis=1), "sequence_output": sequence}
            return {key: result[key] for key in outputs}

    module = TinyTextEncoder()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    return str(path), module.embeddings.numpy()


def _classifier(handle, trainable):
    ids = keras.Input(SPEC.shape, dtype="int32", name="review")
    out = build_encoder(ids, SPEC, {"type": "hub", "handle": handle, "trainable": trainable})
    probabilities = keras.layers.Dense(2, activation="softmax", name="probabilities")(out.vector)
    return out, keras.Model(ids, probabilities)


@tensorflow_only
def test_hub_encoder_reads_ids_and_both_outputs(tmp_path):
    handle, table = _write_saved_model(tmp_path / "encoder")
    ids = keras.Input(SPEC.shape, dtype="int32", name="review")
    out = build_encoder(ids, SPEC, {"type": "hub", "handle": handle})
    assert tuple(out.vector.shape) == (None, 6) and tuple(out.tokens.shape) == (None, 8, 6)
    vector, tokens, mask = keras.Model(ids, [out.vector, out.tokens, out.token_mask]).predict_on_batch(IDS)
    np.testing.assert_allclose(vector[0], table[IDS[0]].mean(0), rtol=1e-5)  # the SavedModel's own pooling
    np.testing.assert_allclose(tokens[1, 0], table[6], rtol=1e-6)
    np.testing.assert_array_equal(mask, IDS != 0)


@tensorflow_only
def test_hub_encoder_pools_a_sequence_only_model_over_real_tokens(tmp_path):
    handle, table = _write_saved_model(tmp_path / "encoder", outputs=("sequence_output",))
    ids = keras.Input(SPEC.shape, dtype="int32", name="review")
    out = build_encoder(ids, SPEC, {"type": "hub", "handle": handle})
    vector = keras.Model(ids, out.vector).predict_on_batch(IDS)
    np.testing.assert_allclose(vector[0], table[[3, 4, 5]].mean(0), rtol=1e-5)


@tensorflow_only
@pytest.mark.parametrize("trainable", [True, False])
def test_hub_encoder_fine_tunes_only_when_trainable(tmp_path, trainable):
    handle, table = _write_saved_model(tmp_path / "encoder")
    _, model = _classifier(handle, trainable)
    hub_layer = model.get_layer("review_hub")
    assert len(hub_layer.trainable_weights) == (1 if trainable else 0)
    model.compile(keras.optimizers.SGD(1.0), "sparse_categorical_crossentropy")
    model.fit(IDS, np.array([0, 1, 0, 1]), epochs=3, verbose=0)
    changed = not np.allclose(np.asarray(hub_layer.weights[0]), table)
    assert changed == trainable


@tensorflow_only
def test_hub_model_reloads_only_with_safe_mode_off(tmp_path):
    handle, _ = _write_saved_model(tmp_path / "encoder")
    _, model = _classifier(handle, trainable=True)
    model.compile(keras.optimizers.SGD(1.0), "sparse_categorical_crossentropy")
    model.fit(IDS, np.array([0, 1, 0, 1]), epochs=2, verbose=0)  # the fine-tuned table must be saved
    path = str(tmp_path / "model.keras")
    model.save(path)
    with pytest.raises(ValueError, match="safe_mode=False"):
        keras.saving.load_model(path)
    reloaded = keras.saving.load_model(path, safe_mode=False)
    np.testing.assert_array_equal(reloaded.predict_on_batch(IDS), model.predict_on_batch(IDS))


@tensorflow_only
def test_hub_encoder_bad_handle_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.encoders\.review\.handle=.*could not be loaded"):
        build_encoder(keras.Input((8,), dtype="int32"), SPEC, {"type": "hub", "handle": str(tmp_path / "none")})


def test_hub_encoder_requires_a_handle():
    with pytest.raises(ConfigError, match=r"model\.encoders\.review\.handle is required"):
        build_encoder(keras.Input((8,), dtype="int32"), SPEC, {"type": "hub"})


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="checks the error on other backends")
def test_hub_encoder_explains_it_needs_the_tensorflow_backend():
    with pytest.raises(ConfigError, match=r"needs KERAS_BACKEND=tensorflow \(current backend: 'jax'\)"):
        build_encoder(keras.Input((8,), dtype="int32"), SPEC, {"type": "hub", "handle": "/nowhere"})
