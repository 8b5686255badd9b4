"""``Column``: everything one modality's preprocessing owns, behind one interface.

A column turns the raw cell of one manifest column (a text, or the encoded bytes of a file) into
model features, in stages the pipeline runs at different places:

1. ``adapt(reader)`` on the train split: vocabularies, statistics (``get_state`` / ``set_state``
   save and restore them as JSON).
2. ``decode(value)``: deterministic, cacheable; one example. Refuses a file ``problems`` refuses,
   before anything large is allocated.
3. ``prepare(decoded, training, seed)``: per example, after the cache: crops, augmentation;
   returns ``{key: tensor}`` (the column's own key, plus any helper keys it hands to ``featurize``).
4. ``featurize(batch)``: on whole batches after ``batch()``: e.g. audio front ends.

``problems(contents[B])`` is the single verdict on a cell's bytes, used by validation, by the
diagnosis of a training failure and by the serving signature, so a file gets one verdict in one
wording everywhere. ``spec`` describes the model input (``mmkeras.data.schema.FeatureSpec``).

A new modality is one subclass in its own file plus one line in ``mmkeras.data.columns.COLUMNS``.

Example:
    >>> class Upper(Column):
    ...     modality = "shout"
    ...     spec = FeatureSpec("text", "shout", (), "string")
    ...     def decode(self, value):
    ...         return tf.strings.upper(value)
    >>> Upper("text", feature=None).decode(tf.constant("hi")).numpy()
    b'HI'
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar, Optional

import tensorflow as tf

from mmkeras.data.columns.noise import NOISE
from mmkeras.data.schema import PRESENCE_SUFFIX, FeatureSpec


@dataclasses.dataclass
class Feature(abc.ABC):
    """The settings of one ``data.features.<column>``: a dataclass per modality, whose fields are the
    valid keys (checked at config load by ``check``).

    ``preset`` is set from ``model.encoders.<column>.preset`` when the column's encoder is a KerasHub
    preset; the column is then preprocessed by that preset's tokenizer / converter. Fields that a
    preset supplies default to None: ``resolved()`` fills them with mmkeras's own defaults
    (``DEFAULTS``) for columns without a preset.
    """

    modality: str = ""
    preset: Optional[str] = None
    DEFAULTS: ClassVar[dict] = {}
    CHOICES: ClassVar[dict] = {}

    def resolved(self):
        """A copy with every None field of ``DEFAULTS`` set to its default."""
        return dataclasses.replace(self, **{k: v for k, v in self.DEFAULTS.items() if getattr(self, k) is None})

    def check(self, where: str) -> None:
        """Fail naming ``<where>.<key>`` and the value when a setting is out of range."""

    def check_preset(self, column: str, where: str, backbone: dict) -> None:
        """Fail naming both keys when a setting of ``data.features.<column>`` contradicts the preset
        of ``where`` (``model.encoders.<column>``), whose backbone config is ``backbone``."""

    @abc.abstractmethod
    def spec(self, column: str) -> FeatureSpec:
        """The column's ``FeatureSpec`` before adapting (what the config check builds the model on)."""


class Column(abc.ABC):
    """One feature column's preprocessing (see the module docstring for the stages).

    Args:
        name: the manifest column, also the model input name.
        feature: the column's settings (a ``TextFeature`` / ``ImageFeature`` / ``AudioFeature``).

    Class attributes:
        modality: the registry name (``text``, ``image``, ``audio``).
        reads_files: True when cells name files (image, audio): the pipeline reads them.
        raw_input_suffix: the serving input of this column is ``<name or modality><suffix>``.
        corrupt: the sentence for a cell whose checks pass but whose decoder fails.
    """

    modality = ""
    feature_class: type = Feature
    reads_files = False
    raw_input_suffix = ""
    corrupt = "cannot be decoded"

    def __init__(self, name: str, feature):
        self.name = name
        self.feature = self.resolve(feature)

    def resolve(self, feature):
        """The settings the column works with: the feature with mmkeras's defaults filled in."""
        return feature.resolved() if isinstance(feature, Feature) else feature

    # ------------------------------------------------------------------ description
    @property
    def presence_key(self) -> str:
        return f"{self.name}{PRESENCE_SUFFIX}"

    @property
    @abc.abstractmethod
    def spec(self) -> FeatureSpec:
        """Shape and dtype of the model input (valid once adapted)."""

    @property
    def augments(self) -> bool:
        """True when training changes the column's input every epoch (augmentation)."""
        return bool(getattr(self.feature, "augment", None) or getattr(self.feature, "spec_augment", None))

    @property
    def noise(self):
        """The corruption robustness curves apply to this column (``mmkeras.data.columns.noise``), or None."""
        return NOISE.get(self.modality)

    def add_noise(self, batch: dict, level: float, seed: tf.Tensor) -> tf.Tensor:
        """The column's value in ``batch`` (``prepare``'s output, batched) corrupted at ``level``; a
        missing cell stays as it was."""
        value = batch[self.name]
        present = tf.reshape(batch[self.presence_key] > 0, [-1] + [1] * (len(value.shape) - 1))
        return tf.where(present, self.noise.apply(value, level, seed), value)

    @property
    def cache_caveat(self) -> Optional[str]:
        """What caching a frozen encoder's outputs of this column gives up (logged), or None."""
        return None

    @property
    def decoded_spec(self) -> tf.TensorSpec:
        """``decode``'s output for one example (the cache holds these)."""
        return tf.TensorSpec(self.spec.shape, self.spec.dtype)

    def prepared_specs(self, training: bool = False) -> dict:
        """``{key: tf.TensorSpec}`` of ``prepare``'s output for one example."""
        return {self.name: tf.TensorSpec(self.spec.shape, self.spec.dtype)}

    # ------------------------------------------------------------------ adapted state
    def adapt(self, reader) -> None:
        """Learn state from the train split. ``reader.cells(name)`` gives the column's raw cells,
        ``reader.decoded(name)`` a ``tf.data`` dataset of ``(decoded, present)``. Default: nothing."""

    def get_state(self) -> dict:
        """Adapted state as JSON-ready values ({} when there is none)."""
        return {}

    def set_state(self, state: dict) -> None:
        """Restore what ``get_state`` returned."""

    def save_assets(self, directory: str) -> None:
        """Write files the column needs besides ``get_state`` (a preset's tokenizer) to ``directory``."""

    def load_assets(self, directory: str) -> None:
        """Use the files ``save_assets`` wrote to ``directory``."""

    def resources(self) -> Optional[tf.Module]:
        """The ``tf.Module`` holding the column's tables (tracked by exports), or None."""
        return None

    # ------------------------------------------------------------------ checks
    def problems(self, contents: tf.Tensor, serving: bool = False) -> tf.Tensor:
        """``string[B]``: why each cell of ``contents[B]`` cannot be used ("" when it can or is empty).

        ``serving`` is True in the exported signature, which may accept less than training does.
        """
        return tf.fill(tf.shape(contents), "")

    # ------------------------------------------------------------------ run time
    def empty(self) -> tf.Tensor:
        """The decoded value of a missing cell."""
        return tf.zeros(self.decoded_spec.shape, self.decoded_spec.dtype)

    @abc.abstractmethod
    def decode(self, value: tf.Tensor) -> tf.Tensor:
        """A non-empty cell (text, or file bytes) -> the decoded example."""

    def serving_decode(self, value: tf.Tensor):
        """``(decoded, ok)`` inside the exported signature, where only core TF ops may run and a
        decoder failure must be reported as ``<input>[i] <corrupt>`` rather than raised. Default:
        ``decode`` (which cannot fail after ``problems`` passed)."""
        return self.decode(value), tf.constant(True)

    def decode_cell(self, value: tf.Tensor, present: tf.Tensor) -> tf.Tensor:
        """``decode`` for a present cell, ``empty()`` for a missing one."""
        return tf.cond(present, lambda: self.decode(value), self.empty)

    def prepare(self, decoded: tf.Tensor, present: tf.Tensor, training: bool = False,
                seed: Optional[tf.Tensor] = None) -> dict:
        """Per-example work after the cache; ``seed`` (int64 ``[2]``) is set when ``training``."""
        return {self.name: decoded}

    def featurize(self, batch: dict) -> tf.Tensor:
        """``prepare``'s keys stacked to ``[B, ...]`` (and the presence flags) -> the model input."""
        return batch[self.name]
