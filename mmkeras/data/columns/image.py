"""Image columns: encoded PNG/JPEG/GIF/BMP/WebP files -> ``float32[height, width, channels]`` in [0, 1].

The column checks every file with ``image_check.image_problem`` (headers only, bounded work) before
decoding it, so a file that claims tens of megapixels is refused before its pixels are allocated;
``max_pixels`` (decoded pixels, all GIF frames counted) and ``max_bytes`` are the feature's limits.
Augmentation (``augment``: flip, rotation, contrast, crop) runs per example in training only.

Example:
    >>> column = ImageColumn("photo", ImageFeature(height=4, width=4, channels=3))
    >>> png = tf.io.encode_png(tf.zeros([8, 8, 1], tf.uint8)).numpy()
    >>> column.decode(tf.constant(png)).shape, column.spec.shape
    (TensorShape([4, 4, 3]), (4, 4, 3))
    >>> column.problems(tf.constant([png, b"", b"hello"])).numpy().tolist()
    [b'', b'', b'is not a PNG/JPEG/GIF/BMP/WebP image']
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

import tensorflow as tf

from mmkeras.config_schema import as_config_error, at_least, number_from_string
from mmkeras.data.columns import image_ops
from mmkeras.data.columns.base import Column, Feature
from mmkeras.data.columns.bytes import attempt
from mmkeras.data.columns.image_check import CORRUPT, image_problem
from mmkeras.data.schema import FeatureSpec
from mmkeras.errors import ConfigError


@dataclasses.dataclass
class ImageFeature(Feature):
    """An image column: decoded (PNG/JPEG/GIF/BMP/WebP), resized to ``height x width x channels``, scaled.

    ``height``, ``width`` and ``channels`` default to 28, 28 and 1, or to the converter's size and RGB
    when the column's encoder is a KerasHub preset (``height``/``width`` then override its size).
    ``max_pixels`` bounds the decoded pixels (all GIF frames counted; a 4000 x 4000 photo is 192 MB
    as float32).
    """

    modality: str = "image"
    height: Optional[int] = None
    width: Optional[int] = None
    channels: Optional[int] = None
    resize: str = "pad"
    max_bytes: int = 20_000_000
    max_pixels: int = 16_000_000
    augment: dict = dataclasses.field(default_factory=dict)
    DEFAULTS: ClassVar[dict] = {"height": 28, "width": 28, "channels": 1}
    CHOICES: ClassVar[dict] = {"resize": ("pad", "crop", "stretch"), "channels": (None, 1, 3, 4)}

    def check(self, where: str) -> None:
        """Numeric strings in ``augment`` become floats."""
        for key in ("height", "width", "max_bytes", "max_pixels"):
            if getattr(self, key) is not None:
                at_least(f"{where}.{key}", getattr(self, key), 1)
        if isinstance(self.augment, dict):
            self.augment = {key: number_from_string(value) for key, value in self.augment.items()}
        as_config_error(f"{where}.augment", image_ops.check_augment, self.augment, f"{where}.augment")

    def check_preset(self, column: str, where: str, backbone: dict) -> None:
        shape, handle = backbone.get("image_shape") or (None, None), self.preset
        for key, size in (("height", shape[0]), ("width", shape[1])):
            if size and getattr(self, key) not in (None, size):
                raise ConfigError(f"data.features.{column}.{key}={getattr(self, key)} contradicts {where}.preset="
                                  f"{handle!r}, whose backbone takes {shape[0]} x {shape[1]} images; remove height "
                                  "and width")
        if self.channels not in (None, 3):
            raise ConfigError(f"data.features.{column}.channels={self.channels} contradicts {where}.preset="
                              f"{handle!r}, whose backbone takes RGB images (3 channels); remove the key")

    def spec(self, column: str) -> FeatureSpec:
        resolved = self.resolved()
        return FeatureSpec(column, "image", (resolved.height, resolved.width, resolved.channels), "float32")


class ImageColumn(Column):
    """An image column; cells name image files (or hold their bytes, from TFRecords)."""

    modality = "image"
    feature_class = ImageFeature
    reads_files = True
    raw_input_suffix = "_bytes"
    corrupt = CORRUPT

    @property
    def max_pixels(self) -> int:
        return int(self.feature.max_pixels)

    @property
    def spec(self) -> FeatureSpec:
        shape = (self.feature.height, self.feature.width, self.feature.channels)
        return FeatureSpec(self.name, self.modality, shape, "float32")

    def problems(self, contents: tf.Tensor, serving: bool = False) -> tf.Tensor:
        return tf.map_fn(lambda c: image_problem(c, self.feature.max_bytes, self.max_pixels), contents,
                         fn_output_signature=tf.string)

    def checked_bytes(self, value: tf.Tensor) -> tf.Tensor:
        """``value`` behind an Assert that its header passes ``problems`` (before any pixel exists)."""
        usable = tf.equal(image_problem(value, self.feature.max_bytes, self.max_pixels), "")
        with tf.control_dependencies([tf.debugging.Assert(usable, ["image refused by its header check"])]):
            return tf.identity(value)

    def decode(self, value: tf.Tensor) -> tf.Tensor:
        return image_ops.decode(self.checked_bytes(value), self.feature)

    def serving_decode(self, value: tf.Tensor):
        # Corrupt data behind a good header fails in the decoder: ok=False, and the signature names it.
        return attempt(lambda v: (self.decode(v), tf.constant(True)), value, (self.empty(), tf.constant(False)))

    def prepare(self, decoded: tf.Tensor, present: tf.Tensor, training: bool = False,
                seed: Optional[tf.Tensor] = None) -> dict:
        if training and self.feature.augment:
            decoded = image_ops.augment(decoded, self.feature.augment, seed) * present
        return {self.name: decoded}
