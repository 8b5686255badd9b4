"""Image pixels: decode PNG/JPEG/GIF/BMP/WebP bytes, resize, convert channels, scale to [0, 1].

Everything is a TF op, so the same functions run in ``tf.data``, in a ``tf.function`` and in an
exported SavedModel. ``decode`` is deterministic (it is what the pipeline caches); ``augment``
runs after the cache, in training only, with stateless random ops seeded per example. ``decode``
resizes the image with its own channels first and converts channels on the small result, so a large
photo costs one float copy of itself (callers refuse oversized files first:
``mmkeras.data.columns.image_check``).

Resize modes: ``stretch`` ignores the aspect ratio, ``pad`` keeps it and pads with zeros,
``crop`` keeps it and cuts the centre.

Example:
    >>> from types import SimpleNamespace
    >>> feature = SimpleNamespace(height=8, width=8, channels=1, resize="pad")
    >>> png = tf.io.encode_png(tf.fill([10, 20, 3], tf.constant(255, tf.uint8)))
    >>> image = decode(png, feature)
    >>> image.shape, float(image[0, 0, 0]), round(float(image[4, 4, 0]), 3)
    (TensorShape([8, 8, 1]), 0.0, 1.0)
"""

from __future__ import annotations

import math

import tensorflow as tf

AUGMENTATIONS = {
    "flip": ("horizontal", "vertical", "horizontal_and_vertical"),
    "rotation": "a fraction of a full turn in [0, 0.5]",
    "contrast": "a factor in [0, 1)",
    "crop": "the largest fraction of each side to cut, in [0, 1)",
}


def check_augment(augment: dict, where: str) -> None:
    """Fail on an unknown augmentation key or a value out of range, naming the config key."""
    if not isinstance(augment, dict):
        raise ValueError(f"{where} must be a mapping like {{flip: horizontal, rotation: 0.1}}, got {augment!r}")
    for key, value in augment.items():
        if key not in AUGMENTATIONS:
            raise ValueError(f"unknown key {where}.{key}; valid keys: {', '.join(AUGMENTATIONS)}")
        if key == "flip":
            if value not in AUGMENTATIONS["flip"]:
                raise ValueError(
                    f"{where}.flip={value!r} is not valid; choose one of: "
                    + ", ".join(AUGMENTATIONS["flip"])
                )
            continue
        in_range = value <= 0.5 if key == "rotation" else value < 1.0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not in_range:
            raise ValueError(f"{where}.{key}={value!r} is not valid; expected {AUGMENTATIONS[key]}")


def convert_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """``[h, w, 1|2|3|4]`` (gray, gray+alpha, RGB, RGBA) float pixels -> ``[h, w, channels]``.

    Alpha is dropped unless ``channels`` is 4; an opaque alpha of 255 is added when missing.
    """
    n = tf.shape(image)[-1]
    opaque = tf.fill(tf.concat([tf.shape(image)[:-1], [4]], 0), tf.constant(255.0, image.dtype))
    padded = tf.concat([image, opaque], axis=-1)  # index n is always an opaque channel
    rgb_index = tf.gather([[0, 0, 0], [0, 0, 0], [0, 1, 2], [0, 1, 2]], n - 1)
    alpha_index = tf.gather([1, 1, 3, 3], n - 1)
    rgb = tf.gather(padded, rgb_index, axis=-1)
    if channels == 1:
        return tf.image.rgb_to_grayscale(rgb)
    if channels == 3:
        return rgb
    return tf.concat([rgb, tf.gather(padded, alpha_index[None], axis=-1)], axis=-1)


def _resize(image: tf.Tensor, feature) -> tf.Tensor:
    """Decoded ``uint8[h, w, n]`` -> float ``[height, width, feature.channels]`` (0-255)."""
    height, width, channels = feature.height, feature.width, feature.channels
    if feature.resize == "stretch":
        return convert_channels(tf.image.resize(image, [height, width], antialias=True), channels)
    # Sizes are computed with tensor ops only: tf.image.resize_with_pad rounds differently when
    # the shape is static (eager) and dynamic (graph), which would make serving differ from training.
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    target = tf.constant([height, width], tf.int32)
    if feature.resize == "pad":
        scale = tf.minimum(height / shape[0], width / shape[1])
        size = tf.clip_by_value(tf.cast(tf.round(shape * scale), tf.int32), 1, target)
    else:
        scale = tf.maximum(height / shape[0], width / shape[1])
        size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), target)
    image = convert_channels(tf.image.resize(image, size, antialias=True), channels)
    offset = (target - size) // 2  # >= 0 when padding, <= 0 when cropping
    if feature.resize == "pad":
        return tf.pad(image, [[offset[0], target[0] - size[0] - offset[0]],
                              [offset[1], target[1] - size[1] - offset[1]], [0, 0]])
    return image[-offset[0] : -offset[0] + height, -offset[1] : -offset[1] + width]


def decode(contents: tf.Tensor, feature) -> tf.Tensor:
    """Encoded image bytes -> ``float32[height, width, channels]`` in [0, 1] (a GIF's first frame)."""
    image = tf.io.decode_image(contents, channels=0, expand_animations=False, dtype=tf.uint8)
    image = tf.clip_by_value(_resize(image, feature) / 255.0, 0.0, 1.0)
    return tf.ensure_shape(image, [feature.height, feature.width, feature.channels])


def _rotate(image: tf.Tensor, angle: tf.Tensor) -> tf.Tensor:
    height = tf.cast(tf.shape(image)[0], tf.float32)
    width = tf.cast(tf.shape(image)[1], tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])[None]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=tf.shape(image)[:2],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT",
    )[0]


def augment(image: tf.Tensor, settings: dict, seed: tf.Tensor) -> tf.Tensor:
    """Random flip / crop / rotation / contrast of one image; ``seed`` is an int64 ``[2]`` tensor."""
    if not settings:
        return image
    shape = image.shape
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=6)
    flip = settings.get("flip")
    if flip in ("horizontal", "horizontal_and_vertical"):
        image = tf.image.stateless_random_flip_left_right(image, seeds[0])
    if flip in ("vertical", "horizontal_and_vertical"):
        image = tf.image.stateless_random_flip_up_down(image, seeds[1])
    if settings.get("crop"):
        keep = tf.random.stateless_uniform([], seeds[2], 1.0 - settings["crop"], 1.0)
        size = tf.maximum(tf.cast(tf.round(keep * [shape[0], shape[1]]), tf.int32), 1)
        image = tf.image.stateless_random_crop(image, tf.concat([size, [shape[2]]], 0), seeds[3])
        image = tf.image.resize(image, shape[:2])
    if settings.get("rotation"):
        limit = settings["rotation"] * 2.0 * math.pi
        image = _rotate(image, tf.random.stateless_uniform([], seeds[4], -limit, limit))
    if settings.get("contrast"):
        factor = settings["contrast"]
        image = tf.image.stateless_random_contrast(image, 1.0 - factor, 1.0 + factor, seeds[5])
    return tf.ensure_shape(tf.clip_by_value(image, 0.0, 1.0), shape)
