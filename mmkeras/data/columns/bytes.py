"""In-graph readers of encoded files and the assertion every check ends in (pure TF ops).

The media checks of the column classes read headers with these helpers: a few bytes at an offset,
little- or big-endian integers, a four-character code. Reads past the end give zeros (or a short
string), so a truncated file is a verdict, never an op error. ``assert_no_problems`` turns a
``string[B]`` of verdicts ("" = fine) into one ``InvalidArgumentError`` naming the input and index.

Example:
    >>> uint(tf.constant(b"\\x01\\x02\\x03"), 0, 2, little_endian=True).numpy()
    513
    >>> four_cc(tf.constant(b"RIFF....WAVE"), 8).numpy()
    b'WAVE'
    >>> text_problems(tf.constant(["ok", b"\\xff"])).numpy().tolist()
    [b'', b'is not valid UTF-8 text']
    >>> float(attempt(lambda x: tf.strings.to_number(x), tf.constant("oops"), tf.constant(-1.0)))
    -1.0
"""

from __future__ import annotations

import tensorflow as tf


def size_of(contents: tf.Tensor) -> tf.Tensor:
    """int64 scalar: the length of a scalar string in bytes."""
    return tf.cast(tf.strings.length(contents, unit="BYTE"), tf.int64)


def read_bytes(contents: tf.Tensor, pos, count: int) -> tf.Tensor:
    """``int64[count]``: the bytes of a scalar string from ``pos``; zeros past its end."""
    pos = tf.cast(tf.clip_by_value(tf.cast(pos, tf.int64), 0, size_of(contents)), tf.int32)
    raw = tf.io.decode_raw(tf.strings.substr(contents, pos, count), tf.uint8)
    raw = tf.pad(raw, [[0, count - tf.shape(raw)[0]]])
    return tf.cast(raw, tf.int64)


def uint(contents: tf.Tensor, pos, count: int, little_endian: bool) -> tf.Tensor:
    """Unsigned integer of ``count`` bytes at ``pos`` (int64)."""
    weights = [256**i for i in range(count)]
    if not little_endian:
        weights = weights[::-1]
    return tf.reduce_sum(read_bytes(contents, pos, count) * tf.constant(weights, tf.int64))


def four_cc(contents: tf.Tensor, pos, count: int = 4) -> tf.Tensor:
    """The ``count`` bytes at ``pos`` as a string (shorter near the end, "" past it)."""
    pos = tf.clip_by_value(tf.cast(pos, tf.int64), 0, size_of(contents))
    return tf.strings.substr(contents, tf.cast(pos, tf.int32), count)


def text_problems(text: tf.Tensor) -> tf.Tensor:
    """``string[B]``: "is not valid UTF-8 text" for each string that is not, else ""."""
    repaired = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD)
    return tf.where(tf.equal(repaired, text), "", "is not valid UTF-8 text")


def assert_no_problems(name: str, problems: tf.Tensor):
    """An Assert that fails with ``"<name>[i] <problem>"`` for the first non-empty ``problems[i]``."""
    bad = tf.not_equal(problems, "")
    first = tf.argmax(tf.cast(bad, tf.int32), output_type=tf.int32)
    problem = tf.gather(tf.concat([problems, [""]], 0), first)
    message = tf.strings.join([name, "[", tf.strings.as_string(first), "] ", problem])
    return tf.debugging.Assert(tf.logical_not(tf.reduce_any(bad)), [message])


def attempt(fn, value, fallback):
    """``fn(value)``, or ``fallback`` when ``fn`` raises a TF runtime error (works inside graphs).

    A graph has no ``try``; a one-element dataset with ``ignore_errors`` is TensorFlow's own way to
    survive a failing op (a decoder meeting corrupt data). Costs about a dataset's set-up per call,
    so it serves diagnosis and single requests, not the training hot path.
    """
    return (
        tf.data.Dataset.from_tensors(value)
        .map(fn)
        .ignore_errors()
        .concatenate(tf.data.Dataset.from_tensors(fallback))
        .take(1)
        .get_single_element()
    )
