"""Bad input rows: the reasons a file can be rejected, and messages that name the row and file.

Decoding happens inside ``tf.data`` graphs, where a Python ``try`` cannot reach. The pipeline decodes
without guards and notices a bad row only when it fails (``mmkeras.data.pipeline``); ``diagnose_file``
then says why, with cheap checks first (exists, readable, empty, too large, file signature) and a
decode last, under ``attempt``, which runs a function on a one-element dataset with ``ignore_errors``
and falls back to a default. The same reasons are used by ``mmkeras.data.validate``.

Example:
    >>> float(attempt(lambda x: tf.strings.to_number(x), tf.constant("oops"), tf.constant(-1.0)))
    -1.0
    >>> describe_reason("image", "not an image")
    'is not a decodable image'
"""

from __future__ import annotations

import contextlib
import re

import tensorflow as tf

from mmkeras.data import audio as audio_lib
from mmkeras.data import image as image_lib

OK = ""
MISSING = "missing"
UNREADABLE = "unreadable"
NOT_AN_IMAGE = "not an image"
NOT_A_WAV = "not a WAV"
EMPTY = "empty"
TOO_LARGE = "too large"
REASONS = (MISSING, UNREADABLE, NOT_AN_IMAGE, NOT_A_WAV, EMPTY, TOO_LARGE)
MARKER = "mmkeras data error: "


class DataError(ValueError):
    """A row of a manifest cannot be used; the message names the manifest, row, column and file."""


def describe_reason(modality: str, reason: str, max_bytes: int = 0) -> str:
    """The sentence fragment that follows the file name in an error message."""
    return {
        MISSING: "does not exist",
        UNREADABLE: "cannot be read",
        EMPTY: "is an empty file",
        TOO_LARGE: f"is larger than max_bytes={max_bytes}",
        NOT_AN_IMAGE: "is not a decodable image",
        NOT_A_WAV: "is not a decodable WAV file (PCM RIFF/WAVE)",
    }[reason]


def attempt(fn, value, fallback):
    """``fn(value)``, or ``fallback`` when ``fn`` raises a TF runtime error (works inside graphs)."""
    return (
        tf.data.Dataset.from_tensors(value)
        .map(fn)
        .ignore_errors()
        .concatenate(tf.data.Dataset.from_tensors(fallback))
        .take(1)
        .get_single_element()
    )


def diagnose_file(value: tf.Tensor, feature, is_path: bool) -> tf.Tensor:
    """Scalar string: the reason (one of ``REASONS``) a non-empty cell is bad, or "" if it decodes.

    Args:
        value: the file path (``is_path``) or the file bytes (rows read from TFRecords).
        feature: the column's ``ImageFeature`` or ``AudioFeature``.
    """
    image = feature.modality == "image"
    wrong_format = NOT_AN_IMAGE if image else NOT_A_WAV

    def decodes(contents):
        if image:
            return tf.reduce_all(tf.math.is_finite(image_lib.decode(contents, feature)))
        return tf.reduce_all(tf.math.is_finite(audio_lib.decode(contents, feature)))

    def check_bytes(contents):
        size = tf.strings.length(contents)
        header_ok = image_lib.looks_like_image(contents) if image else audio_lib.looks_like_wav(contents)
        return tf.case(
            [
                (tf.equal(size, 0), lambda: tf.constant(EMPTY)),
                (size > feature.max_bytes, lambda: tf.constant(TOO_LARGE)),
                (tf.logical_not(header_ok), lambda: tf.constant(wrong_format)),
                (tf.logical_not(attempt(decodes, contents, False)), lambda: tf.constant(wrong_format)),
            ],
            default=lambda: tf.constant(OK),
            exclusive=False,
        )

    if not is_path:
        return check_bytes(value)
    exists = attempt(lambda p: tf.size(tf.io.matching_files(p)) > 0, value, False)
    contents, readable = attempt(lambda p: (tf.io.read_file(p), True), value, (tf.constant(""), False))
    return tf.case(
        [
            (tf.logical_not(exists), lambda: tf.constant(MISSING)),
            (tf.logical_not(readable), lambda: tf.constant(UNREADABLE)),
        ],
        default=lambda: check_bytes(contents),
        exclusive=False,
    )


def explain(error: BaseException):
    """The mmkeras message inside a TensorFlow error raised by the pipeline, or None."""
    match = re.search(re.escape(MARKER) + r"(.*?)(?:\]|\n|$)", str(error))
    if match is None:
        return None
    # The Assert op prints string data with quotes escaped.
    return match.group(1).replace("\\'", "'").replace('\\"', '"')


@contextlib.contextmanager
def data_errors(config=None, preprocessor=None, splits=("train", "validation")):
    """Turn a pipeline failure (a bad file met while training) into a ``DataError`` with a clean message.

    With ``on_error: raise`` the pipeline decodes without guards, so TensorFlow's error does not say
    which row failed; given the ``config`` and the adapted ``preprocessor``, the ``splits`` (those
    that are set) are then scanned in manifest order and the first bad row is named. An error that
    no row explains is raised unchanged.

    Example:
        ``with data_errors(config, preprocessor): model.fit(dataset)`` raises ``DataError("train.csv
        row 17, column image: 'images/a.png' is not a decodable image")`` instead of a TensorFlow trace.
    """
    def find():
        from mmkeras.data import pipeline  # the pipeline imports this module

        data = pipeline.data_section(config)
        return pipeline.first_bad_row([pipeline.split_path(config, s) for s in splits if getattr(data, s)],
                                      preprocessor)

    with explained(find if config is not None and preprocessor is not None else None):
        yield


@contextlib.contextmanager
def explained(find=None):
    """Raise a TensorFlow error met inside as a ``DataError``: the mmkeras message it carries, else
    the message ``find()`` returns (None: the error is raised unchanged)."""
    try:
        yield
    except tf.errors.OpError as error:
        message = explain(error)
        if message is None and find is not None:
            message = find()
        if message is None:
            raise
        raise DataError(message) from None
