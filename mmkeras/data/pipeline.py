"""``build_dataset``: manifest (or TFRecords) -> ``tf.data.Dataset`` of ``(features, label)``.

Stages, in order: rows (paths and text, shuffled once when training) -> parallel read + decode
(``Preprocessor.decode``; a bad file is caught, see ``mmkeras.data.errors``) -> ``on_error``
(``raise``: stop with the row, column, file and reason; ``skip``: drop the row and log it with a
running count) -> cache (``data.cache``: ``memory``, ``none`` or a file path) -> shuffle (training,
seeded) -> ``Preprocessor.finish`` (audio features; augmentation when training, stateless and
seeded per example) -> ``batch(drop_remainder)`` -> prefetch.

Example:
    >>> import os, tempfile
    >>> from mmkeras.config import config_from_dict
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "train.csv"), "w") as f:
    ...     _ = f.write("text,label\\nred apple,fruit\\nblue car,vehicle\\ngreen pear,fruit\\n")
    >>> cfg = config_from_dict({"data": {"train": "train.csv", "label": "label",
    ...     "features": {"text": {"modality": "text", "sequence_length": 3}}}},
    ...     source=os.path.join(folder, "config.yaml"))
    >>> p = fit_preprocessor(cfg)
    >>> features, labels = next(iter(build_dataset(cfg, "train", p, training=False, batch_size=2)))
    >>> features["text"].shape, labels.numpy().tolist(), num_examples(cfg, "train")
    (TensorShape([2, 3]), [0, 1], 3)
"""

from __future__ import annotations

import sys
from typing import Optional

import tensorflow as tf

from mmkeras.config import Config, DataConfig
from mmkeras.data import errors, tfrecord
from mmkeras.data.manifest import Manifest, read_manifest
from mmkeras.data.preprocessor import Preprocessor

AUTOTUNE = tf.data.AUTOTUNE
SPLITS = ("train", "validation", "test")


# ---------------------------------------------------------------------- config helpers
def data_section(config) -> DataConfig:
    """The ``DataConfig`` of a ``Config`` (or the ``DataConfig`` itself)."""
    return config.data if isinstance(config, Config) else config


def split_path(config, split: str) -> str:
    """The split's manifest or TFRecord path, made absolute against the config file."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    path = getattr(data_section(config), split)
    if not path:
        raise ValueError(f"data.{split} is not set in the config")
    return config.resolve_path(path) if isinstance(config, Config) else path


def fit_preprocessor(config) -> Preprocessor:
    """A ``Preprocessor`` for the config, adapted on its train split."""
    preprocessor = Preprocessor.from_config(data_section(config))
    preprocessor.adapt(split_path(config, "train"))
    return preprocessor


def num_examples(config, split: str) -> int:
    """Rows in the split's manifest (records for TFRecords), before any ``on_error: skip`` drop."""
    path = split_path(config, split)
    if tfrecord.is_tfrecord_path(path):
        return tfrecord.count_records(path)
    return len(read_manifest(path))


# ---------------------------------------------------------------------- rows
def _open_manifest(source, preprocessor: Preprocessor) -> Manifest:
    manifest = source if isinstance(source, Manifest) else read_manifest(source)
    manifest.require(list(preprocessor.features) + [preprocessor.label])
    return manifest


def read_cells(source, preprocessor: Preprocessor, columns: list) -> tuple:
    """``(name, rows)``: the label and ``columns`` cells of every row, without reading files."""
    wanted = list(columns) + [preprocessor.label]
    if tfrecord.is_tfrecord_path(source):
        rows = []
        for row in tfrecord.read_rows(source, preprocessor.features, preprocessor.label):
            cells = {c: row[c].numpy().decode("utf-8") for c in columns}
            cells[preprocessor.label] = row["_label"].numpy().decode("utf-8")
            rows.append(cells)
        return source, rows
    manifest = _open_manifest(source, preprocessor)
    return manifest.name, [{c: row[c] for c in wanted} for row in manifest.rows]


def row_dataset(source, preprocessor: Preprocessor) -> tuple:
    """``(dataset, is_path)``: one dict per row; file columns hold paths (manifests) or bytes (TFRecords)."""
    if tfrecord.is_tfrecord_path(source):
        return tfrecord.read_rows(source, preprocessor.features, preprocessor.label), False
    manifest = _open_manifest(source, preprocessor)
    columns = {
        "_origin": [f"{manifest.name} row {i}" for i in range(1, len(manifest) + 1)],
        "_label": manifest.column(preprocessor.label),
    }
    for column in preprocessor.features:
        cells = manifest.column(column)
        if column in preprocessor.file_columns:
            columns[tfrecord.CELL_PREFIX + column] = cells
            cells = [manifest.resolve(cell) for cell in cells]
        columns[column] = cells
    columns = {k: tf.constant(v, tf.string, shape=[len(manifest)]) for k, v in columns.items()}
    return tf.data.Dataset.from_tensor_slices(columns), True


# ---------------------------------------------------------------------- decoding with diagnosis
def _read_and_decode(preprocessor: Preprocessor, is_path: bool):
    def load(row):
        raw = {}
        for column, feature in preprocessor.features.items():
            value = row[column]
            if column in preprocessor.file_columns:
                if is_path:
                    value = tf.cond(tf.strings.length(value) > 0,
                                    lambda v=value: tf.io.read_file(v), lambda: tf.constant(""))
                size = tf.strings.length(value)
                named = tf.strings.length(row[tfrecord.CELL_PREFIX + column]) > 0
                # An empty file named in the manifest is an error, not a missing modality.
                usable = tf.logical_and(size <= feature.max_bytes, tf.logical_or(size > 0, tf.logical_not(named)))
                with tf.control_dependencies([tf.debugging.Assert(usable, ["bad file"])]):
                    value = tf.identity(value)
            raw[column] = value
        return preprocessor.decode(raw), preprocessor.encode_label(row["_label"])

    return load


def _fallback(preprocessor: Preprocessor) -> tuple:
    decoded = {}
    for spec in preprocessor.input_specs:
        if spec.modality == "audio":
            decoded[spec.column] = tf.zeros([0], tf.float32)
        else:
            decoded[spec.column] = tf.zeros(spec.shape, spec.dtype)
        decoded[spec.presence_key] = tf.constant(0.0)
    return decoded, tf.constant(-1, tf.int32)


def _describe(row: dict, preprocessor: Preprocessor, is_path: bool) -> tf.Tensor:
    """Why the row failed, as a sentence naming the manifest row, column and file."""
    message = tf.constant("")
    for column in reversed(preprocessor.file_columns):  # the first bad column wins
        feature = preprocessor.features[column]
        value = row[column]
        reason = tf.cond(tf.strings.length(value) > 0,
                         lambda v=value, f=feature: errors.diagnose_file(v, f, is_path),
                         lambda: tf.constant(errors.OK))
        texts = [errors.describe_reason(feature.modality, r, feature.max_bytes) for r in errors.REASONS]
        index = tf.argmax(tf.cast(tf.equal(list(errors.REASONS), reason), tf.int32))
        sentence = tf.strings.join([row["_origin"], f", column {column}: '",
                                    row[tfrecord.CELL_PREFIX + column], "' ", tf.gather(texts, index)])
        message = tf.where(tf.equal(reason, errors.OK), message, sentence)
    label = row["_label"]
    label_sentence = tf.where(
        tf.equal(label, ""),
        tf.strings.join([row["_origin"], f": the label column {preprocessor.label!r} is empty"]),
        tf.strings.join([row["_origin"], f", column {preprocessor.label}: label '", label,
                         f"' is not one of the {preprocessor.num_classes} classes of the train split"]),
    )
    label_bad = preprocessor.encode_label(label) < 0
    fallback = tf.where(label_bad, label_sentence,
                        tf.strings.join([row["_origin"], ": the row could not be preprocessed"]))
    return tf.where(tf.equal(message, ""), fallback, message)


def decoded_dataset(source, preprocessor: Preprocessor, on_error: str = "raise",
                    shuffle_seed: Optional[int] = None) -> tf.data.Dataset:
    """Rows read and decoded in parallel: ``(decoded, label)``, bad rows raised or skipped."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"data.on_error={on_error!r} is not valid; choose one of: 'raise', 'skip'")
    rows, is_path = row_dataset(source, preprocessor)
    if shuffle_seed is not None and is_path:
        # Manifests are often sorted by class; mixing the (cheap) rows once keeps the first epoch mixed.
        rows = rows.shuffle(1_000_000, seed=shuffle_seed, reshuffle_each_iteration=False)
    load = _read_and_decode(preprocessor, is_path)
    fallback = _fallback(preprocessor)

    def guarded(row):
        decoded, label = errors.attempt(load, row, fallback)
        ok = label >= 0
        message = tf.cond(ok, lambda: tf.constant(""), lambda: _describe(row, preprocessor, is_path))
        return decoded, label, ok, message

    dataset = rows.map(guarded, num_parallel_calls=AUTOTUNE)
    if on_error == "raise":
        def check(decoded, label, ok, message):
            failed = tf.debugging.Assert(ok, [tf.strings.join([errors.MARKER, message])])
            with tf.control_dependencies([failed]):
                return decoded, tf.identity(label)

        return dataset.map(check)

    def count(dropped, element):
        decoded, label, ok, message = element
        dropped = dropped + tf.cast(tf.logical_not(ok), tf.int64)

        def report():
            line = tf.strings.join(["mmkeras: skipped ", message, " (",
                                    tf.strings.as_string(dropped), " rows dropped so far)"])
            printed = tf.print(line, output_stream=sys.stderr)
            with tf.control_dependencies([printed]):
                return tf.constant(False)

        kept = tf.cond(ok, lambda: tf.constant(True), report)
        return dropped, (decoded, label, kept)

    def is_kept(decoded, label, kept):
        return kept

    def drop_flag(decoded, label, kept):
        return decoded, label

    dataset = dataset.scan(tf.constant(0, tf.int64), count)
    return dataset.filter(is_kept).map(drop_flag)


# ---------------------------------------------------------------------- the dataset
def build_dataset(config, split: str, preprocessor: Preprocessor, *, training: bool, batch_size: int,
                  drop_remainder: bool = True, repeat: bool = False) -> tf.data.Dataset:
    """The split as batches of ``(features, label)``; shapes are static when ``drop_remainder``.

    Args:
        config: a ``Config`` (paths relative to its file) or a ``DataConfig``.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        preprocessor: an adapted ``Preprocessor`` (see ``fit_preprocessor``).
        training: shuffle and augment.
        batch_size: examples per batch.
        drop_remainder: drop the last partial batch so every batch has the same shape.
        repeat: repeat forever (after the cache, before shuffling).
    """
    data = data_section(config)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    source = split_path(config, split)
    dataset = decoded_dataset(source, preprocessor, on_error=data.on_error,
                              shuffle_seed=data.seed if training else None)
    if data.cache == "memory":
        dataset = dataset.cache()
    elif data.cache not in ("none", "", None):
        cache_path = config.resolve_path(data.cache) if isinstance(config, Config) else data.cache
        tf.io.gfile.makedirs(cache_path.rsplit("/", 1)[0] or ".")
        dataset = dataset.cache(f"{cache_path}.{split}")
    if training:
        dataset = dataset.shuffle(data.shuffle_buffer, seed=data.seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if training:
        seeds = tf.data.Dataset.random(seed=data.seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda element, seed: (preprocessor.finish(element[0], training=True, seed=seed), element[1]),
            num_parallel_calls=AUTOTUNE)
    else:
        dataset = dataset.map(lambda decoded, label: (preprocessor.finish(decoded), label),
                              num_parallel_calls=AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)
