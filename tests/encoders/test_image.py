import keras
import numpy as np
import pytest

from mmkeras.errors import ConfigError
from mmkeras.data.schema import FeatureSpec
from mmkeras.encoders import build_encoder

SPEC = FeatureSpec(column="photo", modality="image", shape=(16, 16, 1), dtype="float32")
PIXELS = np.random.default_rng(0).random((4, 16, 16, 1)).astype("float32")


def _run(settings, spec=SPEC, pixels=PIXELS):
    inputs = keras.Input(spec.shape, name=spec.column)
    out = build_encoder(inputs, spec, settings)
    model = keras.Model(inputs, [out.vector, out.tokens])
    vector, tokens = (np.asarray(t) for t in model.predict_on_batch(pixels))
    return out, model, vector, tokens


def test_conv2d_default_is_the_classic_cnn():
    out, model, vector, tokens = _run(None)
    assert [layer.name for layer in model.layers if layer.weights][:2] == ["photo_conv1", "photo_conv2"]
    assert model.get_layer("photo_conv1").filters == 32 and model.get_layer("photo_conv2").filters == 64
    assert out.token_mask is None
    assert vector.shape == (4, 128) and tokens.shape == (4, 16, 128)  # 16x16 -> 4x4 cells


def test_conv2d_flatten_pooling():
    _, model, vector, tokens = _run({"type": "conv2d", "filters": [4], "pooling": "flatten", "units": 5})
    assert model.get_layer("photo_dense").kernel.shape == (8 * 8 * 4, 5)
    assert vector.shape == (4, 5) and tokens.shape == (4, 64, 5)


def test_conv2d_auto_pooling_flattens_small_maps_and_averages_large_ones():
    from mmkeras.encoders.image import FLATTEN_LIMIT

    _, small, _, _ = _run(None)  # 16x16 -> a 4x4x64 map: 1,024 values
    assert small.get_layer("photo_dense").kernel.shape == (4 * 4 * 64, 128)
    # 512 x 512 -> a 128 x 128 x 64 map, far over the limit: global average, a 64 x 128 Dense.
    large_spec = FeatureSpec(column="photo", modality="image", shape=(512, 512, 1), dtype="float32")
    inputs = keras.Input(large_spec.shape, name="photo")
    large = keras.Model(inputs, build_encoder(inputs, large_spec, None).vector)
    assert large.get_layer("photo_dense").kernel.shape == (64, 128)
    assert "photo_average_pool" in [layer.name for layer in large.layers]
    assert 128 * 128 * 64 > FLATTEN_LIMIT >= (48 // 4) * (48 // 4) * 64  # emoji's 48 x 48 images flatten


def test_resnet_shapes():
    _, model, vector, tokens = _run({"type": "resnet", "filters": [4, 8]})
    assert vector.shape == (4, 8) and tokens.shape == (4, 64, 8)  # 16 -> 8
    assert model.get_layer("photo_stage2_block1_shortcut").strides == (2, 2)
    np.testing.assert_allclose(vector, tokens.mean(1), rtol=1e-5, atol=1e-6)


def test_keras_app_repeats_channels_and_resizes_small_images():
    out, model, vector, tokens = _run({"type": "keras_app", "architecture": "MobileNetV3Small"})
    assert model.get_layer("photo_resize").output.shape == (None, 32, 32, 3)
    assert model.get_layer("photo_to_rgb").output.shape == (None, 16, 16, 3)
    assert vector.shape == (4, 576) and tokens.shape == (4, 1, 576)


@pytest.mark.skipif(
    keras.backend.backend() == "jax", reason="weights files are backend independent; two backbone builds are slow on JAX"
)
def test_keras_app_loads_a_local_weights_file(tmp_path):
    settings = {"type": "keras_app", "architecture": "MobileNetV3Small"}
    _, model, vector, _ = _run(settings)
    backbone = model.get_layer("photo_mobilenetv3small")
    path = str(tmp_path / "backbone.weights.h5")
    backbone.save_weights(path)
    _, _, vector_again, _ = _run({**settings, "weights": path, "trainable": False})
    np.testing.assert_allclose(vector_again, vector, rtol=1e-4, atol=1e-5)


def test_keras_app_rejects_unknown_architecture_and_missing_weights():
    with pytest.raises(ConfigError, match=r"model\.encoders\.photo\.architecture='MobileNetV9'.*MobileNetV3Small"):
        _run({"type": "keras_app", "architecture": "MobileNetV9"})
    with pytest.raises(ConfigError, match=r"model\.encoders\.photo\.weights='nope\.h5'"):
        _run({"type": "keras_app", "weights": "nope.h5"})


def test_image_encoder_needs_three_axes():
    spec = FeatureSpec(column="photo", modality="image", shape=(16, 16), dtype="float32")
    with pytest.raises(ConfigError, match=r"\(height, width, channels\); got \(16, 16\)"):
        build_encoder(keras.Input((16, 16)), spec, None)
