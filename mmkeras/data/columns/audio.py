"""Audio columns: sound files -> mono waveform at ``sample_rate`` -> ``stft`` / ``logmel`` / ``mfcc``
frames (or the waveform), normalized with per-bin statistics adapted on the train split.

WAV files (8/16/24/32-bit PCM, 32-bit float, plain or WAVE_FORMAT_EXTENSIBLE) are read with pure TF
ops (``mmkeras.data.columns.wav``), in training and inside the exported serving graph alike. FLAC,
OGG and MP3 files are read with soundfile in the training pipeline only; the serving signature takes
WAV and says so (``mmkeras predict`` converts such files before sending them). Only the centre
``DECODE_WINDOW`` x ``duration`` seconds of a file are decoded and resampled, so a long file (or one
that claims a rate of a few Hz) costs what the configured duration needs; training crops its random
window from those.

Example:
    >>> import io, wave, numpy as np
    >>> feature = AudioFeature(sample_rate=8000, duration=0.5, num_mel_bins=16, normalize=False)
    >>> buffer = io.BytesIO()
    >>> with wave.open(buffer, "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    ...     w.writeframes((np.sin(np.arange(16000) * 0.1) * 3000).astype("<i2").tobytes())
    >>> column = AudioColumn("speech", feature)
    >>> column.decode(tf.constant(buffer.getvalue())).shape, column.spec.shape
    (TensorShape([8000]), (30, 16))
    >>> column.problems(tf.constant([b"fLaC...", b"RIFF"]), serving=True).numpy()[0]
    b'is a FLAC file; the exported model takes WAV files (mmkeras predict converts other formats)'
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
from typing import ClassVar, Optional

import numpy as np
import tensorflow as tf

from mmkeras.config_schema import above, as_config_error, at_least
from mmkeras.data.columns import audio_ops, wav
from mmkeras.data.columns.base import Column, Feature
from mmkeras.data.columns.bytes import four_cc, read_bytes, size_of
from mmkeras.data.schema import FeatureSpec
from mmkeras.errors import ConfigError
from mmkeras.presets import read_preset_json

logger = logging.getLogger(__name__)
#: Seconds decoded per file, as a multiple of the configured duration (the centre of the file).
DECODE_WINDOW = 3.0
_MIN_STD = 1e-5
# Key of the per-example SpecAugment keep-mask that prepare() hands to featurize() through batch().
_MASK_PREFIX = "_spec_augment_keep:"
_COMPRESSED = ("FLAC", "OGG", "MP3")


@dataclasses.dataclass
class AudioFeature(Feature):
    """An audio column: decoded, resampled to ``sample_rate``, cut/padded to ``duration``, featurized.

    ``sample_rate`` defaults to 8000 Hz, or to the converter's rate when the column's encoder is a
    KerasHub preset (whose converter then replaces ``frontend`` .. ``normalize``).
    """

    modality: str = "audio"
    sample_rate: Optional[int] = None
    duration: float = 1.0
    frontend: str = "logmel"
    frame_length: int = 256
    frame_step: int = 128
    fft_length: int = 256
    num_mel_bins: int = 40
    num_mfcc: int = 13
    normalize: bool = True
    max_bytes: int = 50_000_000
    spec_augment: dict = dataclasses.field(default_factory=dict)
    DEFAULTS: ClassVar[dict] = {"sample_rate": 8000}
    CHOICES: ClassVar[dict] = {"frontend": ("waveform", "stft", "logmel", "mfcc")}

    def check(self, where: str) -> None:
        for key in ("frame_length", "frame_step", "fft_length", "num_mel_bins", "num_mfcc", "max_bytes"):
            at_least(f"{where}.{key}", getattr(self, key), 1)
        if self.sample_rate is not None:
            at_least(f"{where}.sample_rate", self.sample_rate, 1)
        above(f"{where}.duration", self.duration, 0)
        if self.preset is None:
            as_config_error(where, audio_ops.check_feature, self.resolved(), where)

    def check_preset(self, column: str, where: str, backbone: dict) -> None:
        if self.sample_rate is None:
            return
        rate = read_preset_json(self.preset, "audio_converter.json", where)["config"].get("sampling_rate")
        if rate is not None and rate != self.sample_rate:
            raise ConfigError(f"data.features.{column}.sample_rate={self.sample_rate} contradicts {where}.preset="
                              f"{self.preset!r}, whose audio converter takes {rate} Hz; remove the key (files are "
                              f"resampled to {rate} Hz)")

    def spec(self, column: str) -> FeatureSpec:
        return FeatureSpec(column, "audio", audio_ops.feature_shape(self.resolved()), "float32")


def _compressed_kind(contents: tf.Tensor) -> tf.Tensor:
    """0 FLAC, 1 OGG, 2 MP3 by signature, 3 otherwise."""
    first = read_bytes(contents, 0, 2)
    mpeg_sync = tf.equal(first[0], 0xFF) & tf.equal(first[1] // 32, 7)
    kinds = tf.stack([tf.equal(four_cc(contents, 0), "fLaC"), tf.equal(four_cc(contents, 0), "OggS"),
                      tf.equal(four_cc(contents, 0, 3), "ID3") | mpeg_sync])
    return tf.where(tf.reduce_any(kinds), tf.argmax(tf.cast(kinds, tf.int32), output_type=tf.int32), 3)


def _soundfile_read(contents: bytes, seconds: float):
    """Centre ``seconds`` of a FLAC/OGG/MP3 file as mono float32, and its rate (runs in numpy)."""
    import soundfile

    contents = contents.item() if isinstance(contents, np.ndarray) else contents  # a 0-d object array
    with soundfile.SoundFile(io.BytesIO(contents)) as handle:
        rate = int(handle.samplerate)
        if not wav.MIN_SAMPLE_RATE <= rate <= wav.MAX_SAMPLE_RATE:
            raise ValueError(f"sample rate {rate} Hz is outside {wav.MIN_SAMPLE_RATE}-{wav.MAX_SAMPLE_RATE} Hz")
        wanted = int(math.ceil(seconds * rate))
        if handle.frames > wanted:
            handle.seek((handle.frames - wanted) // 2)
        samples = handle.read(min(wanted, handle.frames) if handle.frames > 0 else wanted, dtype="float32",
                              always_2d=True)
    if samples.shape[0] == 0:
        raise ValueError("no samples")
    return samples.mean(axis=1).astype(np.float32), np.int64(rate)


def _soundfile_problem(contents: bytes) -> bytes:
    try:
        _soundfile_read(contents, 0.01)
    except Exception as error:  # noqa: BLE001 - any decoder failure is the file's verdict
        return f"cannot be decoded ({error})".encode()
    return b""


class AudioColumn(Column):
    """An audio column; cells name sound files (or hold their bytes, from TFRecords)."""

    modality = "audio"
    feature_class = AudioFeature
    reads_files = True
    raw_input_suffix = "_bytes"
    corrupt = "cannot be decoded"

    def __init__(self, name: str, feature):
        super().__init__(name, feature)
        self.mean: Optional[tf.Tensor] = None
        self.std: Optional[tf.Tensor] = None
        self._stats: dict = {}

    # ------------------------------------------------------------------ description
    @property
    def num_samples(self) -> int:
        return audio_ops.num_samples(self.feature)

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec(self.name, self.modality, audio_ops.feature_shape(self.feature), "float32")

    @property
    def cache_caveat(self) -> Optional[str]:
        return (f"its cached encodings use each clip's centre window, so clips longer than duration="
                f"{self.feature.duration} s are not randomly cropped; set data.cache: none to keep that")

    @property
    def decoded_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None], tf.float32)

    def prepared_specs(self, training: bool = False) -> dict:
        specs = {self.name: tf.TensorSpec([self.num_samples], tf.float32)}
        if training and self.feature.spec_augment:
            specs[_MASK_PREFIX + self.name] = tf.TensorSpec(self.spec.shape, tf.float32)
        return specs

    def empty(self) -> tf.Tensor:
        return tf.zeros([0], tf.float32)

    # ------------------------------------------------------------------ checks
    def problems(self, contents: tf.Tensor, serving: bool = False) -> tf.Tensor:
        max_bytes = self.feature.max_bytes

        def one(c):
            size = size_of(c)
            kind = _compressed_kind(c)
            if serving:
                names = tf.constant(_COMPRESSED + ("",))
                compressed = tf.strings.join(["is a ", tf.gather(names, kind), " file; the exported model takes "
                                              "WAV files (mmkeras predict converts other formats)"])
                problem = tf.cond(kind < 3, lambda: compressed, lambda: wav.parse_wav(c).problem)
            else:
                problem = tf.cond(kind < 3, lambda: tf.numpy_function(_soundfile_problem, [c], tf.string,
                                                                      stateful=False),
                                  lambda: wav.parse_wav(c).problem)
            too_large = tf.strings.format("is {} bytes, above the limit max_bytes={}", (size, max_bytes))
            problem = tf.where(size > max_bytes, too_large, problem)
            return tf.where(tf.equal(size, 0), "", tf.reshape(problem, []))

        return tf.map_fn(one, contents, fn_output_signature=tf.string)

    # ------------------------------------------------------------------ decoding
    def _read_wav(self, value: tf.Tensor):
        info = wav.parse_wav(value)
        usable = tf.equal(info.problem, "") & (size_of(value) <= self.feature.max_bytes)
        with tf.control_dependencies([tf.debugging.Assert(usable, ["WAV refused by its header check"])]):
            frames = tf.math.ceil(DECODE_WINDOW * self.feature.duration * tf.cast(info.rate, tf.float32))
            samples = wav.decode_wav(value, max_frames=tf.cast(frames, tf.int64), info=info)
        return audio_ops.resample(samples, info.rate, self.feature.sample_rate)

    def decode(self, value: tf.Tensor) -> tf.Tensor:
        def from_soundfile():
            samples, rate = tf.numpy_function(_soundfile_read, [value, DECODE_WINDOW * self.feature.duration],
                                              [tf.float32, tf.int64], stateful=False)
            samples, rate = tf.ensure_shape(samples, [None]), tf.ensure_shape(rate, [])
            return audio_ops.resample(samples, rate, self.feature.sample_rate)

        return tf.cond(_compressed_kind(value) < 3, from_soundfile, lambda: self._read_wav(value))

    def serving_decode(self, value: tf.Tensor):
        # WAV only: the serving graph holds core TF ops, and problems(serving=True) refused the rest.
        return self._read_wav(value), tf.constant(True)

    def prepare(self, decoded: tf.Tensor, present: tf.Tensor, training: bool = False,
                seed: Optional[tf.Tensor] = None) -> dict:
        out = {self.name: audio_ops.fix_length(decoded, self.feature, training, seed)}
        if training and self.feature.spec_augment:
            mask_seed = tf.random.experimental.stateless_fold_in(seed, 1)
            out[_MASK_PREFIX + self.name] = audio_ops.spec_augment_mask(self.spec.shape, self.feature.spec_augment,
                                                                        mask_seed)
        return out

    def featurize(self, batch: dict) -> tf.Tensor:
        values = audio_ops.frontend(batch[self.name], self.feature)
        if self.mean is not None:
            values = (values - self.mean) / self.std
        if _MASK_PREFIX + self.name in batch:
            values = values * batch[_MASK_PREFIX + self.name]
        values = values * batch[self.presence_key][..., None, None]
        return tf.ensure_shape(values, [None, *self.spec.shape])

    # ------------------------------------------------------------------ adapted state
    def adapt(self, reader) -> None:
        if not self.feature.normalize:
            return
        bins = audio_ops.num_bins(self.feature)
        total, squares, count = np.zeros(bins), np.zeros(bins), 0
        fixed = reader.decoded(self.name).map(lambda waveform, present: (
            audio_ops.fix_length(waveform, self.feature), present), num_parallel_calls=tf.data.AUTOTUNE)
        batches = fixed.batch(64).map(lambda waveforms, present: (
            audio_ops.frontend(waveforms, self.feature), present), num_parallel_calls=tf.data.AUTOTUNE)
        for values, present in batches:
            values = values.numpy()[present.numpy() > 0].astype(np.float64).reshape(-1, bins)
            total, squares, count = total + values.sum(0), squares + (values ** 2).sum(0), count + len(values)
        if count == 0:
            logger.warning("audio column %s: no audio in the train split; statistics left at 0/1", self.name)
            self.set_state({"mean": [0.0] * bins, "std": [1.0] * bins})
            return
        mean = total / count
        std = np.maximum(np.sqrt(np.maximum(squares / count - mean ** 2, 0.0)), _MIN_STD)
        self.set_state({"mean": mean.tolist(), "std": std.tolist()})

    def get_state(self) -> dict:
        return dict(self._stats)

    def set_state(self, state: dict) -> None:
        self._stats = {key: [float(x) for x in state[key]] for key in ("mean", "std") if key in state}
        if self._stats:
            self.mean = tf.constant(self._stats["mean"], tf.float32)
            self.std = tf.constant(self._stats["std"], tf.float32)
