"""Columns preprocessed by a KerasHub preset's own tokenizer, image converter or audio converter.

A column whose encoder is ``{type: keras_hub, preset: HANDLE}`` gets ``feature.preset = HANDLE``
from the config, and then one of these classes: the preset's preprocessing layer runs inside
``tf.data`` and inside the exported serving graph (under either Keras backend), so the model sees
exactly the inputs the backbone was trained on. The run keeps a copy of that layer
(``save_assets``), so evaluation, export and a reload never go back to the network.

- text: the preset's text classifier preprocessor (tokenizer + packer with its start / end tokens),
  ``int32[sequence_length]`` ids; ``sequence_length`` is the feature's when set, else the preset's.
- image: decode (the same bounded check as ``ImageColumn``) -> the converter's resize -> cached in
  [0, 1] -> augmentation when training -> the converter's scale and offset. ``height``/``width``
  override the converter's image size; the backbone takes RGB.
- audio: decode and resample to the converter's sampling rate -> cut to ``duration`` -> the
  converter's front end (e.g. Whisper's log-mel) on whole batches.

Example (not run here: it needs a preset directory; tests/data/columns/test_keras_hub.py makes tiny ones):
    column = build_column("caption", TextFeature(preset="presets/bert_tiny", sequence_length=16))
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import tensorflow as tf

from mmkeras.data.columns import audio_ops, image_ops
from mmkeras.data.columns.audio import _MASK_PREFIX, AudioColumn
from mmkeras.data.columns.base import Column
from mmkeras.data.columns.image import ImageColumn
from mmkeras.data.columns.noise import drop_tokens
from mmkeras.data.schema import FeatureSpec
from mmkeras.presets import preset_error


def _load(kind: str, handle: str, name: str, **kwargs):
    """The preset's preprocessing layer of ``kind`` (text / image / audio), or a ValueError naming it."""
    import keras_hub

    try:
        if kind == "text":
            try:
                return keras_hub.models.TextClassifierPreprocessor.from_preset(handle, **kwargs)
            except ValueError:  # presets without a classifier preprocessor (CLIP, SigLIP): tokenizer + packer
                tokenizer = keras_hub.models.Tokenizer.from_preset(handle)
                return _TokenizerPacker(tokenizer, **kwargs)
        if kind == "image":
            return keras_hub.layers.ImageConverter.from_preset(handle)
        try:
            return keras_hub.layers.AudioConverter.from_preset(handle, **kwargs)
        except TypeError:  # a converter without a length setting (it takes what it is given)
            return keras_hub.layers.AudioConverter.from_preset(handle)
    except Exception as error:  # noqa: BLE001 - network, missing files, unknown names: one sentence
        raise preset_error(f"data.features.{name}", handle, error) from None


class _TokenizerPacker(tf.Module):
    """Tokenizer + ``StartEndPacker`` for presets that ship only a tokenizer."""

    def __init__(self, tokenizer, sequence_length: int = 64):
        import keras_hub

        super().__init__()
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        start = getattr(tokenizer, "start_token_id", None) or getattr(tokenizer, "cls_token_id", None)
        end = getattr(tokenizer, "end_token_id", None) or getattr(tokenizer, "sep_token_id", None)
        self.packer = keras_hub.layers.StartEndPacker(sequence_length=sequence_length, start_value=start,
                                                      end_value=end, pad_value=tokenizer.pad_token_id or 0)

    def __call__(self, text):
        return {"token_ids": self.packer(self.tokenizer(text))}

    def save_to_preset(self, directory):
        self.tokenizer.save_to_preset(directory)


class _PresetColumn(Column):
    """What the three preset columns share: load, keep and restore the preset's layer."""

    kind = ""

    def __init__(self, name: str, feature):
        super().__init__(name, feature)
        self.layer = None
        self._handle = feature.preset

    def resolve(self, feature):
        return feature  # unset settings come from the preset, not from mmkeras's defaults

    def _options(self) -> dict:
        return {}

    def _ready(self) -> None:
        if self.layer is None:
            self.layer = _load(self.kind, self._handle, self.name, **self._options())

    def adapt(self, reader) -> None:
        self._ready()

    def resources(self) -> Optional[tf.Module]:
        self._ready()
        return self.layer

    def save_assets(self, directory: str) -> None:
        """Write the preset's layer to ``directory``, with the backbone's ``config.json`` (which
        KerasHub reads to pick the layer's class): a preset directory of its own, without weights."""
        from keras_hub.src.utils.preset_utils import get_file

        self._ready()
        tf.io.gfile.makedirs(directory)
        for name in ("config.json", "metadata.json"):
            tf.io.gfile.copy(get_file(self._handle, name), f"{directory}/{name}", overwrite=True)
        self.layer.save_to_preset(directory)

    def load_assets(self, directory: str) -> None:
        """Use the copy ``save_assets`` wrote: no network after training."""
        self._handle = directory
        self.layer = None


class KerasHubTextColumn(_PresetColumn):
    modality = "text"
    kind = "text"

    def _options(self) -> dict:
        return {"sequence_length": self.feature.sequence_length} if self.feature.sequence_length else {}

    @property
    def tokenizer(self):
        self._ready()
        return self.layer.tokenizer

    @property
    def spec(self) -> FeatureSpec:
        self._ready()
        tokenizer = self.tokenizer
        return FeatureSpec(self.name, self.modality, (int(self.layer.sequence_length),), "int32",
                           vocab_size=int(tokenizer.vocabulary_size()), padding_id=int(tokenizer.pad_token_id or 0))

    def problems(self, contents: tf.Tensor, serving: bool = False) -> tf.Tensor:
        from mmkeras.data.columns.bytes import text_problems

        return text_problems(contents)

    def decode(self, value: tf.Tensor) -> tf.Tensor:
        self._ready()
        ids = self.layer(value[None])["token_ids"][0]
        return tf.ensure_shape(tf.cast(ids, tf.int32), self.spec.shape)

    def add_noise(self, batch: dict, level: float, seed: tf.Tensor) -> tf.Tensor:
        return drop_tokens(batch[self.name], level, seed, self.spec.padding_id)

    def decode_cell(self, value: tf.Tensor, present: tf.Tensor) -> tf.Tensor:
        return self.decode(value)  # an empty text is packed like any other; presence 0 hides it


class KerasHubImageColumn(_PresetColumn, ImageColumn):
    modality = "image"
    kind = "image"

    def _ready(self) -> None:
        super()._ready()
        if self.feature.height and self.feature.width:
            self.layer.image_size = (self.feature.height, self.feature.width)

    @property
    def spec(self) -> FeatureSpec:
        self._ready()
        height, width = self.layer.image_size
        return FeatureSpec(self.name, self.modality, (int(height), int(width), 3), "float32")

    def decode(self, value: tf.Tensor) -> tf.Tensor:
        self._ready()
        image = tf.io.decode_image(self.checked_bytes(value), channels=3, expand_animations=False, dtype=tf.uint8)
        resized = self.layer.resizing(tf.cast(image, tf.float32)[None])[0]
        return tf.ensure_shape(tf.clip_by_value(resized / 255.0, 0.0, 1.0), self.spec.shape)

    def featurize(self, batch: dict) -> tf.Tensor:
        x = batch[self.name] * 255.0
        if self.layer.scale is not None:
            x = x * tf.constant(self.layer.scale, tf.float32)
        if self.layer.offset is not None:
            x = x + tf.constant(self.layer.offset, tf.float32)
        return x * batch[self.presence_key][:, None, None, None]


class KerasHubAudioColumn(_PresetColumn, AudioColumn):
    modality = "audio"
    kind = "audio"

    def __init__(self, name: str, feature):
        _PresetColumn.__init__(self, name, feature)
        self.mean = self.std = None
        self._stats = {}

    def _options(self) -> dict:
        # Whisper's converter pads every clip to max_audio_length whole seconds (30 by default).
        return {"max_audio_length": max(1, math.ceil(self.feature.duration))}

    def _ready(self) -> None:
        super()._ready()
        # The cut, the decode window and resampling all work at the converter's rate.
        self.feature = dataclasses.replace(self.feature, sample_rate=int(self.layer.sampling_rate))

    @property
    def spec(self) -> FeatureSpec:
        self._ready()
        shape = self.layer(tf.zeros([1, audio_ops.num_samples(self.feature)])).shape[1:]
        return FeatureSpec(self.name, self.modality, tuple(int(d) for d in shape), "float32")

    def decode(self, value: tf.Tensor) -> tf.Tensor:
        self._ready()
        return AudioColumn.decode(self, value)

    def serving_decode(self, value: tf.Tensor):
        self._ready()
        return AudioColumn.serving_decode(self, value)

    def featurize(self, batch: dict) -> tf.Tensor:
        values = self.layer(batch[self.name])
        mask = batch.get(_MASK_PREFIX + self.name)  # SpecAugment, drawn per example by prepare()
        if mask is not None:
            values = values * mask
        values = values * tf.cast(batch[self.presence_key], values.dtype)[:, None, None]
        return tf.ensure_shape(values, [None, *self.spec.shape])


PRESET_COLUMNS = {"text": KerasHubTextColumn, "image": KerasHubImageColumn, "audio": KerasHubAudioColumn}
__all__ = ["PRESET_COLUMNS", "image_ops"]
