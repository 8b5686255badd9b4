"""``DataError`` and the way an mmkeras sentence travels out of a TensorFlow graph.

Decoding happens inside ``tf.data`` graphs, where a Python ``try`` cannot reach. A check that knows
what is wrong fails with ``tf.debugging.Assert`` and a message that starts with ``MARKER``;
``explain`` finds that sentence in the TensorFlow error, and ``explained`` re-raises it as a
``DataError`` (or asks a ``find`` function, e.g. ``mmkeras.data.diagnosis.first_bad_row``, for one).

Example:
    >>> try:
    ...     with explained():
    ...         tf.debugging.Assert(False, [MARKER + "train.csv row 2: the label column 'label' is empty"])
    ... except DataError as error:
    ...     print(error)
    train.csv row 2: the label column 'label' is empty
"""

from __future__ import annotations

import contextlib
import re

import tensorflow as tf

MARKER = "mmkeras data error: "


class DataError(ValueError):
    """A row of a manifest cannot be used; the message names the manifest, row, column and file."""


def explain(error: BaseException):
    """The mmkeras message inside a TensorFlow error raised by the pipeline, or None."""
    # Graph-mode Asserts print the string bare, eager ones in quotes: the closing quote is not ours.
    match = re.search(r"([\"']?)" + re.escape(MARKER) + r"(.*?)\1(?:\]|\n|$)", str(error))
    if match is None:
        return None
    # The Assert op prints string data with quotes escaped.
    return match.group(2).replace("\\'", "'").replace('\\"', '"')


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
