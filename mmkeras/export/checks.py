"""In-graph checks of raw serving inputs: every bad request fails with a message that names the input.

A SavedModel signature has no Python ``try``: a decoder that meets bad bytes raises its own error
(``Invalid PNG data``, ``Data too short``), which does not say which input or which row was bad.
These checks run before any decoding, read only headers and chunk tables (no pixels, no samples),
and fail through ``tf.debugging.Assert`` with messages like
``image_bytes[2] is not a PNG/JPEG/GIF/BMP image``, which surface as ``tf.errors.InvalidArgumentError``
in Python and as an ``"error"`` body in TF Serving; the process keeps running.

What is checked, per element (an empty string is a missing modality and always passes):

- images: size <= ``max_bytes``; a PNG/JPEG/GIF/BMP signature; width x height read from the header
  (PNG IHDR, JPEG SOF marker, GIF screen, BMP info header) is non-zero and at most
  ``MAX_IMAGE_PIXELS``; the file is complete (PNG chunk table ends with IEND exactly at the end of
  the bytes, JPEG holds an end-of-image marker, GIF ends with its trailer, BMP holds its pixel offset).
- WAV: size <= ``max_bytes``; RIFF/WAVE header; the chunk walk that ``tf.audio.decode_wav`` does
  (only JUNK-like chunks before ``fmt ``, 16-bit PCM, consistent block size and byte rate, one data
  chunk that fits in the bytes, nothing dangling after it) succeeds; at least one sample.
- text: valid UTF-8.
- all inputs of one request have the same batch length.

Corrupt compressed data behind a valid header (a PNG whose IDAT CRC is wrong) still fails with the
decoder's own InvalidArgumentError, which does not name the input.

Example:
    >>> from mmkeras.config import ImageFeature
    >>> png = tf.io.encode_png(tf.zeros([4, 4, 1], tf.uint8)).numpy()
    >>> image_problems(tf.constant([png, b"", b"GIF8junk", png[:20]]), ImageFeature()).numpy().tolist()
    [b'', b'', b'is a truncated or corrupt image', b'is a truncated or corrupt image']
    >>> check = tf.function(lambda p: [assert_no_problems("image_bytes", p)] and None)
    >>> try:
    ...     check(tf.constant(["", "is not a PNG/JPEG/GIF/BMP image"]))
    ... except tf.errors.InvalidArgumentError as error:
    ...     print(str(error).split("}} ")[-1].splitlines()[0])
    assertion failed: [image_bytes[1] is not a PNG/JPEG/GIF/BMP image]
"""

from __future__ import annotations

import tensorflow as tf

# 40 megapixels: a decoded RGBA image of this size is 160 MB of uint8 (640 MB as float32).
MAX_IMAGE_PIXELS = 40_000_000
NOT_AN_IMAGE = "is not a PNG/JPEG/GIF/BMP image"
CORRUPT_IMAGE = "is a truncated or corrupt image"
NOT_A_WAV = "is not a WAV file (no RIFF/WAVE header)"
# Chunks tf.audio.decode_wav skips before "fmt " (tensorflow/core/lib/wav/wav_io.cc).
WAV_CHUNKS_BEFORE_FMT = ("JUNK", "bext", "iXML", "qlty", "mext", "levl", "link", "axml")
_INT32_MAX = 2**31 - 1


def _read_bytes(contents: tf.Tensor, pos, count: int) -> tf.Tensor:
    """``int64[count]``: the bytes of a scalar string from ``pos``; zeros past its end."""
    size = tf.strings.length(contents, unit="BYTE")
    pos = tf.cast(tf.clip_by_value(tf.cast(pos, tf.int64), 0, tf.cast(size, tf.int64)), tf.int32)
    raw = tf.io.decode_raw(tf.strings.substr(contents, pos, count), tf.uint8)
    raw = tf.pad(raw, [[0, count - tf.shape(raw)[0]]])
    return tf.cast(raw, tf.int64)


def _uint(contents: tf.Tensor, pos, count: int, little_endian: bool) -> tf.Tensor:
    """Unsigned integer of ``count`` bytes at ``pos`` (int64)."""
    weights = [256**i for i in range(count)]
    if not little_endian:
        weights = weights[::-1]
    return tf.reduce_sum(_read_bytes(contents, pos, count) * tf.constant(weights, tf.int64))


def _text_at(contents: tf.Tensor, pos, count: int) -> tf.Tensor:
    size = tf.cast(tf.strings.length(contents, unit="BYTE"), tf.int64)
    pos = tf.clip_by_value(tf.cast(pos, tf.int64), 0, size)
    return tf.strings.substr(contents, tf.cast(pos, tf.int32), count)


# --------------------------------------------------------------------------- images
def _png_shape(contents, size):
    """(width, height, complete): IHDR dimensions; the chunk table must end with IEND at ``size``."""

    def body(pos, last):
        length = _uint(contents, pos, 4, little_endian=False)
        return pos + 12 + length, _text_at(contents, pos + 4, 4)

    pos, last = tf.while_loop(lambda pos, last: pos + 12 <= size, body, (tf.constant(8, tf.int64), tf.constant("")))
    complete = (pos == size) & tf.equal(last, "IEND") & tf.equal(_text_at(contents, 12, 4), "IHDR")
    return _uint(contents, 16, 4, False), _uint(contents, 20, 4, False), complete


def _jpeg_shape(contents, size):
    """(width, height, complete): the first SOF marker's dimensions; an end-of-image marker must exist."""
    sof = tf.constant([0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF], tf.int64)

    def cond(pos, found, width, height):
        return tf.logical_not(found) & (pos + 9 <= size) & tf.equal(_read_bytes(contents, pos, 1)[0], 0xFF)

    def body(pos, found, width, height):
        marker = _read_bytes(contents, pos + 1, 1)[0]
        is_sof = tf.reduce_any(tf.equal(marker, sof))
        standalone = tf.equal(marker, 0xFF) | tf.equal(marker, 0x01) | ((marker >= 0xD0) & (marker <= 0xD9))
        step = tf.where(tf.equal(marker, 0xFF), tf.constant(1, tf.int64),
                        tf.where(standalone, tf.constant(2, tf.int64), 2 + _uint(contents, pos + 2, 2, False)))
        width = tf.where(is_sof, _uint(contents, pos + 7, 2, False), width)
        height = tf.where(is_sof, _uint(contents, pos + 5, 2, False), height)
        return pos + step, is_sof, width, height

    zero = tf.constant(0, tf.int64)
    _, found, width, height = tf.while_loop(cond, body, (tf.constant(2, tf.int64), tf.constant(False), zero, zero))
    data = tf.io.decode_raw(contents, tf.uint8)
    end_marker = tf.reduce_any(tf.equal(data[:-1], 0xFF) & tf.equal(data[1:], 0xD9))
    return width, height, found & end_marker


def _gif_shape(contents, size):
    last = _read_bytes(contents, size - 1, 1)[0]
    return _uint(contents, 6, 2, True), _uint(contents, 8, 2, True), (size >= 14) & tf.equal(last, 0x3B)


def _bmp_shape(contents, size):
    width = _uint(contents, 18, 4, True)
    height = _uint(contents, 22, 4, True)
    height = tf.where(height >= 2**31, 2**32 - height, height)  # top-down BMPs store a negative height
    width = tf.where(width >= 2**31, tf.constant(0, tf.int64), width)
    return width, height, (size >= 26) & (_uint(contents, 10, 4, True) < size)


def _image_problem(contents: tf.Tensor, max_bytes: int, max_pixels: int) -> tf.Tensor:
    size = tf.cast(tf.strings.length(contents, unit="BYTE"), tf.int64)
    kinds = tf.stack([
        tf.equal(tf.strings.substr(contents, 0, 8), b"\x89PNG\r\n\x1a\n"),
        tf.equal(tf.strings.substr(contents, 0, 3), b"\xff\xd8\xff"),
        tf.equal(tf.strings.substr(contents, 0, 4), b"GIF8"),
        tf.equal(tf.strings.substr(contents, 0, 2), b"BM"),
    ])
    known = tf.reduce_any(kinds)
    kind = tf.where(known, tf.argmax(tf.cast(kinds, tf.int32), output_type=tf.int32), 4)
    none = lambda: (tf.constant(0, tf.int64), tf.constant(0, tf.int64), tf.constant(False))  # noqa: E731
    width, height, complete = tf.switch_case(kind, [
        lambda: _png_shape(contents, size), lambda: _jpeg_shape(contents, size),
        lambda: _gif_shape(contents, size), lambda: _bmp_shape(contents, size), none,
    ])
    pixels = width * height
    too_many = tf.strings.format("is {} x {} pixels, above the limit of {} pixels", (width, height, max_pixels))
    problem = tf.where(~complete | tf.equal(pixels, 0), CORRUPT_IMAGE, "")
    problem = tf.where(pixels > max_pixels, too_many, problem)
    problem = tf.where(known, problem, NOT_AN_IMAGE)
    problem = tf.where(size > max_bytes, f"is larger than max_bytes={max_bytes}", problem)
    return tf.where(tf.equal(size, 0), "", problem)


def image_problems(contents: tf.Tensor, feature, max_pixels: int = MAX_IMAGE_PIXELS) -> tf.Tensor:
    """``string[B]``: why each encoded image of ``contents[B]`` cannot be decoded ("" when it can).

    Args:
        contents: encoded image bytes; "" is a missing image and passes.
        feature: the column's ``ImageFeature`` (for ``max_bytes``).
        max_pixels: the largest width x height accepted.
    """
    return tf.map_fn(lambda c: _image_problem(c, feature.max_bytes, max_pixels), contents,
                     fn_output_signature=tf.string)


# --------------------------------------------------------------------------- WAV
def _wav_problem(contents: tf.Tensor, max_bytes: int) -> tf.Tensor:
    """Mirror of the checks in ``tf.audio.decode_wav`` (wav_io.cc), reading only headers."""
    size = tf.cast(tf.strings.length(contents, unit="BYTE"), tf.int64)
    riff = tf.equal(_text_at(contents, 0, 4), "RIFF") & tf.equal(_text_at(contents, 8, 4), "WAVE")
    skippable = tf.constant(WAV_CHUNKS_BEFORE_FMT)
    zero = tf.constant(0, tf.int64)

    # State: pos, phase (0 before fmt, 1 after fmt, 2 done), block (bytes per frame), frames, problem.
    def cond(pos, phase, block, frames, problem):
        return tf.equal(phase, 0) | (tf.equal(phase, 1) & (pos < size))

    def body(pos, phase, block, frames, problem):
        chunk = _text_at(contents, pos, 4)
        length = _uint(contents, pos + 4, 4, True)
        header_fits = pos + 8 <= size
        start = pos + 8
        # Before fmt: skip JUNK-like chunks (bounds-checked), anything else is an error.
        is_fmt = tf.equal(chunk, "fmt ")
        fmt_format = _uint(contents, start, 2, True)
        channels = _uint(contents, start + 2, 2, True)
        rate = _uint(contents, start + 4, 4, True)
        byte_rate = _uint(contents, start + 8, 4, True)
        fmt_block = _uint(contents, start + 12, 2, True)
        bits = _uint(contents, start + 14, 2, True)
        fmt_ok = ((tf.equal(length, 16) | tf.equal(length, 18)) & tf.equal(fmt_format, 1) & (channels >= 1)
                  & tf.equal(bits, 16) & (rate > 0) & tf.equal(fmt_block, 2 * channels) & tf.equal(byte_rate, fmt_block * rate))
        skip_ok = tf.reduce_any(tf.equal(chunk, skippable)) & (start + length <= size)
        before_problem = tf.where(
            ~header_fits, "is truncated (it ends inside the WAV header)",
            tf.where(is_fmt & (start + length > size), "is truncated (it ends inside the WAV header)",
                     tf.where(is_fmt, tf.where(fmt_ok, "", "is not a 16-bit PCM WAV file"),
                     tf.where(skip_ok, "", tf.strings.join(["is not a WAV that can be decoded (chunk '", chunk,
                                                           "' before 'fmt ')"])))))
        before = (start + length, tf.where(is_fmt, 1, 0), tf.where(is_fmt, fmt_block, block), frames, before_problem)
        # After fmt: one data chunk that fits; other chunks are skipped.
        is_data = tf.equal(chunk, "data")
        data_frames = length // tf.maximum(block, 1)
        data_end = start + data_frames * block
        after_problem = tf.where(
            ~header_fits, "is truncated (a chunk header is cut off)",
            tf.where(length > _INT32_MAX, "has a chunk larger than 2 GiB",
                     tf.where(is_data & (frames >= 0), "has more than one data chunk",
                              tf.where(is_data & (data_end > size),
                                       tf.strings.format("is truncated (its data chunk needs {} bytes, {} are there)",
                                                         (length, size - start)), ""))))
        after = (tf.where(is_data, data_end, start + length), tf.constant(1), block,
                 tf.where(is_data, data_frames, frames), after_problem)
        first = tf.equal(phase, 0)
        new = [tf.where(first, b, a) for b, a in zip(before, after)]
        failed = tf.not_equal(new[4], "")
        return new[0], tf.where(failed, 2, new[1]), new[2], new[3], new[4]

    pos, phase, block, frames, problem = tf.while_loop(
        cond, body, (tf.constant(12, tf.int64), tf.constant(0), zero, tf.constant(-1, tf.int64), tf.constant("")),
    )
    problem = tf.where(tf.equal(problem, "") & (frames < 0), "has no data chunk", problem)
    problem = tf.where(tf.equal(problem, "") & tf.equal(frames, 0), "has zero samples", problem)
    problem = tf.where(riff, problem, NOT_A_WAV)
    problem = tf.where(size > max_bytes, f"is larger than max_bytes={max_bytes}", problem)
    return tf.where(tf.equal(size, 0), "", problem)


def wav_problems(contents: tf.Tensor, feature) -> tf.Tensor:
    """``string[B]``: why each WAV of ``contents[B]`` cannot be decoded ("" when it can, or is empty)."""

    def problem(c):
        # A header that cannot even hold RIFF/WAVE is answered without entering the chunk walk.
        return tf.cond(tf.strings.length(c) < 12,
                       lambda: tf.where(tf.equal(tf.strings.length(c), 0), "", NOT_A_WAV),
                       lambda: _wav_problem(c, feature.max_bytes))

    return tf.map_fn(problem, contents, fn_output_signature=tf.string)


# --------------------------------------------------------------------------- text, batches
def text_problems(text: tf.Tensor) -> tf.Tensor:
    """``string[B]``: "is not valid UTF-8" for each string that is not, else ""."""
    repaired = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
    return tf.where(tf.equal(repaired, text), "", "is not valid UTF-8 text")


def assert_no_problems(name: str, problems: tf.Tensor):
    """An Assert that fails with ``"<name>[i] <problem>"`` for the first non-empty ``problems[i]``."""
    bad = tf.not_equal(problems, "")
    first = tf.argmax(tf.cast(bad, tf.int32), output_type=tf.int32)
    problem = tf.gather(tf.concat([problems, [""]], 0), first)
    message = tf.strings.join([name, "[", tf.strings.as_string(first), "] ", problem])
    return tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)), [message])


def assert_same_batch(inputs: dict):
    """An Assert that every tensor of ``inputs`` has the same length, listing them when not."""
    names = sorted(inputs)
    sizes = [tf.shape(inputs[name])[0] for name in names]
    parts = []
    for name, size in zip(names, sizes):
        parts += [f"{name} has ", tf.strings.as_string(size), ", "]
    message = tf.strings.join(["inputs have different batch lengths: ", *parts[:-1]])
    return tf.debugging.Assert(tf.reduce_all(tf.equal(tf.stack(sizes), sizes[0])), [message])
