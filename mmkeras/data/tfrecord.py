"""Sharded TFRecords of encoded examples: raw file bytes, text and label, read back as manifest rows.

Each record is a ``tf.train.Example`` with one bytes feature per column (the text of a text
column, the encoded file of an image or audio column, the label string), the file name as written
in the manifest (``_cell:<column>``, for error messages) and ``_origin`` (``train.csv row 17``).
Rows go to shards round-robin, so reading the shards interleaved gives back the manifest order.
Pointing ``data.train`` at ``dir/train-*.tfrecord`` (a glob or a ``.tfrecord`` path) makes
``build_dataset`` read them through the same ``Preprocessor.preprocess``.

Example:
    >>> is_tfrecord_path("data/train-*.tfrecord"), is_tfrecord_path("data/train.csv")
    (True, False)
"""

from __future__ import annotations

import logging
import posixpath
from typing import Optional

import tensorflow as tf

from mmkeras.data.errors import DataError
from mmkeras.data.manifest import Manifest, read_manifest

logger = logging.getLogger(__name__)
ORIGIN_KEY = "_origin"
CELL_PREFIX = "_cell:"


def is_tfrecord_path(path) -> bool:
    """True for a ``.tfrecord``/``.tfrecords`` file or a glob of them."""
    return isinstance(path, str) and ".tfrecord" in posixpath.basename(path).lower()


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _read_file(manifest: Manifest, number: int, column: str, cell: str) -> bytes:
    path = manifest.resolve(cell)
    where = f"{manifest.name} row {number}, column {column}: {cell!r}"
    if not tf.io.gfile.exists(path):
        raise DataError(f"{where} does not exist")
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    except (tf.errors.OpError, OSError) as error:
        raise DataError(f"{where} cannot be read ({error})") from None


def write_tfrecords(source, split: str, out_dir: str, num_shards: int = 4,
                    features: Optional[dict] = None, label: Optional[str] = None) -> list:
    """Write ``split`` as ``out_dir/{split}-0000i-of-0000n.tfrecord``; returns the shard paths.

    Args:
        source: a ``Config`` or ``DataConfig`` (the split's manifest, features and label are taken
            from it), or a manifest path / ``Manifest`` together with ``features`` and ``label``.
        split: ``"train"``, ``"validation"`` or ``"test"`` (also the file prefix).
        num_shards: number of files; rows are dealt round-robin.
    """
    from mmkeras.data import pipeline  # config helpers live there

    on_error = "raise"
    if isinstance(source, (str, Manifest)):
        if features is None or label is None:
            raise ValueError("write_tfrecords(manifest, ...) needs features= and label= (or pass a config)")
        manifest = source if isinstance(source, Manifest) else read_manifest(source)
    else:
        data = pipeline.data_section(source)
        features, label, on_error = data.features, data.label, data.on_error
        manifest = read_manifest(pipeline.split_path(source, split))
    manifest.require(list(features) + [label])
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    file_columns = [c for c, f in features.items() if f.modality in ("image", "audio")]
    tf.io.gfile.makedirs(out_dir)
    paths = [posixpath.join(out_dir, f"{split}-{i:05d}-of-{num_shards:05d}.tfrecord") for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    skipped = written = 0
    try:
        for number, row in enumerate(manifest.rows, start=1):
            values = {ORIGIN_KEY: f"{manifest.name} row {number}".encode(), label: row[label].encode()}
            try:
                for column in features:
                    cell = row[column]
                    if column in file_columns:
                        values[CELL_PREFIX + column] = cell.encode()
                        values[column] = _read_file(manifest, number, column, cell) if cell else b""
                    else:
                        values[column] = cell.encode()
            except DataError as error:
                if on_error == "raise":
                    raise
                skipped += 1
                logger.warning("skipped %s (%d rows dropped so far)", error, skipped)
                continue
            example = tf.train.Example(features=tf.train.Features(
                feature={k: _bytes_feature(v) for k, v in values.items()}))
            writers[written % num_shards].write(example.SerializeToString())
            written += 1
    finally:
        for writer in writers:
            writer.close()
    return paths


def list_shards(pattern: str) -> list:
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no TFRecord files match {pattern}")
    return files


def read_rows(pattern: str, features: dict, label: str) -> tf.data.Dataset:
    """The records of ``pattern`` as row dicts: ``{column: bytes or text, "_label", "_origin", "_cell:c"}``."""
    files = list_shards(pattern)
    spec = {ORIGIN_KEY: tf.io.FixedLenFeature([], tf.string, default_value=""),
            label: tf.io.FixedLenFeature([], tf.string, default_value="")}
    for column, feature in features.items():
        spec[column] = tf.io.FixedLenFeature([], tf.string, default_value="")
        if feature.modality in ("image", "audio"):
            spec[CELL_PREFIX + column] = tf.io.FixedLenFeature([], tf.string, default_value="")

    def parse(record):
        row = tf.io.parse_single_example(record, spec)
        row["_label"] = row.pop(label)
        return row

    # Interleaving the shards one record at a time restores the round-robin (manifest) order.
    records = tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, cycle_length=len(files), block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def count_records(pattern: str) -> int:
    """Number of records in the shards matching ``pattern``."""
    return sum(1 for f in list_shards(pattern) for _ in tf.data.TFRecordDataset(f))
