"""Experiment configuration: YAML -> validated dataclasses, with ``--set`` overrides.

A config has six sections, ``data``, ``model``, ``train``, ``export``, ``pretrain``, ``distill``. Each is a
dataclass whose fields are its valid keys; an unknown or ill-typed key fails on load with an error
that names it and lists the valid ones. Everything else that can be known without reading data
is checked on load too, each error naming the key path and the value: numeric ranges and
cross-field rules (``mmkeras.config_checks``), each feature column's settings (its dataclass's
``check``), and every encoder, fusion and head setting, by building the model the config
describes (``mmkeras.models.dry_build``). Float fields accept numeric strings (YAML reads ``1e-3``
as one); ``--set data.features.<column>=null`` removes a column and its encoder.

Example:
    >>> cfg = config_from_dict({"data": {"label": "label",
    ...     "features": {"text": {"modality": "text", "sequence_length": 8}}}})
    >>> cfg.data.features["text"].sequence_length
    8
    >>> apply_overrides(cfg, ["train.epochs=3"]).train.epochs
    3
    >>> apply_overrides(cfg, ["model.encoders.text.type=embedding", "model.encoders.text.pooling=sum"])
    Traceback (most recent call last):
    ...
    mmkeras.errors.ConfigError: model.encoders.text.pooling='sum' is not valid; choose one of: 'mean', 'max'
"""

from __future__ import annotations

import copy
import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import yaml

from mmkeras.config_checks import check_config
from mmkeras.config_features import attach_presets, build_features, feature_types
from mmkeras.configs import locate as locate_config, manifest_base
from mmkeras.config_overrides import apply_to_dict
from mmkeras.config_schema import build_section, choices_for, read_utf8
from mmkeras.errors import ConfigError


# --------------------------------------------------------------------------- sections
@dataclass
class DataConfig:
    """Where the examples are and how to read them. Manifest paths are relative to the config file (to
    the working directory for a bundled config, see ``mmkeras.configs``)."""

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
    label_fraction: float = 1.0


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
    init_from: Optional[str] = None


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
    jit_compile: Union[bool, str] = "auto"
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
    verbose: Union[int, str] = "auto"
    calibrate: bool = True


@dataclass
class ExportConfig:
    """What the exported SavedModel returns."""

    top_k: int = 3
    warmup_examples: int = 4


@dataclass
class PretrainConfig:
    """Contrastive pretraining (``mmkeras pretrain``): the loss, its own schedule, and the pairs of
    columns (``"image-text"``; empty: every pair of ``data.features``). Backend, strategy, precision
    and seed come from ``train``."""

    loss: str = "siglip"
    epochs: int = 10
    batch_size: int = 64
    projection_dim: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    pairs: list = field(default_factory=list)


@dataclass
class DistillConfig:
    """``mmkeras distill``: the soft-target loss and which rows it trains on (``mmkeras.training.distill``)."""

    temperature: float = 4.0
    alpha: float = 0.7
    unlabelled: bool = True
    calibrated_teacher: bool = False


@dataclass
class Config:
    """A whole experiment. ``source`` is the file it came from (for relative paths)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    source: Optional[str] = None

    def resolve_path(self, path: Optional[str]) -> Optional[str]:
        """A manifest path made absolute against the config file's folder, or the working folder for a
        bundled config (``mmkeras.configs``); URIs pass through."""
        if path is None or "://" in path or os.path.isabs(path):
            return path
        base = manifest_base(self.source)
        return str((base / path).resolve())

    def to_dict(self) -> dict:
        """Plain dict (YAML-ready); ``source`` is left out."""
        out = dataclasses.asdict(self)
        out.pop("source")
        return out


#: Section name -> its dataclass, in the order of ``Config``'s fields.
SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config) if f.name != "source"}

CHOICES: dict[str, tuple] = {
    "data.on_error": ("raise", "skip"),
    "train.backend": (None, "tensorflow", "jax"),
    "train.strategy": ("auto", "cpu", "gpu", "mirrored", "tpu", "multi_worker", "data_parallel"),
    "train.precision": ("float32", "mixed_float16", "mixed_bfloat16"),
    "train.optimizer": ("adamw", "adam", "sgd"),
    "train.schedule": ("cosine", "constant"),
    "train.loss": ("crossentropy", "focal"),
    "train.class_weight": (None, "balanced"),
    "train.jit_compile": ("auto", True, False),
    "train.verbose": ("auto", 0, 1, 2),
    "pretrain.loss": ("siglip", "clip"),
}
#: The feature dataclasses stay importable from here; they live with their column classes (which
#: import TensorFlow), so they are loaded on first use, after the Keras backend is chosen.
_FEATURE_NAMES = ("TextFeature", "ImageFeature", "AudioFeature")


def __getattr__(name: str):
    if name == "FEATURE_TYPES":
        return feature_types()
    if name in _FEATURE_NAMES:
        return {cls.__name__: cls for cls in feature_types().values()}[name]
    raise AttributeError(f"module 'mmkeras.config' has no attribute {name!r}")


# --------------------------------------------------------------------------- building
def _select_backend(requested: Optional[str]) -> None:
    # Importing TensorFlow or Keras fixes the Keras backend, and the checks below import both. Once
    # Keras is imported its backend stays; train() refuses a config that asks for another one.
    if "keras" not in sys.modules:
        from mmkeras.training.backend import select_backend

        select_backend(requested)


def _check_model(config: Config) -> None:
    if not config.data.features:
        return
    from mmkeras.models.dry_build import check_model

    # A multi-worker strategy must exist before TensorFlow starts, and building can start it.
    check_model(config.model, [feature.spec(column) for column, feature in config.data.features.items()],
                build=config.train.strategy != "multi_worker")


def config_from_dict(values: dict, source: Optional[str] = None) -> Config:
    """Validate a plain dict (as loaded from YAML) into a ``Config``.

    Besides keys, types and ranges, the ``model`` section is checked by building the model it
    describes from the feature settings (no data is read, nothing is trained), after selecting
    the Keras backend ``train.backend`` names when Keras is not imported yet.
    """
    return _from_dict(values, source, build=True)


def _from_dict(values: dict, source: Optional[str], build: bool) -> Config:
    values = copy.deepcopy(values or {})
    if not isinstance(values, dict):
        raise ConfigError(f"a config must be a mapping with sections {', '.join(SECTIONS)}")
    unknown = sorted(set(values) - set(SECTIONS), key=str)
    if unknown:
        raise ConfigError(f"unknown section {unknown[0]!r}; valid sections: {', '.join(SECTIONS)}")
    data_values = values.get("data") or {}
    if not isinstance(data_values, dict):
        raise ConfigError(f"data: expected a mapping, got {type(data_values).__name__} {data_values!r}")
    data_values = dict(data_values)
    train = build_section(TrainConfig, values.get("train"), "train", choices_for(CHOICES, "train"))
    _select_backend(train.backend)  # before the feature classes import TensorFlow
    features = build_features(data_values.pop("features", {}) or {})
    data = build_section(DataConfig, data_values, "data", choices_for(CHOICES, "data"))
    data.features = features
    config = Config(
        data=data, train=train,
        **{name: build_section(SECTIONS[name], values.get(name), name, choices_for(CHOICES, name))
           for name in ("model", "export", "pretrain", "distill")},
        source=source,
    )
    check_config(config)
    attach_presets(config.data.features, config.model.encoders)
    if build:
        _check_model(config)
    return config


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Return a new config with ``section.key[.sub]=value`` overrides applied (values parsed as YAML).

    ``data.features.<column>=null`` removes the column and its ``model.encoders`` entry.
    """
    values = apply_to_dict(config.to_dict(), overrides or [], SECTIONS)
    return config_from_dict(values, source=config.source)


def load_config(path: Union[str, os.PathLike], overrides: Optional[list[str]] = None) -> Config:
    """Read a YAML config file, validate it and apply ``overrides``.

    Raises ``ConfigError`` naming the file and key when the file is missing, a directory, not
    UTF-8 or not YAML, or when a key or value is wrong.
    """
    path = locate_config(path)  # a file, or the name of a bundled config ("digits", "fusion/gated")
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    text = read_utf8(path, "config path")
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    try:
        # With overrides the model is built once, for the overridden config.
        config = _from_dict(values, str(path.resolve()), build=not overrides)
        return apply_overrides(config, overrides) if overrides else config
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def save_config(config: Config, path: Union[str, os.PathLike]) -> None:
    """Write the resolved config (manifest paths made absolute) as YAML."""
    values = config.to_dict()
    for split in ("train", "validation", "test"):
        values["data"][split] = config.resolve_path(values["data"][split])
    values["model"]["init_from"] = config.resolve_path(values["model"]["init_from"])
    Path(path).write_text(yaml.safe_dump(values, sort_keys=False))
