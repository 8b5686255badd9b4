"""``Preprocessor``: the single owner of adapted state (vocabularies, audio statistics, classes).

Training, evaluation and export all call the same ``preprocess``: raw strings in (the text of a
text cell, the encoded file bytes of an image or audio cell, "" for a missing cell), fixed-shape
tensors out, as described in ``mmkeras.data.schema``. Everything at run time is a TF op over
``tf.lookup`` tables and constants held by ``Preprocessor.module`` (a ``tf.Module``), so it runs in
``tf.data``, in a ``tf.function`` and in an exported SavedModel, under either Keras backend.

``preprocess`` is ``finish(decode(raw))``: ``decode`` is deterministic and is what the pipeline
caches; ``finish`` is ``featurize(prepare(...))``: ``prepare`` cuts audio to length and, when training,
augments, one example at a time (it needs a seed per example); ``featurize`` computes audio features
for a whole batch (``preprocess_batch`` and the pipeline call it after batching).

Example:
    >>> from mmkeras.config import DataConfig, TextFeature
    >>> p = Preprocessor.from_config(DataConfig(label="label",
    ...     features={"text": TextFeature(sequence_length=4)}))
    >>> p.adapt_from_rows([{"text": "a cat", "label": "pet"}, {"text": "a car", "label": "vehicle"}])
    >>> p.class_names, p.input_specs[0].shape, p.input_specs[0].vocab_size
    (['pet', 'vehicle'], (4,), 5)
    >>> out = p.preprocess({"text": tf.constant("A cat!")})
    >>> out["text"].numpy().tolist(), float(out["text_present"])
    ([2, 4, 0, 0], 1.0)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import posixpath
from typing import Iterable, Optional

import numpy as np
import tensorflow as tf

from mmkeras.config import FEATURE_TYPES, AudioFeature, DataConfig, ImageFeature, TextFeature
from mmkeras.data import audio as audio_lib
from mmkeras.data import errors
from mmkeras.data import image as image_lib
from mmkeras.data import text as text_lib
from mmkeras.data.schema import PRESENCE_SUFFIX, FeatureSpec

logger = logging.getLogger(__name__)
STATE_FILE = "preprocessor.json"
_MIN_STD = 1e-5
# Key of the per-example SpecAugment keep-mask that ``prepare`` hands to ``featurize`` through batch().
_SPEC_AUGMENT_KEY = "_spec_augment_keep:"


def sort_class_names(labels: Iterable[str]) -> list:
    """Unique labels, sorted numerically when every label is a number, else alphabetically."""
    unique = set(labels)
    try:
        return sorted(unique, key=float)
    except ValueError:
        return sorted(unique)


class PreprocessorModule(tf.Module):
    """The trackable state: text vectorizers, the label table and audio statistics."""

    def __init__(self, name: str = "mmkeras_preprocessor"):
        super().__init__(name=name)
        self.text = {}
        self.audio_mean = {}
        self.audio_std = {}
        self.label_table = None


class Preprocessor:
    """Turns raw cells into model inputs with state adapted on the train split.

    Args:
        features: column -> ``TextFeature`` / ``ImageFeature`` / ``AudioFeature``.
        label: the label column.
        on_error: ``"raise"`` or ``"skip"`` (what ``adapt`` and the pipeline do with a bad file).
    """

    def __init__(self, features: dict, label: str = "label", on_error: str = "raise"):
        if not features:
            raise ValueError("a Preprocessor needs at least one feature column (data.features is empty)")
        for column, feature in features.items():
            if not isinstance(feature, tuple(FEATURE_TYPES.values())):
                raise ValueError(f"data.features.{column}: expected a feature dataclass, got {feature!r}")
            if isinstance(feature, ImageFeature):
                image_lib.check_augment(feature.augment, f"data.features.{column}.augment")
            if isinstance(feature, AudioFeature):
                audio_lib.check_feature(feature, f"data.features.{column}")
            if column.endswith(PRESENCE_SUFFIX) or column == label:
                raise ValueError(f"data.features.{column}: a feature column may not be the label "
                                 f"or end with {PRESENCE_SUFFIX!r}")
        self.features = dict(features)
        self.label = label
        self.on_error = on_error
        self.class_names: list = []
        self.module = PreprocessorModule()
        self._vocabularies: dict = {}
        self._audio_stats: dict = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, data_config: DataConfig) -> "Preprocessor":
        """A preprocessor for ``data_config.features`` and ``data_config.label`` (not adapted yet)."""
        return cls(data_config.features, label=data_config.label, on_error=data_config.on_error)

    @property
    def file_columns(self) -> list:
        """Columns whose cells name files (image and audio)."""
        return [c for c, f in self.features.items() if f.modality in ("image", "audio")]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_specs(self) -> list:
        specs = []
        for column, feature in self.features.items():
            if isinstance(feature, TextFeature):
                vectorizer = self.module.text.get(column)
                specs.append(FeatureSpec(column, "text", (feature.sequence_length,), "int32",
                                       vocab_size=vectorizer.vocab_size if vectorizer else None))
            elif isinstance(feature, ImageFeature):
                specs.append(FeatureSpec(column, "image", (feature.height, feature.width, feature.channels),
                                       "float32"))
            else:
                specs.append(FeatureSpec(column, "audio", audio_lib.feature_shape(feature), "float32"))
        return specs

    @property
    def adapted(self) -> bool:
        return self.module.label_table is not None

    # ------------------------------------------------------------------ adapting
    def _set_state(self, class_names: list, vocabularies: dict, audio_stats: dict) -> None:
        self.class_names = [str(c) for c in class_names]
        self._vocabularies = {c: list(v) for c, v in vocabularies.items()}
        self.module.text = {
            c: text_lib.TextVectorizer(self.features[c], self._vocabularies[c], name=f"text_{c}")
            for c in self.features if isinstance(self.features[c], TextFeature)
        }
        keys = tf.constant(self.class_names or [""], tf.string)
        values = tf.range(len(self.class_names), dtype=tf.int64) if self.class_names else tf.constant([-1], tf.int64)
        self.module.label_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1
        )
        self._set_audio_stats(audio_stats)

    def _set_audio_stats(self, audio_stats: dict) -> None:
        self._audio_stats = {c: {k: [float(x) for x in v] for k, v in s.items()} for c, s in audio_stats.items()}
        self.module.audio_mean = {c: tf.constant(s["mean"], tf.float32) for c, s in self._audio_stats.items()}
        self.module.audio_std = {c: tf.constant(s["std"], tf.float32) for c, s in self._audio_stats.items()}

    def adapt_from_rows(self, rows: list, name: str = "rows") -> None:
        """Adapt vocabularies and class names from in-memory rows (``{column: str}``); no audio statistics."""
        labels = []
        for number, row in enumerate(rows, start=1):
            value = str(row.get(self.label, "") or "")
            if not value:
                raise ValueError(f"{name} row {number}: the label column {self.label!r} is empty")
            labels.append(value)
        vocabularies = {}
        for column, feature in self.features.items():
            if isinstance(feature, TextFeature):
                if feature.tokenizer == "wordpiece":
                    vocabularies[column] = text_lib.read_wordpiece_vocabulary(feature.vocabulary_file)
                else:
                    vocabularies[column] = text_lib.build_vocabulary(
                        (str(row.get(column, "") or "") for row in rows), feature)
        self._set_state(sort_class_names(labels), vocabularies, {})

    def adapt(self, train, config=None) -> None:
        """Adapt on the train split: class names, vocabularies, then audio statistics.

        Args:
            train: a manifest path (``.csv``/``.jsonl``), a TFRecord path or glob, or a ``Manifest``.
        """
        from mmkeras.data import pipeline  # the pipeline reads rows; it imports this module

        name, rows = pipeline.read_cells(train, self, columns=[c for c, f in self.features.items()
                                                                if f.modality == "text"])
        self.adapt_from_rows(rows, name=name)
        audio_columns = [c for c, f in self.features.items() if isinstance(f, AudioFeature) and f.normalize]
        if not audio_columns:
            return
        dataset = pipeline.decoded_dataset(train, self, on_error=self.on_error)
        sums = {c: 0.0 for c in audio_columns}
        squares = {c: 0.0 for c in audio_columns}
        counts = {c: 0 for c in audio_columns}
        batches = dataset.map(self._fixed_length_audio, num_parallel_calls=tf.data.AUTOTUNE).batch(64).map(
            self._raw_audio_features, num_parallel_calls=tf.data.AUTOTUNE)
        with errors.explained(lambda: pipeline.first_bad_row([train], self)):  # name a bad file's row
            for batch in batches:
                for c in audio_columns:
                    present = batch[c + PRESENCE_SUFFIX].numpy() > 0
                    values = batch[c].numpy()[present].astype(np.float64)
                    values = values.reshape(-1, values.shape[-1])
                    sums[c] = sums[c] + values.sum(axis=0)
                    squares[c] = squares[c] + (values ** 2).sum(axis=0)
                    counts[c] += values.shape[0]
        stats = {}
        for c in audio_columns:
            bins = audio_lib.num_bins(self.features[c])
            if counts[c] == 0:
                logger.warning("audio column %s: no audio in the train split; statistics left at 0/1", c)
                stats[c] = {"mean": [0.0] * bins, "std": [1.0] * bins}
                continue
            mean = np.broadcast_to(sums[c] / counts[c], (bins,))
            var = np.maximum(np.broadcast_to(squares[c] / counts[c], (bins,)) - mean ** 2, 0.0)
            stats[c] = {"mean": mean.tolist(), "std": np.maximum(np.sqrt(var), _MIN_STD).tolist()}
        self._set_audio_stats(stats)

    def _fixed_length_audio(self, decoded, label=None):
        out = {}
        for c, feature in self.features.items():
            if isinstance(feature, AudioFeature) and feature.normalize:
                out[c] = audio_lib.fix_length(decoded[c], feature)
                out[c + PRESENCE_SUFFIX] = decoded[c + PRESENCE_SUFFIX]
        return out

    def _raw_audio_features(self, batch):
        return {c: audio_lib.frontend(v, self.features[c]) if not c.endswith(PRESENCE_SUFFIX) else v
                for c, v in batch.items()}

    # ------------------------------------------------------------------ run time
    def _require_adapted(self):
        if not self.adapted:
            raise RuntimeError("the Preprocessor is not adapted: call adapt(train_manifest) or Preprocessor.load(dir)")

    def encode_label(self, label: tf.Tensor) -> tf.Tensor:
        """Label string(s) -> int32 class index; -1 for a label not seen in the train split."""
        self._require_adapted()
        label = tf.convert_to_tensor(label)
        if label.dtype != tf.string:
            label = tf.strings.as_string(label)
        return tf.cast(self.module.label_table.lookup(label), tf.int32)

    def decode(self, raw: dict) -> dict:
        """Deterministic part of ``preprocess`` (cacheable); audio stays a variable-length waveform."""
        self._require_adapted()
        out = {}
        for column, feature in self.features.items():
            value = tf.convert_to_tensor(raw[column], tf.string)
            present = tf.strings.length(value) > 0
            if isinstance(feature, TextFeature):
                out[column] = self.module.text[column](value)
            elif isinstance(feature, ImageFeature):
                shape = (feature.height, feature.width, feature.channels)
                out[column] = tf.cond(present, lambda v=value, f=feature: image_lib.decode(v, f),
                                      lambda s=shape: tf.zeros(s, tf.float32))
            else:
                out[column] = tf.cond(present, lambda v=value, f=feature: audio_lib.decode(v, f),
                                      lambda: tf.zeros([0], tf.float32))
            out[column + PRESENCE_SUFFIX] = tf.cast(present, tf.float32)
        return out

    def prepare(self, decoded: dict, training: bool = False, seed: Optional[tf.Tensor] = None) -> dict:
        """Per-example part of ``finish``: audio cut to length, image augmentation, SpecAugment masks.

        Everything that needs one seed per example happens here, before ``batch()``; ``featurize``
        then computes audio features for a whole batch at once.
        """
        if training and seed is None:
            seed = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int64)
        out = dict(decoded)
        for index, (column, feature) in enumerate(self.features.items()):
            present = decoded[column + PRESENCE_SUFFIX]
            column_seed = tf.random.experimental.stateless_fold_in(seed, index) if training else None
            if isinstance(feature, ImageFeature) and training and feature.augment:
                out[column] = image_lib.augment(decoded[column], feature.augment, column_seed) * present
            elif isinstance(feature, AudioFeature):
                out[column] = audio_lib.fix_length(decoded[column], feature, training, column_seed)
                if training and feature.spec_augment:
                    out[_SPEC_AUGMENT_KEY + column] = audio_lib.spec_augment_mask(
                        audio_lib.feature_shape(feature), feature.spec_augment,
                        tf.random.experimental.stateless_fold_in(column_seed, 1))
        return out

    def featurize(self, prepared: dict) -> dict:
        """Batched part of ``finish``: ``prepare``'s output stacked to ``[B, ...]`` -> model features.

        Audio features (STFT / log-mel / MFCC), normalization and SpecAugment masks are computed for
        the whole batch: ``tf.signal`` works on ``[B, samples]`` as fast as on one example.
        """
        out = {k: v for k, v in prepared.items() if not k.startswith(_SPEC_AUGMENT_KEY)}
        for column, feature in self.features.items():
            if not isinstance(feature, AudioFeature):
                continue
            values = audio_lib.frontend(prepared[column], feature)
            if column in self.module.audio_mean:
                values = (values - self.module.audio_mean[column]) / self.module.audio_std[column]
            if _SPEC_AUGMENT_KEY + column in prepared:
                values = values * prepared[_SPEC_AUGMENT_KEY + column]
            present = prepared[column + PRESENCE_SUFFIX][..., None, None]
            out[column] = tf.ensure_shape(values * present, [None, *audio_lib.feature_shape(feature)])
        return out

    def finish(self, decoded: dict, training: bool = False, seed: Optional[tf.Tensor] = None) -> dict:
        """Audio features and (when ``training``) augmentation, from ``decode``'s output (one example)."""
        prepared = self.prepare(decoded, training=training, seed=seed)
        batch = self.featurize({k: v[None] for k, v in prepared.items()})
        return {k: v[0] for k, v in batch.items()}

    def preprocess(self, raw: dict, training: bool = False, seed: Optional[tf.Tensor] = None) -> dict:
        """One example: ``raw[c]`` scalar strings -> ``features[c]`` and ``features[c + "_present"]``."""
        return self.finish(self.decode(raw), training=training, seed=seed)

    def output_signature(self) -> dict:
        out = {}
        for spec in self.input_specs:
            out[spec.column] = tf.TensorSpec(spec.shape, spec.dtype)
            out[spec.presence_key] = tf.TensorSpec([], tf.float32)
        return out

    def prepared_signature(self, training: bool = False) -> dict:
        """Per-example ``tf.TensorSpec``s of ``prepare``'s output (audio is the fixed-length waveform)."""
        out = self.output_signature()
        for column, feature in self.features.items():
            if isinstance(feature, AudioFeature):
                out[column] = tf.TensorSpec([audio_lib.num_samples(feature)], tf.float32)
                if training and feature.spec_augment:
                    out[_SPEC_AUGMENT_KEY + column] = tf.TensorSpec(audio_lib.feature_shape(feature), tf.float32)
        return out

    def preprocess_batch(self, raw: dict) -> dict:
        """A batch of raw strings (``[B]`` per column) -> batched features, inference mode."""
        raw = {c: tf.convert_to_tensor(raw[c], tf.string) for c in self.features}
        prepared = tf.map_fn(lambda row: self.prepare(self.decode(row)), raw,
                             fn_output_signature=self.prepared_signature())
        return self.featurize(prepared)

    # ------------------------------------------------------------------ persistence
    def get_config(self) -> dict:
        return {
            "label": self.label,
            "on_error": self.on_error,
            "features": {c: dataclasses.asdict(f) for c, f in self.features.items()},
            "class_names": self.class_names,
            "vocabularies": self._vocabularies,
            "audio_stats": self._audio_stats,
        }

    def save(self, directory: str) -> str:
        """Write ``preprocessor.json`` (settings and all adapted state) into ``directory``."""
        self._require_adapted()
        tf.io.gfile.makedirs(directory)
        path = posixpath.join(directory, STATE_FILE)
        with tf.io.gfile.GFile(path, "w") as f:
            json.dump(self.get_config(), f)
        return path

    @classmethod
    def from_state(cls, state: dict) -> "Preprocessor":
        features = {c: FEATURE_TYPES[v["modality"]](**v) for c, v in state["features"].items()}
        p = cls(features, label=state["label"], on_error=state.get("on_error", "raise"))
        p._set_state(state["class_names"], state["vocabularies"], state["audio_stats"])
        return p

    @classmethod
    def load(cls, directory: str) -> "Preprocessor":
        """The preprocessor saved by ``save(directory)``; it gives identical tensors."""
        path = posixpath.join(directory, STATE_FILE)
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"{path} does not exist (write it with Preprocessor.save)")
        with tf.io.gfile.GFile(path, "r") as f:
            return cls.from_state(json.load(f))
