"""Image encoders: pixels ``(batch, height, width, channels)`` float32 in [0, 1] -> ``EncoderOutput``.

The tokens are the last feature map's cells, ``(batch, h * w, d)``, with no mask (every cell is
real). Registered as ``image_encoder``: ``conv2d`` (the default), ``resnet``, ``keras_app``.

Example:
    >>> import keras
    >>> from mmkeras.data.schema import FeatureSpec
    >>> spec = FeatureSpec(column="photo", modality="image", shape=(16, 16, 1), dtype="float32")
    >>> pixels = keras.Input(spec.shape, name="photo")
    >>> out = build_conv2d(pixels, spec, name="photo", units=8)
    >>> tuple(out.vector.shape), tuple(out.tokens.shape), out.token_mask
    ((None, 8), (None, 16, 8), None)
"""

from __future__ import annotations

import math
from typing import Optional

import keras
from keras import ops

from mmkeras import registry
from mmkeras.errors import ConfigError
from mmkeras.encoders.base import EncoderOutput, check_choice, check_positive, check_rate


def _check_image_spec(spec, name: str) -> None:
    if len(spec.shape) != 3:
        raise ConfigError(
            f"the image encoder of column {name!r} needs pixels of shape (height, width, channels); "
            f"got {spec.shape}"
        )


def _cells(feature_map, name: str):
    """``(batch, h, w, d)`` -> ``(batch, h * w, d)``."""
    _, height, width, depth = feature_map.shape
    return keras.layers.Reshape((height * width, depth), name=f"{name}_cells")(feature_map)


#: ``conv2d``'s ``pooling: auto`` flattens a last feature map of at most this many values
#: (a Dense of 16,384 x 128 = 2.1M weights), and averages a larger one.
FLATTEN_LIMIT = 16384


@registry.register("image_encoder", "conv2d")
def build_conv2d(
    inputs,
    spec,
    *,
    name: str,
    filters: list = (32, 64),
    kernel_size: int = 3,
    pooling: str = "auto",
    units: int = 128,
    dropout: float = 0.0,
) -> EncoderOutput:
    """The classic small CNN: ``[Conv2D(f) -> MaxPool(2)]`` per entry of ``filters``, then a Dense.

    With the defaults this is Conv2D 32 -> MaxPool -> Conv2D 64 -> MaxPool -> Flatten -> Dense(128)
    for small images and GlobalAveragePooling in place of Flatten for large ones. Tokens are the
    last feature map's cells through their own Dense to the same width.

    Why ``auto``: measured on digits (benchmarks/defaults_table.py, 3 seeds, docs/results.md),
    average pooling throws away where a stroke is and reaches 0.40 test accuracy on MNIST images
    alone, flatten 0.97. Flattening a large map makes a huge Dense, so ``auto`` flattens only
    maps of at most ``FLATTEN_LIMIT`` values (28 x 28 and 48 x 48 inputs: 3,136 and 9,216).

    Args:
        filters: one convolution block per entry.
        kernel_size: square kernel of every convolution.
        pooling: ``"auto"`` (``"flatten"`` when the last feature map holds at most
            ``FLATTEN_LIMIT`` values, else ``"average"``), ``"average"`` (global average) or
            ``"flatten"`` (keeps the spatial layout).
        units: width of the vector and of the tokens.
        dropout: rate before the Dense during training.
    """
    _check_image_spec(spec, name)
    check_positive(name, "filters", filters)
    check_positive(name, "kernel_size", kernel_size)
    check_positive(name, "units", units)
    check_choice(name, "pooling", pooling, ("auto", "average", "flatten"))
    check_rate(name, "dropout", dropout)
    x = inputs
    for index, width in enumerate(filters):
        x = keras.layers.Conv2D(
            width, kernel_size, padding="same", activation="relu", name=f"{name}_conv{index + 1}"
        )(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"{name}_pool{index + 1}")(x)
    if pooling == "auto":
        pooling = "flatten" if math.prod(x.shape[1:]) <= FLATTEN_LIMIT else "average"
    if pooling == "average":
        pooled = keras.layers.GlobalAveragePooling2D(name=f"{name}_average_pool")(x)
    else:
        pooled = keras.layers.Flatten(name=f"{name}_flatten")(x)
    if dropout:
        pooled = keras.layers.Dropout(dropout, name=f"{name}_dropout")(pooled)
    vector = keras.layers.Dense(units, activation="relu", name=f"{name}_dense")(pooled)
    tokens = keras.layers.Dense(units, activation="relu", name=f"{name}_token_dense")(_cells(x, name))
    return EncoderOutput(vector, tokens, None)


def _residual_block(x, width: int, strides: int, prefix: str):
    shortcut = x
    y = keras.layers.Conv2D(width, 3, strides=strides, padding="same", use_bias=False, name=f"{prefix}_conv1")(x)
    y = keras.layers.BatchNormalization(name=f"{prefix}_bn1")(y)
    y = keras.layers.Activation("relu", name=f"{prefix}_relu1")(y)
    y = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"{prefix}_conv2")(y)
    y = keras.layers.BatchNormalization(name=f"{prefix}_bn2")(y)
    if strides != 1 or x.shape[-1] != width:
        shortcut = keras.layers.Conv2D(width, 1, strides=strides, use_bias=False, name=f"{prefix}_shortcut")(x)
        shortcut = keras.layers.BatchNormalization(name=f"{prefix}_shortcut_bn")(shortcut)
    y = keras.layers.Add(name=f"{prefix}_add")([shortcut, y])
    return keras.layers.Activation("relu", name=f"{prefix}_relu2")(y)


@registry.register("image_encoder", "resnet")
def build_resnet(
    inputs, spec, *, name: str, filters: list = (32, 64, 128), blocks_per_stage: int = 1
) -> EncoderOutput:
    """A small residual CNN: a 3x3 stem, then one stage per entry of ``filters``.

    Every stage but the first halves the resolution (while it is above 1); a stage is
    ``blocks_per_stage`` basic blocks (two 3x3 conv + batch norm, identity or 1x1 shortcut).
    The vector is the global average of the last feature map; its width is ``filters[-1]``.

    Args:
        filters: width of each stage.
        blocks_per_stage: basic blocks per stage.

    Reference:
        He et al., "Deep Residual Learning for Image Recognition", 2015. https://arxiv.org/abs/1512.03385
    """
    _check_image_spec(spec, name)
    check_positive(name, "filters", filters)
    check_positive(name, "blocks_per_stage", blocks_per_stage)
    x = keras.layers.Conv2D(filters[0], 3, padding="same", use_bias=False, name=f"{name}_stem_conv")(inputs)
    x = keras.layers.BatchNormalization(name=f"{name}_stem_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_stem_relu")(x)
    for stage, width in enumerate(filters):
        for block in range(blocks_per_stage):
            downsample = stage > 0 and block == 0 and min(x.shape[1], x.shape[2]) > 1
            x = _residual_block(x, width, 2 if downsample else 1, f"{name}_stage{stage + 1}_block{block + 1}")
    vector = keras.layers.GlobalAveragePooling2D(name=f"{name}_average_pool")(x)
    return EncoderOutput(vector, _cells(x, name), None)


# How each keras.applications family wants its pixels, given ours in [0, 1]:
# "raw" models rescale inside (they take [0, 255]); "tf" wants [-1, 1]; "caffe" wants BGR minus the
# ImageNet mean in [0, 255]; "torch" wants RGB standardized by the ImageNet mean and std.
_APP_PREPROCESSING = {
    "MobileNetV3Small": "raw", "MobileNetV3Large": "raw", "ConvNeXt": "raw", "EfficientNet": "raw",
    "RegNet": "raw", "MobileNet": "tf", "Inception": "tf", "Xception": "tf", "NASNet": "tf",
    "ResNet50V2": "tf", "ResNet101V2": "tf", "ResNet152V2": "tf", "ResNet": "caffe", "VGG": "caffe",
    "DenseNet": "torch",
}
# The smallest input side each family accepts (keras.applications' own checks); 32 otherwise.
_APP_MIN_SIZE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _app_preprocessing(architecture: str) -> str:
    # Longest matching prefix: "MobileNetV3Small" before "MobileNet", "ResNet50V2" before "ResNet".
    for prefix in sorted(_APP_PREPROCESSING, key=len, reverse=True):
        if architecture.startswith(prefix):
            return _APP_PREPROCESSING[prefix]
    return "raw"


def _to_app_pixels(x, mode: str, name: str):
    if mode == "raw":
        return keras.layers.Rescaling(255.0, name=f"{name}_rescale")(x)
    if mode == "tf":
        return keras.layers.Rescaling(2.0, offset=-1.0, name=f"{name}_rescale")(x)
    if mode == "torch":
        variance = [s * s for s in _IMAGENET_STD]
        return keras.layers.Normalization(mean=list(_IMAGENET_MEAN), variance=variance, name=f"{name}_normalize")(x)
    bgr_mean = [255.0 * m for m in reversed(_IMAGENET_MEAN)]
    x = keras.layers.Rescaling(255.0, name=f"{name}_rescale")(ops.flip(x, axis=-1))
    return keras.layers.Normalization(mean=bgr_mean, variance=[1.0, 1.0, 1.0], name=f"{name}_normalize")(x)


@registry.register("image_encoder", "keras_app", loads_files=True)
def build_keras_app(
    inputs,
    spec,
    *,
    name: str,
    architecture: str = "MobileNetV3Small",
    weights: Optional[str] = None,
    trainable: bool = True,
) -> EncoderOutput:
    """A ``keras.applications`` backbone (``include_top=False``) as the image encoder.

    Pixels are adapted to what the backbone expects: 1-channel images are repeated to RGB (an
    alpha channel is dropped), images smaller than the family's minimum side (32; 71 for
    Xception; 75 for Inception) are resized up, and [0, 1] values are scaled the way that family
    was trained (``[0, 255]`` for models that rescale inside, ``[-1, 1]``, caffe or torch
    normalization). Vector = global average of the last feature map; tokens = its cells.

    Args:
        architecture: a ``keras.applications`` model name (``MobileNetV3Small``,
            ``EfficientNetB0``, ``ResNet50``, ...).
        weights: ``None`` (random init), a local ``.weights.h5`` file of that architecture
            without top, or ``"imagenet"`` (downloaded once into ``~/.keras/models``).
        trainable: ``False`` freezes the backbone (and runs its batch norm in inference mode).
    """
    import os

    _check_image_spec(spec, name)
    constructor = getattr(keras.applications, architecture, None)
    if not callable(constructor) or not architecture[:1].isupper():
        choices = sorted(n for n in dir(keras.applications) if n[:1].isupper())
        raise ConfigError(
            f"model.encoders.{name}.architecture={architecture!r} is not a keras.applications model; "
            f"choose one of: {', '.join(choices)}"
        )
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise ConfigError(
            f"model.encoders.{name}.weights={weights!r} is neither null, 'imagenet', nor an existing weights file"
        )
    height, width, channels = spec.shape
    x = inputs
    if channels == 1:
        x = keras.layers.Concatenate(name=f"{name}_to_rgb")([x, x, x])
    elif channels != 3:
        x = x[..., :3]
    min_size = _APP_MIN_SIZE.get(architecture, 32)
    if height < min_size or width < min_size:
        x = keras.layers.Resizing(max(height, min_size), max(width, min_size), name=f"{name}_resize")(x)
    x = _to_app_pixels(x, _app_preprocessing(architecture), name)
    backbone = constructor(
        include_top=False, weights=weights, input_shape=tuple(x.shape[1:]), name=f"{name}_{architecture.lower()}"
    )
    backbone.trainable = trainable
    feature_map = backbone(x, training=None if trainable else False)
    vector = keras.layers.GlobalAveragePooling2D(name=f"{name}_average_pool")(feature_map)
    return EncoderOutput(vector, _cells(feature_map, name), None)
