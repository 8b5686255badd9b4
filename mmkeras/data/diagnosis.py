"""Why a row is bad, in one sentence that names the manifest row, the column and the file.

The training pipeline decodes without guards (``on_error: raise``: a good row pays nothing for
error handling) and only when a pass fails does ``data_errors`` look for the first bad row and say
why. The verdict on a file is the same everywhere: first the file itself (``does not exist``,
``cannot be read``, ``is an empty file``), then its column's ``problems`` check on the bytes (the
check the serving signature runs), then the decode itself (``column.corrupt``). ``validate`` lists
every bad cell with these sentences; ``decoded_rows`` applies ``data.on_error``, reporting each
skipped row once (``SkipLog``) with one running count.

Example:
    >>> log = SkipLog()
    >>> log.report(b"train.csv row 3, column image: 'a.png' does not exist")  # printed to stderr
    "mmkeras: skipped train.csv row 3, column image: 'a.png' does not exist (1 row dropped so far)"
    >>> log.report(b"train.csv row 3, column image: 'a.png' does not exist") is None  # reported already
    True
"""

from __future__ import annotations

import contextlib
import sys
from typing import Optional

import tensorflow as tf

from mmkeras.data import rows as rows_lib
from mmkeras.data.columns.bytes import attempt
from mmkeras.data.errors import MARKER, explain, explained
from mmkeras.data.rows import CELL_PREFIX, LABEL_KEY, describe
from mmkeras.data.schema import PRESENCE_SUFFIX

MISSING = "does not exist"
UNREADABLE = "cannot be read"
EMPTY = "is an empty file"
# The dataset functions use tf.cond / tf.while_loop explicitly; skipping AutoGraph's source
# transformation cuts building a dataset from seconds to a fraction of one.
graph_function = tf.autograph.experimental.do_not_convert


class SkipLog:
    """Rows dropped by ``on_error: skip``: each reported once, with a count kept across passes."""

    def __init__(self):
        self.seen: set = set()

    @property
    def count(self) -> int:
        return len(self.seen)

    def report(self, message, row=None):
        """Print ``message`` (and return the line) unless ``row`` (default: the message) was reported before."""
        message = message.decode("utf-8") if isinstance(message, bytes) else str(message)
        row = message if row is None else row
        if row in self.seen:
            return
        self.seen.add(row)
        plural = "" if self.count == 1 else "s"
        line = f"mmkeras: skipped {message} ({self.count} row{plural} dropped so far)"
        print(line, file=sys.stderr)
        return line


def file_problem(value: tf.Tensor, column, is_path: bool) -> tf.Tensor:
    """Scalar string: why a non-empty cell of ``column`` is unusable ("" when it decodes).

    Args:
        value: the file path (``is_path``) or the file bytes (rows read from TFRecords).
        column: the cell's ``mmkeras.data.columns`` column.
    """
    def check_bytes(contents):
        problem = column.problems(contents[None])[0]
        decodes = attempt(lambda c: tf.reduce_all(tf.math.is_finite(tf.cast(column.decode(c), tf.float32))),
                          contents, tf.constant(False))
        return tf.case([(tf.not_equal(problem, ""), lambda: problem),
                        (tf.equal(tf.strings.length(contents), 0), lambda: tf.constant(EMPTY)),
                        (tf.logical_not(decodes), lambda: tf.constant(column.corrupt))],
                       default=lambda: tf.constant(""), exclusive=False)

    if not is_path:
        return check_bytes(value)
    exists = attempt(lambda p: tf.size(tf.io.matching_files(p)) > 0, value, False)
    contents, readable = attempt(lambda p: (tf.io.read_file(p), True), value, (tf.constant(""), False))
    return tf.case([(tf.logical_not(exists), lambda: tf.constant(MISSING)),
                    (tf.logical_not(readable), lambda: tf.constant(UNREADABLE))],
                   default=lambda: check_bytes(contents), exclusive=False)


def cell_problems(row: dict, preprocessor, is_path: bool, columns=None) -> dict:
    """``{column: problem}`` for the file columns of a row (empty cells pass)."""
    out = {}
    for name, column in preprocessor.columns.items():
        if column.reads_files and (columns is None or name in columns):
            value = row[name]
            out[name] = tf.cond(tf.strings.length(value) > 0, lambda v=value, c=column: file_problem(v, c, is_path),
                                lambda: tf.constant(""))
    return out


def describe_bad_row(row: dict, preprocessor, is_path: bool, columns=None) -> tf.Tensor:
    """Why the row failed: ``train.csv row 17, column image: 'a.png' is not ...`` (or its label)."""
    origin = describe(row)
    message = tf.constant("")
    for name, problem in reversed(list(cell_problems(row, preprocessor, is_path, columns).items())):
        sentence = tf.strings.join([origin, f", column {name}: '", row[CELL_PREFIX + name], "' ", problem])
        message = tf.where(tf.equal(problem, ""), message, sentence)  # the first bad column wins
    label = row[LABEL_KEY]
    label_sentence = tf.where(
        tf.equal(label, ""),
        tf.strings.join([origin, f": the label column {preprocessor.label!r} is empty"]),
        tf.strings.join([origin, f", column {preprocessor.label}: label '", label,
                         f"' is not one of the {preprocessor.num_classes} classes of the train split"]))
    fallback = tf.where(preprocessor.encode_label(label) < 0, label_sentence,
                        tf.strings.join([origin, ": the row could not be preprocessed"]))
    return tf.where(tf.equal(message, ""), fallback, message)


def _checked(rows: tf.data.Dataset, preprocessor, is_path: bool, columns, handle) -> tf.data.Dataset:
    """Decode ``rows``, letting ``handle(row, message)`` (returning an op) deal with each bad row.

    A bad row (a file that cannot be read or decoded, an unknown label) makes its map call fail;
    ``ignore_errors`` drops it and a ``scan`` that knows which position comes next sees the gap.
    Only then are the missing rows read again and diagnosed, so a good row pays no guarded decode.
    A sentinel after the last row (no files, a known label) catches bad rows at the end.
    """
    sentinel = {key: tf.zeros(spec.shape, spec.dtype) for key, spec in rows.element_spec.items()}
    sentinel[LABEL_KEY] = tf.constant(preprocessor.class_names[0] if preprocessor.class_names else "")

    @graph_function
    def load(position, element):
        row, end = element
        decoded, label = preprocessor.read_and_decode(row, is_path, columns)
        return position, decoded, label, end

    @graph_function
    def check(expected, element):
        position, decoded, label, end = element

        def report(first):
            def one(j):
                bad = rows.skip(j).take(1).get_single_element()
                with tf.control_dependencies([handle(bad, describe_bad_row(bad, preprocessor, is_path, columns))]):
                    return j + 1

            return tf.while_loop(lambda j: j < position, one, (first,))[0]

        with tf.control_dependencies([tf.cond(position > expected, lambda: report(expected), lambda: expected)]):
            return position + 1, (decoded, label, end)

    return (rows.map(lambda row: (row, False)).concatenate(tf.data.Dataset.from_tensors((sentinel, True)))
            .enumerate().map(load, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors()
            .scan(tf.constant(0, tf.int64), check)
            .filter(lambda decoded, label, end: tf.logical_not(end))
            .map(lambda decoded, label, end: (decoded, label)))


def decoded_rows(source, preprocessor, on_error: str = "raise", shuffle_seed: Optional[int] = None,
                 columns=None, keep_rows=None) -> tf.data.Dataset:
    """Rows read and decoded in parallel: ``(decoded, label)``; bad rows raised or skipped.

    ``raise`` decodes with a plain parallel map: a bad row stops the pass with TensorFlow's own error,
    which ``data_errors`` turns into a ``DataError`` naming the row. ``skip`` drops bad rows and
    reports each once through ``preprocessor.skip_log``. ``columns`` limits the work to those columns,
    ``keep_rows`` (row numbers, ``mmkeras.data.rows.labelled_rows``) to those rows.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"data.on_error={on_error!r} is not valid; choose one of: 'raise', 'skip'")
    rows, is_path = preprocessor.rows(source, shuffle_seed=shuffle_seed, columns=columns, keep_rows=keep_rows)
    if on_error == "raise":
        load = graph_function(lambda row: preprocessor.read_and_decode(row, is_path, columns))
        return rows.map(load, num_parallel_calls=tf.data.AUTOTUNE)

    def report(row, message):
        # One report per row, even when passes over different columns describe it differently.
        return tf.py_function(lambda m, r: len(preprocessor.skip_log.report(m.numpy(), r.numpy()) or ""),
                              [message, describe(row)], tf.int32)

    return _checked(rows, preprocessor, is_path, columns, report)


class ColumnReader:
    """What ``Column.adapt`` reads of the train split: a column's raw cells, or its decoded values
    (read and decoded for that column alone, with ``data.on_error`` applied)."""

    def __init__(self, source, preprocessor, cells: dict):
        self.source, self.preprocessor, self._cells = source, preprocessor, cells

    def cells(self, column: str) -> list:
        return self._cells[column]

    def decoded(self, column: str) -> tf.data.Dataset:
        dataset = decoded_rows(self.source, self.preprocessor, self.preprocessor.on_error, columns=[column])
        return dataset.map(lambda decoded, label: (decoded[column], decoded[column + PRESENCE_SUFFIX]))


def first_bad_row(sources: list, preprocessor) -> Optional[str]:
    """The message naming the first bad row of the first of ``sources`` that has one, or None.

    A full decoding pass (no training, no cache): what ``data_errors`` runs after a failure.
    """
    def stop(row, message):
        return tf.debugging.Assert(False, [tf.strings.join([MARKER, message])])

    for source in sources:
        rows, is_path = preprocessor.rows(source)
        try:
            _checked(rows, preprocessor, is_path, None, stop).reduce(0, lambda count, *element: count + 1)
        except tf.errors.OpError as error:
            message = explain(error)
            if message is not None:
                return message
    return None


@contextlib.contextmanager
def data_errors(config=None, preprocessor=None, splits=("train", "validation")):
    """Turn a pipeline failure (a bad file met while training) into a ``DataError`` with a clean message.

    Given the ``config`` and the adapted ``preprocessor``, the ``splits`` (those that are set) are
    scanned in manifest order after a failure and the first bad row is named. An error that no row
    explains is raised unchanged.

    Example:
        ``with data_errors(config, preprocessor): model.fit(dataset)`` raises ``DataError("train.csv
        row 17, column image: 'images/a.png' is not a PNG/JPEG/GIF/BMP/WebP image")`` instead of a trace.
    """
    def find():
        data = rows_lib.data_section(config)
        return first_bad_row([rows_lib.split_path(config, s) for s in splits if getattr(data, s)], preprocessor)

    with explained(find if config is not None and preprocessor is not None else None):
        yield
