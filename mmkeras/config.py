"""Experiment configuration: YAML -> validated dataclasses, with ``--set`` overrides.

A config has four sections, ``data``, ``model``, ``train`` and ``export``. Every section is a
dataclass whose fields are its valid keys; an unknown or ill-typed key fails on load with an error
that names it and lists the valid ones.

Example:
    >>> cfg = config_from_dict({"data": {"label": "label",
    ...     "features": {"text": {"modality": "text", "sequence_length": 8}}}})
    >>> cfg.data.features["text"].sequence_length
    8
    >>> apply_overrides(cfg, ["train.epochs=3"]).train.epochs
    3
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from mmkeras.errors import ConfigError


# --------------------------------------------------------------------------- features
@dataclass
class TextFeature:
    """A text column: standardized, tokenized to ``sequence_length`` ids (0 = padding, 1 = OOV)."""

    modality: str = "text"
    max_tokens: int = 5000
    sequence_length: int = 32
    standardize: str = "lower_and_strip_punctuation"
    split: str = "whitespace"
    tokenizer: str = "vectorize"
    vocabulary_file: Optional[str] = None


@dataclass
class ImageFeature:
    """An image column: decoded (PNG/JPEG/GIF/BMP), resized to ``height x width x channels``, scaled."""

    modality: str = "image"
    height: int = 28
    width: int = 28
    channels: int = 1
    resize: str = "pad"
    max_bytes: int = 20_000_000
    augment: dict = field(default_factory=dict)


@dataclass
class AudioFeature:
    """An audio column: WAV decoded, resampled to ``sample_rate``, cut/padded, turned into features."""

    modality: str = "audio"
    sample_rate: int = 8000
    duration: float = 1.0
    frontend: str = "logmel"
    frame_length: int = 256
    frame_step: int = 128
    fft_length: int = 256
    num_mel_bins: int = 40
    num_mfcc: int = 13
    normalize: bool = True
    max_bytes: int = 50_000_000
    spec_augment: dict = field(default_factory=dict)


FEATURE_TYPES: dict[str, type] = {"text": TextFeature, "image": ImageFeature, "audio": AudioFeature}


# --------------------------------------------------------------------------- sections
@dataclass
class DataConfig:
    """Where the examples are and how to read them. Manifest paths are relative to the config file."""

    train: Optional[str] = None
    validation: Optional[str] = None
    test: Optional[str] = None
    label: str = "label"
    features: dict = field(default_factory=dict)
    prepare: Optional[str] = None
    on_error: str = "raise"
    cache: str = "memory"
    shuffle_buffer: int = 2048
    seed: int = 0


@dataclass
class ModelConfig:
    """Which encoder per feature column, which fusion, which head (names from ``mmkeras.registry``).

    ``encoders`` maps a column to ``{"type": NAME, **settings}``; ``fusion`` and ``head`` are
    ``{"type": NAME, **settings}``. Settings are checked against the factory's keyword arguments.
    """

    encoders: dict = field(default_factory=dict)
    fusion: dict = field(default_factory=lambda: {"type": "concat"})
    head: dict = field(default_factory=lambda: {"type": "softmax"})
    modality_dropout: float = 0.0


@dataclass
class TrainConfig:
    """How to train: epochs, global batch size, device strategy, precision, optimizer.

    ``backend`` is ``tensorflow`` or ``jax``; left empty it follows ``KERAS_BACKEND`` (default tensorflow).
    ``batch_size`` is global: it is divided among the replicas of the strategy.
    """

    backend: Optional[str] = None
    epochs: int = 5
    batch_size: int = 32
    strategy: str = "auto"
    precision: str = "float32"
    jit_compile: bool = False
    steps_per_execution: int = 1
    optimizer: str = "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.0
    schedule: str = "cosine"
    clipnorm: Optional[float] = 1.0
    label_smoothing: float = 0.0
    loss: str = "crossentropy"
    focal_gamma: float = 2.0
    class_weight: Optional[str] = None
    early_stopping_patience: Optional[int] = None
    seed: int = 0
    verbose: int = 1


@dataclass
class ExportConfig:
    """What the exported SavedModel returns."""

    top_k: int = 3
    warmup_examples: int = 4


@dataclass
class Config:
    """A whole experiment. ``source`` is the file it came from (for relative paths)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    source: Optional[str] = None

    def resolve_path(self, path: Optional[str]) -> Optional[str]:
        """A manifest path made absolute against the config file's folder (URIs pass through)."""
        if path is None or "://" in path or os.path.isabs(path):
            return path
        base = Path(self.source).parent if self.source else Path.cwd()
        return str((base / path).resolve())

    def to_dict(self) -> dict:
        """Plain dict (YAML-ready); ``source`` is left out."""
        out = dataclasses.asdict(self)
        out.pop("source")
        return out


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "export": ExportConfig,
}

CHOICES: dict[str, tuple] = {
    "data.on_error": ("raise", "skip"),
    "train.backend": (None, "tensorflow", "jax"),
    "train.strategy": ("auto", "cpu", "gpu", "mirrored", "tpu", "multi_worker", "data_parallel"),
    "train.precision": ("float32", "mixed_float16", "mixed_bfloat16"),
    "train.optimizer": ("adamw", "adam", "sgd"),
    "train.schedule": ("cosine", "constant"),
    "train.loss": ("crossentropy", "focal"),
    "train.class_weight": (None, "balanced"),
    "text.standardize": ("lower_and_strip_punctuation", "lower", "strip_punctuation", "none"),
    "text.split": ("whitespace", "character"),
    "text.tokenizer": ("vectorize", "wordpiece"),
    "image.resize": ("pad", "crop", "stretch"),
    "image.channels": (1, 3, 4),
    "audio.frontend": ("waveform", "stft", "logmel", "mfcc"),
}


# --------------------------------------------------------------------------- building
def _type_ok(value: Any, annotation: Any) -> bool:
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing) | {"Optional": Optional, "Union": Union})  # noqa: S307
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, annotation)


def _type_name(annotation: Any) -> str:
    return str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")


def build_section(cls: type, values: Any, where: str, choices_prefix: str):
    """Instantiate dataclass ``cls`` from ``values``, failing with the key path on any problem."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__} {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {where}.{unknown[0]}; valid keys of {where}: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if not _type_ok(value, hints[key]):
            raise ConfigError(
                f"{where}.{key} must be {_type_name(hints[key])}, got {type(value).__name__} {value!r}"
            )
        allowed = CHOICES.get(f"{choices_prefix}.{key}")
        if allowed is not None and value not in allowed:
            raise ConfigError(
                f"{where}.{key}={value!r} is not valid; choose one of: "
                + ", ".join(repr(a) for a in allowed)
            )
    return cls(**values)


def _build_features(features: Any) -> dict:
    if not isinstance(features, dict):
        raise ConfigError(f"data.features must map column names to settings, got {features!r}")
    out = {}
    for column, settings in features.items():
        where = f"data.features.{column}"
        if not isinstance(settings, dict) or "modality" not in settings:
            raise ConfigError(
                f"{where} needs a 'modality' key, one of: {', '.join(FEATURE_TYPES)} (got {settings!r})"
            )
        modality = settings["modality"]
        if modality not in FEATURE_TYPES:
            raise ConfigError(
                f"{where}.modality={modality!r} is not valid; choose one of: {', '.join(FEATURE_TYPES)}"
            )
        out[column] = build_section(FEATURE_TYPES[modality], settings, where, modality)
    return out


def _check_named_components(model: ModelConfig) -> None:
    for where, spec in [("model.fusion", model.fusion), ("model.head", model.head)] + [
        (f"model.encoders.{column}", spec) for column, spec in model.encoders.items()
    ]:
        if not isinstance(spec, dict) or "type" not in spec:
            raise ConfigError(f"{where} needs a 'type' key naming a registered component (got {spec!r})")


def config_from_dict(values: dict, source: Optional[str] = None) -> Config:
    """Validate a plain dict (as loaded from YAML) into a ``Config``."""
    values = copy.deepcopy(values or {})
    if not isinstance(values, dict):
        raise ConfigError(f"a config must be a mapping with sections {', '.join(SECTIONS)}")
    unknown = sorted(set(values) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section {unknown[0]!r}; valid sections: {', '.join(SECTIONS)}")
    data_values = dict(values.get("data") or {})
    features = _build_features(data_values.pop("features", {}) or {})
    data = build_section(DataConfig, data_values, "data", "data")
    data.features = features
    model = build_section(ModelConfig, values.get("model"), "model", "model")
    _check_named_components(model)
    for column in model.encoders:
        if features and column not in features:
            raise ConfigError(
                f"model.encoders.{column} names no feature column; columns in data.features: "
                + ", ".join(features)
            )
    return Config(
        data=data,
        model=model,
        train=build_section(TrainConfig, values.get("train"), "train", "train"),
        export=build_section(ExportConfig, values.get("export"), "export", "export"),
        source=source,
    )


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects section.key=value, got {item!r}")
    key, raw = item.split("=", 1)
    path = key.strip().split(".")
    if len(path) < 2 or path[0] not in SECTIONS:
        raise ConfigError(
            f"--set {item!r}: the key must start with a section ({', '.join(SECTIONS)}), e.g. train.epochs=3"
        )
    return path, yaml.safe_load(raw) if raw.strip() else None


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Return a new config with ``section.key[.sub]=value`` overrides applied (values parsed as YAML)."""
    values = config.to_dict()
    for item in overrides or []:
        path, value = _parse_override(item)
        node = values
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return config_from_dict(values, source=config.source)


def load_config(path: Union[str, os.PathLike], overrides: Optional[list[str]] = None) -> Config:
    """Read a YAML config file, validate it and apply ``overrides``.

    Raises ``ConfigError`` naming the file and key when the file is missing or a key is wrong.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    try:
        config = config_from_dict(values, source=str(path.resolve()))
        return apply_overrides(config, overrides or [])
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def save_config(config: Config, path: Union[str, os.PathLike]) -> None:
    """Write the resolved config (manifest paths made absolute) as YAML."""
    values = config.to_dict()
    for split in ("train", "validation", "test"):
        values["data"][split] = config.resolve_path(values["data"][split])
    Path(path).write_text(yaml.safe_dump(values, sort_keys=False))
