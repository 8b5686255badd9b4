"""The shape of a raw serving request, checked before any input is read.

The ``serving_default`` signature declares each input ``tf.string [None]``, but neither a loaded
signature nor TF Serving enforces the rank: a scalar or a ``[B, 1]`` tensor would reach the
decoders and fail with a message that names no input. And the per-element checks and the model
need at least one example, so an empty request (every input of length 0) is answered directly.

Example:
    >>> serve = tf.function(lambda inputs: answer_empty_batch(
    ...     assert_rank_1(inputs), lambda x: tf.strings.length(x["text"]), lambda: tf.zeros([0], tf.int32)))
    >>> serve({"text": tf.constant(["ab", "c"])}).numpy().tolist()
    [2, 1]
    >>> serve({"text": tf.constant([], tf.string)}).numpy().tolist()
    []
    >>> try:
    ...     serve({"text": tf.constant([["ab"]])})
    ... except tf.errors.InvalidArgumentError as error:
    ...     print(error.message.split("assertion failed: [")[1].split("]\\n")[0])
    text must be a 1-D list of strings, one per example; got shape [1, 1]
"""

from __future__ import annotations

import tensorflow as tf


def assert_rank_1(inputs: dict) -> dict:
    """``inputs``, each gated by an Assert that it is 1-D (one string per example), naming it when not.

    The rank is read from the runtime shape padded with -1: ``tf.rank`` would be constant-folded
    from the declared ``[None]`` and never fail.
    """
    gated = {}
    for name, value in inputs.items():
        shape = tf.shape(value)
        padded = tf.concat([shape, [-1, -1]], 0)
        shown = tf.strings.reduce_join(tf.strings.as_string(shape), separator=", ")
        message = tf.strings.join([f"{name} must be a 1-D list of strings, one per example; got shape [", shown, "]"])
        check = tf.debugging.Assert((padded[0] >= 0) & tf.equal(padded[1], -1), [message])
        with tf.control_dependencies([check]):
            gated[name] = tf.identity(value)
    return gated


def answer_empty_batch(inputs: dict, serve, empty):
    """``empty()`` when every input has length 0, else ``serve(inputs)``."""
    sizes = tf.stack([tf.size(value) for value in inputs.values()])
    return tf.cond(tf.reduce_all(tf.equal(sizes, 0)), empty, lambda: serve(inputs))
