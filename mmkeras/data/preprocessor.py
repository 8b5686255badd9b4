"""``Preprocessor``: the columns of a config composed, and the single owner of adapted state.

Training, evaluation and export call the same stages: raw strings in (a text, the encoded bytes of
a file, "" for a missing cell), fixed-shape tensors out (``mmkeras.data.schema``). Each stage loops
over the columns (``mmkeras.data.columns``), which hold everything modality-specific:

- ``decode(raw)``: deterministic, what the pipeline caches;
- ``crop_and_augment(decoded, training, seed)``: per example (random crops, augmentation);
- ``featurize(batch)``: on whole batches (audio front ends);
- ``preprocess`` = all three for one example, ``preprocess_batch`` for a serving batch.

Everything at run time is a TF op over ``tf.lookup`` tables and constants that ``Preprocessor.module``
(a ``tf.Module``) tracks, so it runs in ``tf.data``, in a ``tf.function`` and in an exported
SavedModel, under either Keras backend. ``get_config`` / ``from_config`` round-trip all of it.

Example:
    >>> from mmkeras.config import DataConfig, TextFeature
    >>> p = Preprocessor.from_data_config(DataConfig(label="label",
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
import posixpath
import warnings
from typing import Optional

import tensorflow as tf

from mmkeras.data import diagnosis, rows as rows_lib
from mmkeras.data.columns import FEATURE_TYPES, build_column
from mmkeras.data.columns.bytes import assert_no_problems
from mmkeras.data.labels import LabelTable, sort_class_names
from mmkeras.data.rows import LABEL_KEY
from mmkeras.data.schema import ENCODED_PREFIX, PRESENCE_SUFFIX

STATE_FILE = "preprocessor.json"
ASSETS_DIR = "assets"  # one folder per column that keeps files (a KerasHub preset's tokenizer)


class Preprocessor:
    """Turns raw cells into model inputs with state adapted on the train split.

    Args:
        features: column -> its feature settings (``TextFeature`` / ``ImageFeature`` / ``AudioFeature``).
        label: the label column.
        on_error: ``"raise"`` or ``"skip"`` (what ``adapt`` and the pipeline do with a bad file).
    """

    def __init__(self, features: dict, label: str = "label", on_error: str = "raise"):
        if not features:
            raise ValueError("a Preprocessor needs at least one feature column (data.features is empty)")
        for column in features:
            if column.endswith(PRESENCE_SUFFIX) or column == label or column.startswith("_"):
                raise ValueError(f"data.features.{column}: a feature column may not be the label, start "
                                 f"with '_' or end with {PRESENCE_SUFFIX!r}")
        self.features = dict(features)
        self.columns = {name: build_column(name, feature) for name, feature in features.items()}
        self.label = label
        self.on_error = on_error
        self.class_names: list = []
        self.module = tf.Module(name="mmkeras_preprocessor")
        self.skip_log = diagnosis.SkipLog()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_data_config(cls, data_config) -> "Preprocessor":
        """A preprocessor for ``data_config.features`` and ``data_config.label`` (not adapted yet)."""
        return cls(data_config.features, label=data_config.label, on_error=data_config.on_error)

    @property
    def file_columns(self) -> list:
        """Columns whose cells name files (image and audio)."""
        return [name for name, column in self.columns.items() if column.reads_files]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_specs(self) -> list:
        """One ``FeatureSpec`` per column: what the model takes."""
        return [column.spec for column in self.columns.values()]

    @property
    def adapted(self) -> bool:
        return getattr(self.module, "labels", None) is not None

    def rows(self, source, shuffle_seed: Optional[int] = None, columns=None, keep_rows=None) -> tuple:
        """``(dataset, is_path)`` of the rows of ``source`` for ``columns`` (default: all); only the row
        numbers ``keep_rows`` when given (``rows_lib.row_dataset``)."""
        wanted = self.columns if columns is None else {c: self.columns[c] for c in columns}
        return rows_lib.row_dataset(source, {c: col.reads_files for c, col in wanted.items()}, self.label,
                                    shuffle_seed, keep_rows)

    # ------------------------------------------------------------------ adapting
    def _set_classes(self, class_names: list) -> None:
        self.module.labels = LabelTable(class_names)
        self.class_names = list(self.module.labels.class_names)

    def _track_columns(self) -> None:
        # The SavedModel export tracks this module: every column's tables must hang from it.
        self.module.columns = {name: column.resources() for name, column in self.columns.items()
                               if column.resources() is not None}

    def adapt_from_rows(self, rows: list, name: str = "rows", source=None) -> None:
        """Adapt class names and every column from in-memory rows (``{column: str}``); columns that
        need decoded files (audio statistics) also need ``source``, the rows' manifest."""
        labels = []
        for number, row in enumerate(rows, start=1):
            value = str(row.get(self.label, "") or "")
            if not value:
                raise ValueError(f"{name} row {number}: the label column {self.label!r} is empty")
            labels.append(value)
        self._set_classes(sort_class_names(labels))
        cells = {c: [str(row.get(c, "") or "") for row in rows] for c in self.columns}
        split = diagnosis.ColumnReader(source, self, cells)
        for column in self.columns.values():
            if source is None and column.reads_files:
                continue
            column.adapt(split)
        self._track_columns()

    def adapt(self, train) -> None:
        """Adapt on the train split: class names, then each column (vocabularies, statistics).

        Args:
            train: a manifest path (``.csv``/``.jsonl``), a TFRecord path or glob, or a ``Manifest``.
        """
        text_columns = [c for c, col in self.columns.items() if not col.reads_files]
        name, rows = rows_lib.read_cells(train, text_columns, self.label)
        with diagnosis.explained(lambda: diagnosis.first_bad_row([train], self)):  # name a bad file's row
            self.adapt_from_rows(rows, name=name, source=train)

    # ------------------------------------------------------------------ run time
    def _require_adapted(self):
        if not self.adapted:
            raise RuntimeError("the Preprocessor is not adapted: call adapt(train_manifest) or Preprocessor.load(dir)")

    def encode_label(self, label: tf.Tensor) -> tf.Tensor:
        """Label string(s) -> int32 class index; -1 for a label not seen in the train split."""
        self._require_adapted()
        return self.module.labels.encode(label)

    def decode(self, raw: dict, columns=None) -> dict:
        """Deterministic part of ``preprocess`` (cacheable): ``raw[c]`` scalar strings -> decoded."""
        self._require_adapted()
        out = {}
        for name, column in self.columns.items():
            if columns is not None and name not in columns:
                continue
            value = tf.convert_to_tensor(raw[name], tf.string)
            present = tf.strings.length(value) > 0
            out[name] = column.decode_cell(value, present)
            out[name + PRESENCE_SUFFIX] = tf.cast(present, tf.float32)
        return out

    def read_and_decode(self, row: dict, is_path: bool, columns=None) -> tuple:
        """A row of ``rows()`` -> ``(decoded, label)``; a bad file or unknown label raises a TF error."""
        names = [c for c in self.columns if columns is None or c in columns]
        raw = rows_lib.read_files(row, {c: self.columns[c].reads_files for c in names}, is_path)
        label = self.encode_label(row[LABEL_KEY])
        with tf.control_dependencies([tf.debugging.Assert(label >= 0, ["unknown label"])]):
            return self.decode(raw, columns), tf.identity(label)

    def crop_and_augment(self, decoded: dict, training: bool = False, seed: Optional[tf.Tensor] = None) -> dict:
        """Per-example part of ``preprocess``: audio cut to length, image augmentation, SpecAugment masks.

        Everything that needs one seed per example happens here, before ``batch()``; ``featurize``
        then computes features for a whole batch at once. Columns absent from ``decoded`` (replaced
        by cached encodings, ``ENCODED_PREFIX`` keys) pass through with their presence flags.
        """
        if training and seed is None:
            seed = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int64)
        out = {key: value for key, value in decoded.items() if key.startswith(ENCODED_PREFIX)}
        for index, (name, column) in enumerate(self.columns.items()):
            if name + PRESENCE_SUFFIX not in decoded:  # a column left out (encoding_rows reads some only)
                continue
            present = decoded[name + PRESENCE_SUFFIX]
            out[name + PRESENCE_SUFFIX] = present
            if name in decoded:
                column_seed = tf.random.experimental.stateless_fold_in(seed, index) if training else None
                out.update(column.prepare(decoded[name], present, training, column_seed))
        return out

    def featurize(self, batch: dict) -> dict:
        """Batched part of ``preprocess``: ``crop_and_augment``'s output stacked to ``[B, ...]`` -> features."""
        out = {key: value for key, value in batch.items() if key.startswith(ENCODED_PREFIX)}
        for name, column in self.columns.items():
            if name in batch:
                out[name] = column.featurize(batch)
            if name + PRESENCE_SUFFIX in batch:
                out[name + PRESENCE_SUFFIX] = batch[name + PRESENCE_SUFFIX]
        return out

    def preprocess(self, raw: dict, training: bool = False, seed: Optional[tf.Tensor] = None) -> dict:
        """One example: ``raw[c]`` scalar strings -> ``features[c]`` and ``features[c + "_present"]``."""
        prepared = self.crop_and_augment(self.decode(raw), training=training, seed=seed)
        return {k: v[0] for k, v in self.featurize({k: v[None] for k, v in prepared.items()}).items()}

    def prepared_signature(self, training: bool = False) -> dict:
        """Per-example ``tf.TensorSpec``s of ``crop_and_augment``'s output."""
        out = {}
        for name, column in self.columns.items():
            out.update(column.prepared_specs(training))
            out[name + PRESENCE_SUFFIX] = tf.TensorSpec([], tf.float32)
        return out

    def preprocess_batch(self, raw: dict, input_names: Optional[dict] = None) -> dict:
        """A batch of raw strings (``[B]`` per column) -> batched features, inference mode.

        With ``input_names`` (``{column: signature input name}``, the serving signature) every
        column decodes with ``serving_decode``, and a decoder failure fails with
        ``<input>[i] <column.corrupt>`` instead of the decoder's own message.
        """
        raw = {c: tf.convert_to_tensor(raw[c], tf.string) for c in self.columns}
        failures = {name: tf.TensorSpec([], tf.bool) for name in self.columns}

        def one(row):
            decoded, ok = {}, {}
            for name, column in self.columns.items():
                present = tf.strings.length(row[name]) > 0
                if input_names is None:
                    decoded[name], ok[name] = column.decode_cell(row[name], present), tf.constant(True)
                else:
                    decoded[name], ok[name] = tf.cond(present, lambda c=column, v=row[name]: c.serving_decode(v),
                                                      lambda c=column: (c.empty(), tf.constant(True)))
                decoded[name + PRESENCE_SUFFIX] = tf.cast(present, tf.float32)
            return self.crop_and_augment(decoded), ok

        prepared, ok = tf.map_fn(one, raw, fn_output_signature=(self.prepared_signature(), failures))
        assertions = []
        for name, column in (self.columns.items() if input_names is not None else ()):
            problems = tf.where(ok[name], "", column.corrupt)
            assertions.append(assert_no_problems(input_names[name], problems))
        with tf.control_dependencies(assertions):
            return self.featurize({k: tf.identity(v) for k, v in prepared.items()})

    # ------------------------------------------------------------------ persistence
    def get_config(self) -> dict:
        """Settings and all adapted state, JSON-ready; ``Preprocessor.from_config`` is its inverse."""
        return {
            "label": self.label,
            "on_error": self.on_error,
            "features": {c: dataclasses.asdict(f) for c, f in self.features.items()},
            "class_names": self.class_names,
            "columns": {name: column.get_state() for name, column in self.columns.items()},
        }

    @classmethod
    def from_config(cls, config, directory: Optional[str] = None) -> "Preprocessor":
        """The preprocessor ``get_config`` described (adapted state included); ``directory`` is where
        ``save`` wrote it, whose column assets (a preset's tokenizer) are then used."""
        if not isinstance(config, dict):  # the pre-0.2 meaning: a DataConfig
            warnings.warn("Preprocessor.from_config(data_config) is now Preprocessor.from_data_config",
                          DeprecationWarning, stacklevel=2)
            return cls.from_data_config(config)
        features = {c: FEATURE_TYPES[v["modality"]](**v) for c, v in config["features"].items()}
        p = cls(features, label=config["label"], on_error=config.get("on_error", "raise"))
        p._set_classes(config["class_names"])
        states = config.get("columns") or {  # preprocessor.json files written before the column classes
            **{c: {"vocabulary": v} for c, v in config.get("vocabularies", {}).items()},
            **config.get("audio_stats", {})}
        for name, column in p.columns.items():
            if directory is not None:
                column.load_assets(posixpath.join(directory, ASSETS_DIR, name))
            column.set_state(states.get(name, {}))
        p._track_columns()
        return p

    def save(self, directory: str) -> str:
        """Write ``preprocessor.json`` (settings and all adapted state) into ``directory``."""
        self._require_adapted()
        tf.io.gfile.makedirs(directory)
        path = posixpath.join(directory, STATE_FILE)
        for name, column in self.columns.items():
            column.save_assets(posixpath.join(directory, ASSETS_DIR, name))
        with tf.io.gfile.GFile(path, "w") as f:
            json.dump(self.get_config(), f)
        return path

    @classmethod
    def load(cls, directory: str) -> "Preprocessor":
        """The preprocessor saved by ``save(directory)``; it gives identical tensors."""
        path = posixpath.join(directory, STATE_FILE)
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"{path} does not exist (write it with Preprocessor.save)")
        with tf.io.gfile.GFile(path, "r") as f:
            return cls.from_config(json.load(f), directory)
