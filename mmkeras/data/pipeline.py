"""``build_dataset``: manifest (or TFRecords) -> ``tf.data.Dataset`` of ``(features, label)``.

Stages, in order: rows (paths and text; a manifest's rows in a seeded random order when training)
-> parallel read + ``Preprocessor.decode`` -> ``on_error`` (``raise``: a plain map, so good rows
pay nothing for error handling; ``errors.data_errors`` names the first bad row after a failure;
``skip``: drop the row and log it with a running count) -> then, when training: cache (``data.cache``:
``memory``, ``none`` or a file path; decoded examples) -> shuffle (seeded) -> ``Preprocessor.prepare``
(random crops, augmentation; stateless, seeded per example) -> ``batch`` -> ``Preprocessor.featurize``
(audio features for the whole batch); when evaluating, nothing is random, so ``prepare`` -> ``batch``
-> ``featurize`` come first and the cache holds the final features -> ``batch(drop_remainder)`` ->
prefetch.

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

import numpy as np
import tensorflow as tf

from mmkeras.config import Config, DataConfig
from mmkeras.data import errors, tfrecord
from mmkeras.data.manifest import Manifest, read_manifest
from mmkeras.data.preprocessor import Preprocessor

AUTOTUNE = tf.data.AUTOTUNE
SPLITS = ("train", "validation", "test")
# The dataset functions use tf.cond / tf.while_loop explicitly; skipping AutoGraph's source
# transformation cuts building a dataset from seconds to a fraction of one.
_graph = tf.autograph.experimental.do_not_convert
# Epoch e of a training run shuffles with seed e * stride + data.seed (distinct for any seed < stride).
_EPOCH_SEED_STRIDE = 1_000_003


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


def row_dataset(source, preprocessor: Preprocessor, shuffle_seed: Optional[int] = None) -> tuple:
    """``(dataset, is_path)``: one dict per row; file columns hold paths (manifests) or bytes (TFRecords).

    With ``shuffle_seed``, a manifest's rows come in a seeded random order, the same every time
    (manifests are often sorted by class; mixing the cheap rows once keeps the first epoch mixed).
    """
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
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(manifest))
        columns = {k: [v[i] for i in order] for k, v in columns.items()}
    columns = {k: tf.constant(v, tf.string, shape=[len(manifest)]) for k, v in columns.items()}
    return tf.data.Dataset.from_tensor_slices(columns), True


# ---------------------------------------------------------------------- decoding with diagnosis
def _read_and_decode(preprocessor: Preprocessor, is_path: bool):
    """The row -> ``(decoded, label)`` function; a bad file or an unknown label raises a TF error."""
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
        label = preprocessor.encode_label(row["_label"])
        with tf.control_dependencies([tf.debugging.Assert(label >= 0, ["unknown label"])]):
            return preprocessor.decode(raw), tf.identity(label)

    return load


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
    """Rows read and decoded in parallel: ``(decoded, label)``, bad rows raised or skipped.

    ``raise`` decodes with a plain parallel map: a bad row stops the pass with TensorFlow's own
    error, which ``errors.data_errors`` (around ``model.fit`` or the loop) turns into a ``DataError``
    naming the row, found by ``first_bad_row``. ``skip`` drops bad rows and reports each one.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"data.on_error={on_error!r} is not valid; choose one of: 'raise', 'skip'")
    rows, is_path = row_dataset(source, preprocessor, shuffle_seed)
    if on_error == "raise":
        return rows.map(_graph(_read_and_decode(preprocessor, is_path)), num_parallel_calls=AUTOTUNE)

    def report(rows, expected, position, dropped):
        def one(j, count):
            line = tf.strings.join(["mmkeras: skipped ", _row_message(rows, j, preprocessor, is_path), " (",
                                    tf.strings.as_string(count + 1), " rows dropped so far)"])
            with tf.control_dependencies([tf.print(line, output_stream=sys.stderr)]):
                return j + 1, count + 1

        return tf.while_loop(lambda j, count: j < position, one, (expected, dropped))[1]

    return _checked(rows, preprocessor, is_path, report)


def _row_message(rows: tf.data.Dataset, position: tf.Tensor, preprocessor: Preprocessor, is_path: bool):
    return _describe(rows.skip(position).take(1).get_single_element(), preprocessor, is_path)


def _checked(rows: tf.data.Dataset, preprocessor: Preprocessor, is_path: bool, handle) -> tf.data.Dataset:
    """Decode ``rows``, letting ``handle(rows, first, stop, dropped) -> dropped`` deal with bad rows.

    A bad row (a file that cannot be read or decoded, an unknown label) makes its map call fail;
    ``ignore_errors`` drops it and a ``scan`` that knows which row position comes next sees the gap
    (rows ``first`` to ``stop - 1`` are missing). Only then are those rows read again and diagnosed,
    so a good row pays no guarded decode. A sentinel after the last row catches bad rows at the end.
    """
    load = _read_and_decode(preprocessor, is_path)
    # The sentinel decodes without error (no files, a known label), so loading needs no tf.cond.
    no_row = {key: tf.zeros(spec.shape, spec.dtype) for key, spec in rows.element_spec.items()}
    no_row["_label"] = tf.constant(preprocessor.class_names[0] if preprocessor.class_names else "")

    @_graph
    def not_end(row):
        return row, False

    @_graph
    def numbered_load(position, element):
        row, end = element
        decoded, label = load(row)
        return position, decoded, label, end

    @_graph
    def check(state, element):
        expected, dropped = state
        position, decoded, label, end = element
        dropped = tf.cond(position > expected, lambda: handle(rows, expected, position, dropped), lambda: dropped)
        return (position + 1, dropped), (decoded, label, end)

    @_graph
    def is_row(decoded, label, end):
        return tf.logical_not(end)

    @_graph
    def drop_flag(decoded, label, end):
        return decoded, label

    return (rows.map(not_end).concatenate(tf.data.Dataset.from_tensors((no_row, True)))
            .enumerate()
            .map(numbered_load, num_parallel_calls=AUTOTUNE)
            .ignore_errors()
            .scan((tf.constant(0, tf.int64), tf.constant(0, tf.int64)), check)
            .filter(is_row)
            .map(drop_flag))


def first_bad_row(sources: list, preprocessor: Preprocessor) -> Optional[str]:
    """The message naming the first bad row of the first of ``sources`` that has one, or None.

    A full decoding pass (no training, no cache): what ``errors.data_errors`` runs after a failure.
    """
    def stop(rows, expected, position, dropped):
        message = tf.strings.join([errors.MARKER, _row_message(rows, expected, preprocessor, is_path)])
        with tf.control_dependencies([tf.debugging.Assert(False, [message])]):
            return tf.identity(dropped)

    for source in sources:
        rows, is_path = row_dataset(source, preprocessor)
        try:
            _checked(rows, preprocessor, is_path, stop).reduce(0, _graph(lambda count, *element: count + 1))
        except tf.errors.OpError as error:
            message = errors.explain(error)
            if message is not None:
                return message
    return None


# ---------------------------------------------------------------------- the dataset
def _cache(dataset: tf.data.Dataset, config, split: str, suffix: str = "") -> tf.data.Dataset:
    data = data_section(config)
    if data.cache == "memory":
        return dataset.cache()
    if data.cache in ("none", "", None):
        return dataset
    cache_path = config.resolve_path(data.cache) if isinstance(config, Config) else data.cache
    tf.io.gfile.makedirs(cache_path.rsplit("/", 1)[0] or ".")
    return dataset.cache(f"{cache_path}.{split}{suffix}")


def _training_epochs(dataset: tf.data.Dataset, data, preprocessor: Preprocessor, *, batch_size: int,
                     drop_remainder: bool, repeat: bool, first_epoch: int, skip_batches: int):
    """Shuffled, augmented batches of ``prepare``'s output, epoch by epoch (see ``build_dataset``).

    Epoch ``e`` shuffles with a seed made of ``data.seed`` and ``e`` and draws each example's
    augmentation seed from ``(that seed, position in the epoch)``, so its batches are a function of
    ``(data.seed, e)`` alone: a run resumed at epoch ``e``, batch ``k`` sees exactly the batches an
    uninterrupted run would. Batches never straddle two epochs.
    """
    first_epoch, skip = int(first_epoch), int(skip_batches) * batch_size

    @_graph
    def epoch_batches(epoch):
        # Dataset.shuffle compares (graph seed, tensor seed) with (0, 0) in Python (random_seed.get_seed),
        # which fails for a tensor seed when the global seed is 0; this graph's own seed avoids that.
        tf.random.set_seed(_EPOCH_SEED_STRIDE)
        epoch_seed = epoch * _EPOCH_SEED_STRIDE + data.seed
        examples = dataset.shuffle(data.shuffle_buffer, seed=epoch_seed, reshuffle_each_iteration=not repeat)
        examples = examples.enumerate().skip(tf.where(tf.equal(epoch, first_epoch), tf.constant(skip, tf.int64), 0))

        @_graph
        def prepare_training(position, element):
            seed = tf.stack([epoch_seed, position])
            return preprocessor.prepare(element[0], training=True, seed=seed), element[1]

        return (examples.map(prepare_training, num_parallel_calls=AUTOTUNE)
                .batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE))

    last = np.iinfo(np.int64).max if repeat else first_epoch + 1
    return tf.data.Dataset.range(first_epoch, last).flat_map(epoch_batches)


def build_dataset(config, split: str, preprocessor: Preprocessor, *, training: bool, batch_size: int,
                  drop_remainder: bool = True, repeat: bool = False, first_epoch: int = 0,
                  skip_batches: int = 0) -> tf.data.Dataset:
    """The split as batches of ``(features, label)``; shapes are static when ``drop_remainder``.

    Training caches the decoded examples (whole waveforms, so every epoch draws new random crops
    and augmentations); evaluation has nothing random, so it caches the final features and a later
    epoch only reads memory. Audio features are computed a batch at a time (``Preprocessor.featurize``).

    Args:
        config: a ``Config`` (paths relative to its file) or a ``DataConfig``.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        preprocessor: an adapted ``Preprocessor`` (see ``fit_preprocessor``).
        training: shuffle and augment.
        batch_size: examples per batch.
        drop_remainder: drop the last partial batch so every batch has the same shape.
        repeat: repeat forever. In training, epoch ``first_epoch``, then ``first_epoch + 1``, ...;
            each epoch's order and augmentation depend only on ``(data.seed, epoch)``. Without
            ``repeat``, training yields epoch ``first_epoch`` and a new iteration reshuffles.
        first_epoch: training only: the epoch the dataset starts at (a resumed run's epoch).
        skip_batches: training only: batches of ``first_epoch`` already trained on (a run resumed
            mid-epoch); they are skipped before any augmentation or feature work.
    """
    data = data_section(config)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if first_epoch < 0 or skip_batches < 0:
        raise ValueError(f"first_epoch and skip_batches must be >= 0, got {first_epoch} and {skip_batches}")
    source = split_path(config, split)
    dataset = decoded_dataset(source, preprocessor, on_error=data.on_error,
                              shuffle_seed=data.seed if training else None)

    @_graph
    def featurize(prepared, label):
        return preprocessor.featurize(prepared), label

    if training:
        dataset = _training_epochs(_cache(dataset, config, split), data, preprocessor, batch_size=batch_size,
                                   drop_remainder=drop_remainder, repeat=repeat, first_epoch=first_epoch,
                                   skip_batches=skip_batches)
        return dataset.map(featurize, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)

    @_graph
    def prepare(decoded, label):
        return preprocessor.prepare(decoded), label

    dataset = dataset.map(prepare, num_parallel_calls=AUTOTUNE)
    if data.cache not in ("none", "", None):
        dataset = dataset.batch(batch_size, num_parallel_calls=AUTOTUNE)
        dataset = dataset.map(featurize, num_parallel_calls=AUTOTUNE).unbatch()
        dataset = _cache(dataset, config, split, ".features")
        featurize = None
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    if featurize is not None:
        dataset = dataset.map(featurize, num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)
