"""TFRecords: write a manifest's rows with their file bytes inside, for fast sequential reads.

Each ``tf.train.Example`` has one bytes feature per column (the text of a text column, the encoded
file of an image or audio column, the label string), the file name as written in the manifest
(``_cell:<column>``, for error messages), the manifest's name (``_source``) and the data row number
(``_row``), so errors about a record still name ``train.csv row 17``. Rows go to shards round-robin,
so reading the shards interleaved gives back the manifest order (``mmkeras.data.rows.read_records``).
Pointing ``data.train`` at ``dir/train-*.tfrecord`` (a glob or a ``.tfrecord`` path) makes
``build_dataset`` read them through the same ``Preprocessor``.

Example:
    >>> is_tfrecord_path("data/train-*.tfrecord"), is_tfrecord_path("data/train.csv")
    (True, False)
"""

from __future__ import annotations

import logging
import posixpath
from typing import Optional

import tensorflow as tf

from mmkeras.data.columns import COLUMNS
from mmkeras.data.errors import DataError
from mmkeras.data.manifest import Manifest, read_manifest
from mmkeras.data.rows import (CELL_PREFIX, ROW_KEY, SOURCE_KEY, data_section, is_tfrecord_path,
                               split_path)

logger = logging.getLogger(__name__)
__all__ = ["is_tfrecord_path", "write_tfrecords"]


def _feature(value) -> tf.train.Feature:
    if isinstance(value, int):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
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
    on_error = "raise"
    if isinstance(source, (str, Manifest)):
        if features is None or label is None:
            raise ValueError("write_tfrecords(manifest, ...) needs features= and label= (or pass a config)")
        manifest = source if isinstance(source, Manifest) else read_manifest(source)
    else:
        data = data_section(source)
        features, label, on_error = data.features, data.label, data.on_error
        manifest = read_manifest(split_path(source, split))
    manifest.require(list(features) + [label])
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    file_columns = [c for c, f in features.items() if COLUMNS[f.modality].reads_files]
    tf.io.gfile.makedirs(out_dir)
    paths = [posixpath.join(out_dir, f"{split}-{i:05d}-of-{num_shards:05d}.tfrecord") for i in range(num_shards)]
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    skipped = written = 0
    try:
        for number, row in enumerate(manifest.rows, start=1):
            values = {SOURCE_KEY: manifest.name.encode(), ROW_KEY: number, label: row[label].encode()}
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
                feature={k: _feature(v) for k, v in values.items()}))
            writers[written % num_shards].write(example.SerializeToString())
            written += 1
    finally:
        for writer in writers:
            writer.close()
    return paths
