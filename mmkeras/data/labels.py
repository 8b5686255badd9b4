"""The classes of a run: label strings sorted once on the train split, looked up in a TF table.

Example:
    >>> sort_class_names(["10", "9", "2", "9"])
    ['2', '9', '10']
    >>> table = LabelTable(["cat", "dog"])
    >>> table.encode(tf.constant(["dog", "cow"])).numpy().tolist()
    [1, -1]
"""

from __future__ import annotations

from typing import Iterable

import tensorflow as tf


def sort_class_names(labels: Iterable[str]) -> list:
    """Unique labels, sorted numerically when every label is a number, else alphabetically."""
    unique = set(labels)
    try:
        return sorted(unique, key=float)
    except ValueError:
        return sorted(unique)


class LabelTable(tf.Module):
    """Label string -> class index (-1 for a label the train split did not have), as TF ops."""

    def __init__(self, class_names: list, name: str = "labels"):
        super().__init__(name=name)
        self.class_names = tuple(str(c) for c in class_names)  # a tuple: tf.Module would wrap a list
        keys = tf.constant(list(self.class_names) or [""], tf.string)
        values = tf.range(len(self.class_names), dtype=tf.int64) if self.class_names else tf.constant([-1], tf.int64)
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1)

    def encode(self, label: tf.Tensor) -> tf.Tensor:
        """Label string(s) (or numbers, read as their decimal text) -> int32 class index."""
        label = tf.convert_to_tensor(label)
        if label.dtype != tf.string:
            label = tf.strings.as_string(label)
        return tf.cast(self.table.lookup(label), tf.int32)
