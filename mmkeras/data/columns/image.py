"""Image columns: encoded PNG/JPEG/GIF/BMP/WebP files -> ``float32[height, width, channels]`` in [0, 1].

The column checks every file with ``image_check.image_problem`` (headers only, bounded work) before
decoding it, so a file that claims tens of megapixels is refused before its pixels are allocated;
``max_pixels`` (decoded pixels, all GIF frames counted) and ``max_bytes`` are the feature's limits.
Augmentation (``augment``: flip, rotation, contrast, crop) runs per example in training only.

Example:
    >>> from types import SimpleNamespace
    >>> feature = SimpleNamespace(height=4, width=4, channels=3, resize="pad", augment={},
    ...                           max_bytes=10**6, max_pixels=10**6)
    >>> column = ImageColumn("photo", feature)
    >>> png = tf.io.encode_png(tf.zeros([8, 8, 1], tf.uint8)).numpy()
    >>> column.decode(tf.constant(png)).shape, column.spec.shape
    (TensorShape([4, 4, 3]), (4, 4, 3))
    >>> column.problems(tf.constant([png, b"", b"hello"])).numpy().tolist()
    [b'', b'', b'is not a PNG/JPEG/GIF/BMP/WebP image']
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from mmkeras.data.columns import image_ops
from mmkeras.data.columns.base import Column
from mmkeras.data.columns.bytes import attempt
from mmkeras.data.columns.image_check import CORRUPT, image_problem
from mmkeras.data.schema import FeatureSpec

#: Decoded pixels allowed when the feature does not say (a 4000 x 4000 photo: 192 MB as float32).
DEFAULT_MAX_PIXELS = 16_000_000


class ImageColumn(Column):
    """An image column; cells name image files (or hold their bytes, from TFRecords)."""

    modality = "image"
    reads_files = True
    raw_input_suffix = "_bytes"
    corrupt = CORRUPT

    @property
    def max_pixels(self) -> int:
        return int(getattr(self.feature, "max_pixels", DEFAULT_MAX_PIXELS))

    @property
    def spec(self) -> FeatureSpec:
        shape = (self.feature.height, self.feature.width, self.feature.channels)
        return FeatureSpec(self.name, self.modality, shape, "float32")

    def problems(self, contents: tf.Tensor, serving: bool = False) -> tf.Tensor:
        return tf.map_fn(lambda c: image_problem(c, self.feature.max_bytes, self.max_pixels), contents,
                         fn_output_signature=tf.string)

    def decode(self, value: tf.Tensor) -> tf.Tensor:
        usable = tf.equal(image_problem(value, self.feature.max_bytes, self.max_pixels), "")
        with tf.control_dependencies([tf.debugging.Assert(usable, ["image refused by its header check"])]):
            return image_ops.decode(tf.identity(value), self.feature)

    def serving_decode(self, value: tf.Tensor):
        # Corrupt data behind a good header fails in the decoder: ok=False, and the signature names it.
        return attempt(lambda v: (self.decode(v), tf.constant(True)), value, (self.empty(), tf.constant(False)))

    def prepare(self, decoded: tf.Tensor, present: tf.Tensor, training: bool = False,
                seed: Optional[tf.Tensor] = None) -> dict:
        if training and self.feature.augment:
            decoded = image_ops.augment(decoded, self.feature.augment, seed) * present
        return {self.name: decoded}
