"""Frozen backbones computed once: the outputs of frozen KerasHub encoders cached for every epoch.

A frozen backbone (``trainable: false``, the default) runs in inference mode, so its output for an
example is the same in every epoch. ``build_model`` gives each frozen encoder a sub-model of its own
(an *extractor*) and puts everything after them in a *head* sub-model
(``mmkeras.models.factory.frozen_encodings``). ``FrozenCache`` runs the extractors over a split once
and training fits the head on their outputs, the other columns and the presence flags; the head
shares every weight with the full model, which is what the run saves. Epoch 2 onward trains only
the fusion and the head.

The encodings join the pipeline by position: they are computed over the split's decoded rows in
the order the pipeline reads them (the same seeded row order, the same rows dropped by
``on_error: skip``), and ``build_dataset(..., encoded=...)`` zips them in before its cache. A
column whose augmentation changes the backbone input every epoch is not cached (its extractor runs
in every step, a log line says so); an audio column is cached from each clip's centre window, so
clips longer than ``duration`` lose their random crop (also logged; ``data.cache: none`` keeps it).

Example (not run here: it needs a model with a frozen preset encoder):
    cache = FrozenCache.for_model(model, preprocessor, config)
    cache.fit_model.fit(cache.dataset(config, "train", training=True, batch_size=32, repeat=True), ...)
"""

from __future__ import annotations

import logging
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from mmkeras.data.pipeline import build_dataset, encoding_rows
from mmkeras.models.factory import encoded_prefix, frozen_encodings

logger = logging.getLogger(__name__)


class FrozenCache:
    """The model ``fit`` trains when frozen encoders are cached, and each split's cached encodings.

    Args:
        model: the full model (what the run saves).
        head: its head sub-model.
        extractors: ``{column: extractor sub-model}`` of the cached columns.
        preprocessor: the run's adapted ``Preprocessor``.
        uncached: ``{column: extractor}`` of frozen columns that are not cached (augmented).
    """

    def __init__(self, model, head, extractors: dict, preprocessor, uncached: Optional[dict] = None):
        self.extractors = extractors
        self.preprocessor = preprocessor
        self._encoded: dict = {}
        self.fit_model = head
        if uncached:  # those columns' extractors run inside the training step
            inputs = {name: tensor for name, tensor in head.input.items()
                      if not any(name.startswith(encoded_prefix(column)) for column in uncached)}
            fed = dict(inputs)
            for column, extractor in uncached.items():
                inputs[column] = keras.Input(model.input[column].shape[1:], dtype=model.input[column].dtype, name=column)
                fed.update(extractor(inputs[column]))
            self.fit_model = keras.Model(inputs, head(fed), name="multimodal_head_partly_cached")

    @classmethod
    def for_model(cls, model, preprocessor, config) -> Optional["FrozenCache"]:
        """The cache of ``model``'s frozen encoders, or None when it has none to cache."""
        split = frozen_encodings(model)
        if split is None:
            return None
        head, extractors = split
        augmented = {column: e for column, e in extractors.items() if preprocessor.columns[column].augments}
        cached = {column: e for column, e in extractors.items() if column not in augmented}
        for column in augmented:
            logger.warning("column %s: augmentation changes its frozen backbone's input every epoch, so its "
                           "encodings are not cached (the backbone runs at every step)", column)
        for column in cached:
            if preprocessor.columns[column].cache_caveat:
                logger.warning("column %s: %s", column, preprocessor.columns[column].cache_caveat)
        return cls(model, head, cached, preprocessor, augmented) if cached else None

    def encodings(self, config, split: str, training: bool, batch_size: int = 64) -> dict:
        """``{head input name: array}``: the cached encodings of every row of ``split``, in pipeline
        order (computed once per split and order)."""
        key = (split, training)
        if key not in self._encoded:
            outputs: dict = {}
            for batch in encoding_rows(config, split, self.preprocessor, list(self.extractors), training=training,
                                       batch_size=batch_size):
                for column, extractor in self.extractors.items():
                    for name, value in extractor(batch[column], training=False).items():
                        outputs.setdefault(name, []).append(keras.ops.convert_to_numpy(value))
            self._encoded[key] = {name: np.concatenate(values) for name, values in outputs.items()}
        return self._encoded[key]

    def dataset(self, config, split: str, *, training: bool, batch_size: int, **options) -> tf.data.Dataset:
        """``build_dataset`` with the cached encodings in place of their columns: ``fit_model``'s inputs."""
        return build_dataset(config, split, self.preprocessor, training=training, batch_size=batch_size,
                             encoded=self.encodings(config, split, training), **options)
