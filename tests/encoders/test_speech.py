import keras
import numpy as np
import pytest

from mmkeras.errors import ConfigError
from mmkeras.data.schema import FeatureSpec
from mmkeras.encoders import build_encoder

SPEC = FeatureSpec(column="speech", modality="audio", shape=(12, 8), dtype="float32")
WAVEFORM = FeatureSpec(column="speech", modality="audio", shape=(64, 1), dtype="float32")


def _run(settings, spec=SPEC):
    inputs = keras.Input(spec.shape, name=spec.column)
    out = build_encoder(inputs, spec, settings)
    model = keras.Model(inputs, [out.vector, out.tokens])
    data = np.random.default_rng(0).normal(size=(4, *spec.shape)).astype("float32")
    vector, tokens = (np.asarray(t) for t in model.predict_on_batch(data))
    assert out.token_mask is None and np.isfinite(vector).all()
    return model, vector, tokens


@pytest.mark.parametrize(
    "settings, vector_shape, tokens_shape",
    [
        (None, (4, 64), (4, 3, 64)),  # the default, conv1d: two blocks, each pooling time by 2
        ({"type": "lstm"}, (4, 64), (4, 12, 64)),
        ({"type": "lstm", "units": 3, "bidirectional": True, "num_layers": 2}, (4, 6), (4, 12, 6)),
        ({"type": "crnn", "filters": [4, 8], "units": 5}, (4, 5), (4, 3, 5)),
        ({"type": "crnn", "filters": [4], "units": 5, "bidirectional": True}, (4, 10), (4, 6, 10)),
        ({"type": "conv1d", "filters": [4, 6]}, (4, 6), (4, 3, 6)),
    ],
)
def test_speech_encoder_shapes(settings, vector_shape, tokens_shape):
    _, vector, tokens = _run(settings)
    assert vector.shape == vector_shape and tokens.shape == tokens_shape


def test_lstm_vector_is_mean_of_frames():
    _, vector, tokens = _run({"type": "lstm", "units": 3})
    np.testing.assert_allclose(vector, tokens.mean(1), rtol=1e-5, atol=1e-6)


def test_conv1d_downsamples_waveforms_with_strides():
    model, vector, tokens = _run({"type": "conv1d", "filters": [4, 6], "strides": 4}, WAVEFORM)
    assert tokens.shape == (4, 4, 6)  # 64 / 4 stride / 2 pool / 2 pool
    assert model.get_layer("speech_block1_conv").strides == (4,)


def test_crnn_handles_single_bin_input():
    _, vector, tokens = _run({"type": "crnn", "filters": [2, 2], "units": 3}, WAVEFORM)
    assert tokens.shape == (4, 16, 3)


def test_speech_encoder_needs_two_axes():
    spec = FeatureSpec(column="speech", modality="audio", shape=(12, 8, 1), dtype="float32")
    with pytest.raises(ConfigError, match=r"\(frames, bins\); got \(12, 8, 1\)"):
        build_encoder(keras.Input((12, 8, 1)), spec, {"type": "conv1d"})
