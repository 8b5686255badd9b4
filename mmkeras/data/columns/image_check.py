"""The one verdict on an encoded image: read from its header before any pixel is allocated.

``image_problem(contents, max_bytes, max_pixels)`` is "" for a file ``tf.io.decode_image`` can decode
within the limits, else the sentence that follows the file's name in every message (validation,
training, serving): ``is not a PNG/JPEG/GIF/BMP/WebP image``, ``is a truncated or corrupt image``,
``is 20000 x 30000 pixels (1 frame), above the limit max_pixels=16000000``, ... An empty string is a
missing cell and gets "". Work per file is bounded: a PNG is checked at fixed offsets (IHDR, the
final IEND chunk), a JPEG's marker walk stops after ``MAX_SEGMENTS`` segments, a GIF's frames are
counted with one vectorized pass (every frame is decoded by TensorFlow, so frames x width x height
is what counts against ``max_pixels``), an animated WebP is refused.

Corrupt compressed data behind a valid header is found by the decode itself; callers report it with
``CORRUPT`` (the same sentence).

Example:
    >>> png = tf.io.encode_png(tf.zeros([4, 4, 1], tf.uint8)).numpy()
    >>> [image_problem(tf.constant(b), 10**6, 10**6).numpy() for b in (png, b"", b"GIF8junk", png[:20])]
    [b'', b'', b'is a truncated or corrupt image', b'is a truncated or corrupt image']
    >>> image_problem(tf.constant(png), 10**6, 10).numpy()
    b'is 4 x 4 pixels (1 frame), above the limit max_pixels=10'
"""

from __future__ import annotations

import tensorflow as tf

from mmkeras.data.columns.bytes import four_cc, read_bytes, size_of, uint

NOT_AN_IMAGE = "is not a PNG/JPEG/GIF/BMP/WebP image"
CORRUPT = "is a truncated or corrupt image"
ANIMATED_WEBP = "is an animated WebP; give a still image (PNG/JPEG/GIF/BMP/WebP)"
#: A JPEG's markers before its frame header; real files have a handful (APPn, DQT, DHT, ...).
MAX_SEGMENTS = 256
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_SOF_MARKERS = (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)


def _zero():
    return tf.constant(0, tf.int64)


def _png(contents, size):
    complete = tf.equal(four_cc(contents, 12), "IHDR") & tf.equal(four_cc(contents, size - 12, 12), _PNG_END)
    return uint(contents, 16, 4, False), uint(contents, 20, 4, False), tf.constant(1, tf.int64), complete


def _jpeg(contents, size):
    sof = tf.constant(_SOF_MARKERS, tf.int64)

    def cond(pos, count, found, width, height):
        return (~found & (count < MAX_SEGMENTS) & (pos + 9 <= size)
                & tf.equal(read_bytes(contents, pos, 1)[0], 0xFF))

    def body(pos, count, found, width, height):
        marker = read_bytes(contents, pos + 1, 1)[0]
        is_sof = tf.reduce_any(tf.equal(marker, sof))
        standalone = tf.equal(marker, 0xFF) | tf.equal(marker, 0x01) | ((marker >= 0xD0) & (marker <= 0xD9))
        step = tf.where(tf.equal(marker, 0xFF), tf.constant(1, tf.int64),
                        tf.where(standalone, tf.constant(2, tf.int64), 2 + uint(contents, pos + 2, 2, False)))
        width = tf.where(is_sof, uint(contents, pos + 7, 2, False), width)
        height = tf.where(is_sof, uint(contents, pos + 5, 2, False), height)
        return pos + step, count + 1, is_sof, width, height

    start = (tf.constant(2, tf.int64), _zero(), tf.constant(False), _zero(), _zero())
    _, _, found, width, height = tf.while_loop(cond, body, start)
    data = tf.io.decode_raw(contents, tf.uint8)
    end_marker = tf.reduce_any(tf.equal(data[:-1], 0xFF) & tf.equal(data[1:], 0xD9))
    return width, height, tf.constant(1, tf.int64), found & end_marker


def _gif(contents, size):
    data = tf.io.decode_raw(contents, tf.uint8)
    # An image descriptor (0x2C) follows a block terminator (0x00), or comes first after the global
    # colour table; counting those bounds the frames from above (data bytes may hold the pair too).
    flags = read_bytes(contents, 10, 1)[0]
    first_block = 13 + tf.where(flags >= 128, 3 * 2 ** (flags % 8 + 1), 0)
    pairs = tf.equal(data[:-1], 0x00) & tf.equal(data[1:], 0x2C)
    after_first = tf.range(1, tf.size(data, out_type=tf.int64)) > first_block
    frames = tf.reduce_sum(tf.cast(pairs & after_first, tf.int64))
    frames += tf.cast(tf.equal(read_bytes(contents, first_block, 1)[0], 0x2C), tf.int64)
    complete = (size >= 14) & tf.equal(read_bytes(contents, size - 1, 1)[0], 0x3B)
    return uint(contents, 6, 2, True), uint(contents, 8, 2, True), frames, complete


def _bmp(contents, size):
    width = uint(contents, 18, 4, True)
    height = uint(contents, 22, 4, True)
    height = tf.where(height >= 2**31, 2**32 - height, height)  # top-down BMPs store a negative height
    width = tf.where(width >= 2**31, _zero(), width)
    return width, height, tf.constant(1, tf.int64), (size >= 26) & (uint(contents, 10, 4, True) < size)


def _webp(contents, size):
    chunk = four_cc(contents, 12)
    lossless_bits = uint(contents, 21, 4, True)
    width = tf.where(tf.equal(chunk, "VP8X"), uint(contents, 24, 3, True) + 1,
                     tf.where(tf.equal(chunk, "VP8L"), lossless_bits % 16384 + 1, uint(contents, 26, 2, True) % 16384))
    height = tf.where(tf.equal(chunk, "VP8X"), uint(contents, 27, 3, True) + 1,
                      tf.where(tf.equal(chunk, "VP8L"), (lossless_bits // 16384) % 16384 + 1,
                               uint(contents, 28, 2, True) % 16384))
    known = tf.equal(chunk, "VP8 ") | tf.equal(chunk, "VP8L") | tf.equal(chunk, "VP8X")
    animated = tf.equal(chunk, "VP8X") & tf.not_equal(read_bytes(contents, 20, 1)[0] // 2 % 2, 0)
    frames = tf.where(animated, tf.constant(-1, tf.int64), tf.constant(1, tf.int64))
    return width, height, frames, known & tf.equal(uint(contents, 4, 4, True) + 8, size)


def _kind(contents) -> tf.Tensor:
    """0 PNG, 1 JPEG, 2 GIF, 3 BMP, 4 WebP, 5 unknown (by signature)."""
    kinds = tf.stack([
        tf.equal(four_cc(contents, 0, 8), b"\x89PNG\r\n\x1a\n"),
        tf.equal(four_cc(contents, 0, 3), b"\xff\xd8\xff"),
        tf.equal(four_cc(contents, 0, 4), b"GIF8"),
        tf.equal(four_cc(contents, 0, 2), b"BM"),
        tf.equal(four_cc(contents, 0, 4), b"RIFF") & tf.equal(four_cc(contents, 8, 4), b"WEBP"),
    ])
    return tf.where(tf.reduce_any(kinds), tf.argmax(tf.cast(kinds, tf.int32), output_type=tf.int32), 5)


def image_problem(contents: tf.Tensor, max_bytes: int, max_pixels: int) -> tf.Tensor:
    """Scalar string: why the encoded image ``contents`` cannot be used ("" when it can, or is empty)."""
    size = size_of(contents)
    kind = _kind(contents)
    unknown = lambda: (_zero(), _zero(), tf.constant(1, tf.int64), tf.constant(False))  # noqa: E731
    width, height, frames, complete = tf.switch_case(kind, [
        lambda: _png(contents, size), lambda: _jpeg(contents, size), lambda: _gif(contents, size),
        lambda: _bmp(contents, size), lambda: _webp(contents, size), unknown,
    ])
    pixels = width * height * tf.maximum(frames, 1)
    too_many = tf.strings.join([
        tf.strings.format("is {} x {} pixels ({} frame", (width, height, frames)),
        tf.where(frames > 1, "s", ""), f"), above the limit max_pixels={max_pixels}"])
    problem = tf.where(~complete | tf.equal(pixels, 0), CORRUPT, "")
    problem = tf.where(tf.equal(problem, "") & (pixels > max_pixels), too_many, problem)
    problem = tf.where(frames < 0, ANIMATED_WEBP, problem)
    problem = tf.where(kind < 5, problem, NOT_AN_IMAGE)
    too_large = tf.strings.format("is {} bytes, above the limit max_bytes={}", (size, max_bytes))
    problem = tf.where(size > max_bytes, too_large, problem)
    return tf.where(tf.equal(size, 0), "", problem)
