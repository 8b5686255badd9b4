import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mmkeras.config import ImageFeature
from mmkeras.data.columns import image_ops as image


def _pil_bytes(array, fmt):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


RGB = np.zeros((8, 8, 3), np.uint8)
RGB[..., 0] = 255  # pure red


@pytest.mark.parametrize("encoded", [
    tf.io.encode_png(RGB).numpy(),
    tf.io.encode_jpeg(RGB, quality=100).numpy(),
    _pil_bytes(RGB, "GIF"),
    _pil_bytes(RGB, "BMP"),
], ids=["png", "jpeg", "gif", "bmp"])
def test_decodes_every_format_to_configured_channels(encoded):
    rgb = image.decode(tf.constant(encoded), ImageFeature(height=8, width=8, channels=3, resize="stretch"))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == tf.float32
    np.testing.assert_allclose(rgb.numpy().mean(axis=(0, 1)), [1.0, 0.0, 0.0], atol=0.02)
    gray = image.decode(tf.constant(encoded), ImageFeature(height=8, width=8, channels=1, resize="stretch"))
    np.testing.assert_allclose(gray.numpy().mean(), 0.2989, atol=0.02)  # ITU-R 601 red weight


def test_grayscale_to_rgb_and_rgba_to_gray_and_rgba():
    gray = np.full((4, 4, 1), 128, np.uint8)
    rgb = image.decode(tf.io.encode_png(gray), ImageFeature(height=4, width=4, channels=3, resize="stretch"))
    np.testing.assert_allclose(rgb.numpy(), 128 / 255, atol=1e-6)
    rgba = np.concatenate([np.full((4, 4, 3), 255, np.uint8), np.full((4, 4, 1), 7, np.uint8)], -1)
    kept = image.decode(tf.io.encode_png(rgba), ImageFeature(height=4, width=4, channels=4, resize="stretch"))
    np.testing.assert_allclose(kept.numpy()[0, 0], [1, 1, 1, 7 / 255], atol=1e-6)
    dropped = image.decode(tf.io.encode_png(rgba), ImageFeature(height=4, width=4, channels=1, resize="stretch"))
    np.testing.assert_allclose(dropped.numpy(), 1.0, atol=1e-3)
    opaque = image.decode(tf.io.encode_png(gray), ImageFeature(height=4, width=4, channels=4, resize="stretch"))
    np.testing.assert_allclose(opaque.numpy()[..., 3], 1.0)


def test_resize_modes_handle_aspect_ratio():
    wide = tf.io.encode_png(np.full((10, 20, 1), 255, np.uint8))
    pad = image.decode(wide, ImageFeature(height=8, width=8, resize="pad")).numpy()[..., 0]
    assert pad[0].max() == 0.0 and pad[4].min() > 0.999  # letterboxed: top rows are padding
    crop = image.decode(wide, ImageFeature(height=8, width=8, resize="crop")).numpy()
    np.testing.assert_allclose(crop, 1.0, atol=1e-3)
    stretch = image.decode(wide, ImageFeature(height=8, width=8, resize="stretch")).numpy()
    np.testing.assert_allclose(stretch, 1.0, atol=1e-3)


def test_augment_keeps_shape_and_range_and_is_seeded():
    picture = tf.random.stateless_uniform([16, 16, 1], [1, 2])
    settings = {"flip": "horizontal", "rotation": 0.1, "contrast": 0.2, "crop": 0.2}
    a = image.augment(picture, settings, tf.constant([3, 4], tf.int64))
    b = image.augment(picture, settings, tf.constant([3, 4], tf.int64))
    assert a.shape == (16, 16, 1) and float(tf.reduce_min(a)) >= 0 and float(tf.reduce_max(a)) <= 1
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(a.numpy(), picture.numpy())


def test_augment_keys_are_validated():
    with pytest.raises(ValueError, match=r"unknown key data.features.image.augment.zoom; valid keys: flip, rotation"):
        image.check_augment({"zoom": 0.1}, "data.features.image.augment")
    with pytest.raises(ValueError, match=r"augment.flip='sideways' is not valid"):
        image.check_augment({"flip": "sideways"}, "data.features.image.augment")
    with pytest.raises(ValueError, match=r"augment.crop=1.5 is not valid"):
        image.check_augment({"crop": 1.5}, "data.features.image.augment")
