"""Rows: a split's manifest (CSV / JSONL) or TFRecord shards as ``tf.data`` dicts, one per example.

Every row dict has the label (``LABEL_KEY``), the manifest it came from (``SOURCE_KEY``, e.g.
``train.csv``) and its 1-based data row number (``ROW_KEY``, int64), so every message about a row
can say ``train.csv row 17``. Feature cells are strings: the text of a text cell; for a file column
the file path made absolute against the manifest (rows from TFRecords hold the file's bytes), with
the cell as written in the manifest under ``CELL_PREFIX + column`` for messages.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "train.csv"), "w") as f:
    ...     _ = f.write("text,label\\nred apple,fruit\\nblue car,vehicle\\n")
    >>> rows, is_path = row_dataset(os.path.join(folder, "train.csv"), {"text": False}, "label")
    >>> row = next(iter(rows))
    >>> row["text"].numpy(), int(row[ROW_KEY]), row[SOURCE_KEY].numpy(), is_path
    (b'red apple', 1, b'train.csv', True)
    >>> describe(row).numpy()
    b'train.csv row 1'
"""

from __future__ import annotations

import posixpath
from typing import Optional

import numpy as np
import tensorflow as tf

from mmkeras.data.manifest import Manifest, read_manifest

SPLITS = ("train", "validation", "test")
LABEL_KEY = "_label"
SOURCE_KEY = "_source"
ROW_KEY = "_row"
CELL_PREFIX = "_cell:"


# ---------------------------------------------------------------------- where the splits are
def data_section(config):
    """The ``DataConfig`` of a ``Config`` (or the ``DataConfig`` itself)."""
    return config.data if hasattr(config, "data") else config


def split_path(config, split: str) -> str:
    """The split's manifest or TFRecord path, made absolute against the config file."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    path = getattr(data_section(config), split)
    if not path:
        raise ValueError(f"data.{split} is not set in the config")
    return config.resolve_path(path) if hasattr(config, "resolve_path") else path


def is_tfrecord_path(path) -> bool:
    """True for a ``.tfrecord``/``.tfrecords`` file or a glob of them."""
    return isinstance(path, str) and ".tfrecord" in posixpath.basename(path).lower()


def describe(row: dict) -> tf.Tensor:
    """``"<manifest> row <n>"`` for a row dict (the start of every message about it)."""
    return tf.strings.join([row[SOURCE_KEY], " row ", tf.strings.as_string(row[ROW_KEY])])


# ---------------------------------------------------------------------- manifests
def open_manifest(source, columns, label: str) -> Manifest:
    """The manifest ``source`` (a path or a ``Manifest``), checked to hold ``columns`` and ``label``."""
    manifest = source if isinstance(source, Manifest) else read_manifest(source)
    manifest.require(list(columns) + [label])
    return manifest


def read_cells(source, columns: list, label: str, file_columns=()) -> tuple:
    """``(name, rows)``: the label and ``columns`` cells of every row, without reading any file."""
    if is_tfrecord_path(source):
        rows = []
        for row in read_records(source, {c: c in file_columns for c in columns}, label):
            cells = {c: row[c].numpy().decode("utf-8") for c in columns}
            cells[label] = row[LABEL_KEY].numpy().decode("utf-8")
            rows.append(cells)
        return source, rows
    manifest = open_manifest(source, columns, label)
    return manifest.name, [{c: row[c] for c in [*columns, label]} for row in manifest.rows]


def row_dataset(source, columns: dict, label: str, shuffle_seed: Optional[int] = None, keep_rows=None) -> tuple:
    """``(dataset, is_path)``: one dict per row; ``columns`` maps each feature column to whether its
    cells name files. File cells hold paths (manifests, ``is_path``) or the bytes (TFRecords).

    With ``shuffle_seed``, a manifest's rows come in a seeded random order, the same every time
    (manifests are often sorted by class; mixing the cheap rows once keeps the first epoch mixed).
    With ``keep_rows`` (row numbers, e.g. ``labelled_rows``), only those rows, in the same order.
    """
    if is_tfrecord_path(source):
        return keep_only(read_records(source, columns, label), keep_rows), False
    manifest = open_manifest(source, columns, label)
    count = len(manifest)
    values = {LABEL_KEY: manifest.column(label), SOURCE_KEY: [manifest.name] * count}
    for column, reads_files in columns.items():
        cells = manifest.column(column)
        if reads_files:
            values[CELL_PREFIX + column] = cells
            cells = [manifest.resolve(cell) for cell in cells]
        values[column] = cells
    numbers = np.arange(1, count + 1, dtype=np.int64)
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(count)
        values = {k: [v[i] for i in order] for k, v in values.items()}
        numbers = numbers[order]
    tensors = {k: tf.constant(v, tf.string, shape=[count]) for k, v in values.items()}
    tensors[ROW_KEY] = tf.constant(numbers, tf.int64, shape=[count])
    return keep_only(tf.data.Dataset.from_tensor_slices(tensors), keep_rows), True


def read_files(row: dict, columns: dict, is_path: bool) -> dict:
    """``{column: cell}`` of a row with each named file read (``columns``: column -> reads files).

    An empty file named in the manifest fails (a TF error the diagnosis explains): it is an error,
    not a missing modality.
    """
    raw = {}
    for column, reads_files in columns.items():
        value = row[column]
        if reads_files:
            if is_path:
                value = tf.cond(tf.strings.length(value) > 0, lambda v=value: tf.io.read_file(v), lambda: tf.constant(""))
            named = tf.strings.length(row[CELL_PREFIX + column]) > 0
            usable = tf.logical_or(tf.strings.length(value) > 0, tf.logical_not(named))
            with tf.control_dependencies([tf.debugging.Assert(usable, ["empty file"])]):
                value = tf.identity(value)
        raw[column] = value
    return raw


# ---------------------------------------------------------------------- TFRecords
def list_shards(pattern: str) -> list:
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no TFRecord files match {pattern}")
    return files


def record_spec(columns: dict, label: str) -> dict:
    """The ``tf.io.parse_single_example`` spec of the records ``write_tfrecords`` writes."""
    spec = {SOURCE_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
            ROW_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=0),
            label: tf.io.FixedLenFeature([], tf.string, default_value="")}
    for column, reads_files in columns.items():
        spec[column] = tf.io.FixedLenFeature([], tf.string, default_value="")
        if reads_files:
            spec[CELL_PREFIX + column] = tf.io.FixedLenFeature([], tf.string, default_value="")
    return spec


def read_records(pattern: str, columns: dict, label: str) -> tf.data.Dataset:
    """The records of ``pattern`` as row dicts (same keys as ``row_dataset``'s)."""
    files = list_shards(pattern)
    spec = record_spec(columns, label)

    def parse(record):
        row = tf.io.parse_single_example(record, spec)
        row[LABEL_KEY] = row.pop(label)
        return row

    # Interleaving the shards one record at a time restores the round-robin (manifest) order.
    records = tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, cycle_length=len(files), block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def count_rows(source) -> int:
    """Rows of a manifest, or records of TFRecord shards (before any ``on_error: skip`` drop)."""
    if is_tfrecord_path(source):
        return sum(1 for f in list_shards(source) for _ in tf.data.TFRecordDataset(f))
    return len(read_manifest(source))


# ---------------------------------------------------------------------- data.label_fraction
def label_subset(source, label: str, fraction: float, seed: int) -> np.ndarray:
    """The sorted row numbers of a seeded, per-class stratified subset of ``source``'s rows.

    Each class keeps ``max(1, round(fraction * rows of the class))`` rows (Python's ``round``),
    drawn with ``numpy.random.default_rng(seed)``; only the label column is read.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "train.csv")
        >>> with open(path, "w") as f:
        ...     _ = f.write("text,label\\n" + "".join(f"t{i},{'ab'[i % 2]}\\n" for i in range(8)))
        >>> kept = label_subset(path, "label", 0.5, seed=0)
        >>> len(kept), sorted(int(n) % 2 for n in kept)  # 2 rows of each class
        (4, [0, 0, 1, 1])
    """
    if is_tfrecord_path(source):
        pairs = read_records(source, {}, label).map(lambda row: (row[ROW_KEY], row[LABEL_KEY]))
        numbered = list(pairs.as_numpy_iterator())
        numbers = np.array([n for n, _ in numbered], np.int64)
        labels = np.array([value.decode("utf-8") for _, value in numbered], dtype=object)
    else:
        values = open_manifest(source, [], label).column(label)
        numbers, labels = np.arange(1, len(values) + 1, dtype=np.int64), np.array(values, dtype=object)
    rng = np.random.default_rng(seed)
    kept = [np.zeros([0], np.int64)]
    for value in sorted(set(labels)):
        members = numbers[labels == value]
        kept.append(rng.choice(members, max(1, round(fraction * len(members))), replace=False))
    return np.sort(np.concatenate(kept))


def labelled_rows(config) -> Optional[np.ndarray]:
    """The train rows training reads: ``label_subset`` of the train split with ``data.label_fraction``
    and ``data.seed``, or None (every row) when the fraction is 1.

    Example:
        >>> from types import SimpleNamespace
        >>> labelled_rows(SimpleNamespace(label_fraction=1.0)) is None
        True
    """
    data = data_section(config)
    if data.label_fraction >= 1:
        return None
    return label_subset(split_path(config, "train"), data.label, data.label_fraction, data.seed)


def keep_only(rows: tf.data.Dataset, keep_rows) -> tf.data.Dataset:
    """The row dicts of ``rows`` whose ``ROW_KEY`` is in ``keep_rows`` (all of them for None).

    Example:
        >>> rows = tf.data.Dataset.from_tensor_slices({ROW_KEY: tf.constant([3, 1, 2, 5], tf.int64)})
        >>> [int(row[ROW_KEY]) for row in keep_only(rows, [2, 3])]
        [3, 2]
    """
    if keep_rows is None:
        return rows
    keep_rows = np.asarray(keep_rows, np.int64)
    size = int(keep_rows.max(initial=0)) + 1
    mask = np.zeros([size], bool)
    mask[keep_rows] = True
    mask = tf.constant(mask)

    def kept(row):
        number = row[ROW_KEY]
        return tf.logical_and(number < size, tf.gather(mask, tf.clip_by_value(number, 0, size - 1)))

    return rows.filter(kept)
