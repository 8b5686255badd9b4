"""``build_dataset``: manifest (or TFRecords) -> ``tf.data.Dataset`` of ``(features, label)``.

Stages, in order: rows (``mmkeras.data.rows``; a manifest's rows in a seeded random order when
training; training on the train split with ``data.label_fraction < 1`` reads only the seeded,
per-class stratified subset ``labelled_rows``, while the preprocessor is still adapted on every
train row and evaluation, of any split, reads every row) -> parallel read +
``Preprocessor.decode`` with ``data.on_error`` applied (``mmkeras.data.diagnosis.decoded_rows``:
``raise`` pays nothing for error handling, ``skip`` drops and reports each bad row once) -> then,
when training: cache (``data.cache``: ``memory``, ``none`` or a file path; decoded examples) -> per
epoch: shuffle (seeded by the epoch) -> ``Preprocessor.crop_and_augment`` (stateless, seeded per
example) -> ``batch`` -> ``Preprocessor.featurize`` (audio features for the whole batch); when
evaluating, nothing is random, so ``crop_and_augment`` -> ``batch`` -> ``featurize`` come first and
the cache holds the final features -> ``batch(drop_remainder)`` -> prefetch.

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

from typing import Optional

import numpy as np
import tensorflow as tf

from mmkeras.data.diagnosis import decoded_rows, graph_function as _graph
from mmkeras.data.preprocessor import Preprocessor
from mmkeras.data.rows import SPLITS, count_rows, data_section, labelled_rows, split_path
from mmkeras.data.schema import ENCODED_PREFIX, PRESENCE_SUFFIX

AUTOTUNE = tf.data.AUTOTUNE
# Epoch e of a training run shuffles with seed e * stride + data.seed (distinct for any seed < stride).
_EPOCH_SEED_STRIDE = 1_000_003
__all__ = ["ENCODED_PREFIX", "SPLITS", "build_dataset", "caches", "data_section", "encoding_rows",
           "fit_preprocessor", "num_examples", "prepared_batches", "split_path"]


def fit_preprocessor(config) -> Preprocessor:
    """A ``Preprocessor`` for the config, adapted on its train split."""
    preprocessor = Preprocessor.from_data_config(data_section(config))
    preprocessor.adapt(split_path(config, "train"))
    return preprocessor


def _kept_rows(config, split: str, training: bool):
    """The row numbers a pass over ``split`` reads: ``labelled_rows`` when training on the train
    split (None, every row, when ``data.label_fraction`` is 1), else None."""
    return labelled_rows(config) if training and split == "train" else None


def num_examples(config, split: str, *, training: bool = True) -> int:
    """Rows in the split's manifest (records for TFRecords), before any ``on_error: skip`` drop.

    For the train split with ``data.label_fraction < 1``, the rows training reads (the labelled
    subset: what the steps per epoch count); ``training=False`` counts every row (evaluation).
    """
    keep = _kept_rows(config, split, training)
    return count_rows(split_path(config, split)) if keep is None else len(keep)


# ---------------------------------------------------------------------- the dataset
def caches(data) -> bool:
    """Whether ``data.cache`` keeps decoded examples (``memory`` or a file path) rather than ``none``."""
    return data.cache not in ("none", "", None)


def _cache(dataset: tf.data.Dataset, config, split: str, suffix: str = "") -> tf.data.Dataset:
    data = data_section(config)
    if data.cache == "memory":
        return dataset.cache()
    if not caches(data):
        return dataset
    cache_path = config.resolve_path(data.cache) if hasattr(config, "resolve_path") else data.cache
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
            return preprocessor.crop_and_augment(element[0], training=True, seed=seed), element[1]

        return (examples.map(prepare_training, num_parallel_calls=AUTOTUNE)
                .batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE))

    last = np.iinfo(np.int64).max if repeat else first_epoch + 1
    return tf.data.Dataset.range(first_epoch, last).flat_map(epoch_batches)


def _with_encodings(dataset: tf.data.Dataset, encoded: dict) -> tf.data.Dataset:
    """``(decoded, label)`` zipped by position with cached encodings, which replace their columns."""
    columns = {key[len(ENCODED_PREFIX):].rsplit("__", 1)[0] for key in encoded}

    @_graph
    def join(element, encodings):
        decoded, label = element
        return {**{k: v for k, v in decoded.items() if k not in columns}, **encodings}, label

    return tf.data.Dataset.zip(dataset, tf.data.Dataset.from_tensor_slices(encoded)).map(join)


def prepared_batches(config, split: str, preprocessor: Preprocessor, *, batch_size: int, training: bool = False,
                     columns=None) -> tf.data.Dataset:
    """Batches of ``(crop_and_augment``'s output, label)`` over every row of ``split``, without
    augmentation and before ``featurize``, in the order ``build_dataset(..., training=training)``
    reads its rows (the labelled subset when training on train). ``columns``: keep only these (and
    their presence flags)."""
    data = data_section(config)
    dataset = decoded_rows(split_path(config, split), preprocessor, on_error=data.on_error,
                           shuffle_seed=data.seed if training else None,
                           keep_rows=_kept_rows(config, split, training))

    @_graph
    def prepare(decoded, label):
        if columns is not None:
            decoded = {k: v for k, v in decoded.items() if k.removesuffix(PRESENCE_SUFFIX) in columns}
        return preprocessor.crop_and_augment(decoded), label

    return dataset.map(prepare, num_parallel_calls=AUTOTUNE).batch(batch_size, num_parallel_calls=AUTOTUNE)


def encoding_rows(config, split: str, preprocessor: Preprocessor, columns: list, *, training: bool,
                  batch_size: int) -> tf.data.Dataset:
    """Batches of ``columns``' features over every row of ``split``, without augmentation, in the
    order ``build_dataset(..., training=training)`` reads its rows (what cached encodings line up with)."""

    @_graph
    def featurize(batch, label):
        return {c: v for c, v in preprocessor.featurize(batch).items() if c in columns}

    batches = prepared_batches(config, split, preprocessor, batch_size=batch_size, training=training, columns=columns)
    return batches.map(featurize, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def build_dataset(config, split: str, preprocessor: Preprocessor, *, training: bool, batch_size: int,
                  drop_remainder: bool = True, repeat: bool = False, first_epoch: int = 0,
                  skip_batches: int = 0, encoded: Optional[dict] = None) -> tf.data.Dataset:
    """The split as batches of ``(features, label)``; shapes are static when ``drop_remainder``.

    Training on the train split reads only its ``labelled_rows`` (``data.label_fraction``; every
    row when it is 1); evaluation reads every row of any split, train included.
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
        encoded: ``{"encoded__<column>__<i>": array}``, one row per example in this
            pipeline's row order (``encoding_rows``): a frozen backbone's outputs, which replace
            that column from the start (``mmkeras.training.frozen_cache``).
    """
    data = data_section(config)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if first_epoch < 0 or skip_batches < 0:
        raise ValueError(f"first_epoch and skip_batches must be >= 0, got {first_epoch} and {skip_batches}")
    source = split_path(config, split)
    keep = _kept_rows(config, split, training)
    dataset = decoded_rows(source, preprocessor, on_error=data.on_error,
                           shuffle_seed=data.seed if training else None, keep_rows=keep)
    suffix = ".encoded" if encoded else ""  # a file cache of another element structure must not be reused
    if keep is not None:  # nor one of another subset
        suffix += f".labels{data.label_fraction:g}-seed{data.seed}"
    if encoded:
        dataset = _with_encodings(dataset, encoded)

    @_graph
    def featurize(prepared, label):
        return preprocessor.featurize(prepared), label

    if training:
        dataset = _training_epochs(_cache(dataset, config, split, suffix), data, preprocessor, batch_size=batch_size,
                                   drop_remainder=drop_remainder, repeat=repeat, first_epoch=first_epoch,
                                   skip_batches=skip_batches)
        return dataset.map(featurize, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)

    @_graph
    def prepare(decoded, label):
        return preprocessor.crop_and_augment(decoded), label

    dataset = dataset.map(prepare, num_parallel_calls=AUTOTUNE)
    if caches(data):
        dataset = dataset.batch(batch_size, num_parallel_calls=AUTOTUNE)
        dataset = dataset.map(featurize, num_parallel_calls=AUTOTUNE).unbatch()
        dataset = _cache(dataset, config, split, ".features" + suffix)
        featurize = None
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    if featurize is not None:
        dataset = dataset.map(featurize, num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)
