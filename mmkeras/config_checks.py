"""The rules of every config section beyond each key's type.

``check_config`` runs after every section is built: numeric ranges, ``data.prepare`` (a bundled
dataset), each feature column's own ``check``, the ``model.encoders`` columns, a ``data.cache``
file path whose folder can be written. Every error names the key path and the value received.
The components' settings (``model.encoders.*``, ``model.fusion``, ``model.head``) are checked by
``mmkeras.models.dry_build``, which builds the model.

Example:
    >>> from types import SimpleNamespace
    >>> check_train(SimpleNamespace(epochs=2, batch_size=8, steps_per_execution=1, learning_rate=-1.0))
    Traceback (most recent call last):
    ...
    mmkeras.errors.ConfigError: train.learning_rate must be a finite number > 0, got -1.0
"""

from __future__ import annotations

from mmkeras.config_schema import above, at_least, check_writable_prefix, fraction, share
from mmkeras.errors import ConfigError


def check_data(data, where: str = "data") -> None:
    """Ranges, ``prepare`` and each feature column (its name and its settings)."""
    from mmkeras import datasets

    if not data.label:
        raise ConfigError(f"{where}.label must name the label column, got {data.label!r}")
    at_least(f"{where}.shuffle_buffer", data.shuffle_buffer, 1)
    share(f"{where}.label_fraction", data.label_fraction)
    if data.prepare is not None and data.prepare not in datasets.names():
        raise ConfigError(f"{where}.prepare={data.prepare!r} is not a bundled dataset; choose one of: "
                          + ", ".join(datasets.names()))
    if not data.features:
        return
    from mmkeras.data.schema import PRESENCE_SUFFIX  # imports TensorFlow: only when there are features

    for column, feature in data.features.items():
        if column == data.label or str(column).endswith(PRESENCE_SUFFIX):
            raise ConfigError(f"{where}.features.{column}: a feature column may not be the label "
                              f"({data.label!r}) or end with {PRESENCE_SUFFIX!r}")
        feature.check(f"{where}.features.{column}")


def check_model_section(model, columns, where: str = "model") -> None:
    """Every component names its ``type``, encoders name feature columns, ``modality_dropout`` in [0, 1)."""
    for key, spec in [("fusion", model.fusion), ("head", model.head)] + [
        (f"encoders.{column}", spec) for column, spec in model.encoders.items()
    ]:
        if not isinstance(spec, dict) or "type" not in spec:
            raise ConfigError(f"{where}.{key} needs a 'type' key naming a registered component (got {spec!r})")
    for column in model.encoders:
        if columns and column not in columns:
            raise ConfigError(f"{where}.encoders.{column} names no feature column; columns in data.features: "
                              + ", ".join(columns))
    fraction(f"{where}.modality_dropout", model.modality_dropout)


def check_train(train, where: str = "train") -> None:
    """Numeric ranges of the ``train`` section."""
    for key in ("epochs", "batch_size", "steps_per_execution"):
        at_least(f"{where}.{key}", getattr(train, key), 1)
    above(f"{where}.learning_rate", train.learning_rate, 0)
    at_least(f"{where}.weight_decay", train.weight_decay, 0)
    at_least(f"{where}.warmup_epochs", train.warmup_epochs, 0)
    if train.warmup_epochs >= train.epochs:
        raise ConfigError(f"{where}.warmup_epochs must be < {where}.epochs ({train.epochs}), "
                          f"got {train.warmup_epochs!r}")
    fraction(f"{where}.label_smoothing", train.label_smoothing)
    at_least(f"{where}.focal_gamma", train.focal_gamma, 0)
    if train.clipnorm is not None:
        above(f"{where}.clipnorm", train.clipnorm, 0)
    if train.early_stopping_patience is not None:
        at_least(f"{where}.early_stopping_patience", train.early_stopping_patience, 0)


def check_export(export, where: str = "export") -> None:
    """Numeric ranges of the ``export`` section."""
    at_least(f"{where}.top_k", export.top_k, 1)
    at_least(f"{where}.warmup_examples", export.warmup_examples, 0)


def _pair(item, columns: list, where: str) -> tuple:
    if isinstance(item, (list, tuple)) and len(item) == 2:
        candidates = [tuple(str(c) for c in item)]
    elif isinstance(item, str):
        candidates = [(item[:i], item[i + 1:]) for i, char in enumerate(item) if char == "-"]
    else:
        candidates = []
    for a, b in candidates:
        if a in columns and b in columns and a != b:
            return a, b
    raise ConfigError(f"{where}={item!r} is not a pair of two different feature columns (write it "
                      f"'image-text'); columns: {', '.join(columns)}")


def pretrain_pairs(config) -> list:
    """The ``(column, column)`` pairs ``mmkeras pretrain`` trains on: ``pretrain.pairs``, or every pair
    of ``data.features`` in their order.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> cfg = NS(data=NS(features={"text": 0, "image": 0, "audio": 0}), pretrain=NS(pairs=[]))
        >>> pretrain_pairs(cfg)
        [('text', 'image'), ('text', 'audio'), ('image', 'audio')]
        >>> cfg.pretrain.pairs = ["audio-text"]; pretrain_pairs(cfg)
        [('audio', 'text')]
    """
    columns = list(config.data.features)
    if not config.pretrain.pairs:
        return [(a, b) for i, a in enumerate(columns) for b in columns[i + 1:]]
    pairs = [_pair(item, columns, f"pretrain.pairs[{i}]") for i, item in enumerate(config.pretrain.pairs)]
    for i, pair in enumerate(pairs):
        if set(pair) in [set(p) for p in pairs[:i]]:
            raise ConfigError(f"pretrain.pairs[{i}]={config.pretrain.pairs[i]!r} repeats an earlier pair")
    return pairs


def check_pretrain(config, where: str = "pretrain") -> None:
    """Numeric ranges of the ``pretrain`` section and its pairs (when the data has 2+ columns)."""
    pretrain = config.pretrain
    for key in ("epochs", "batch_size", "projection_dim"):
        at_least(f"{where}.{key}", getattr(pretrain, key), 1)
    above(f"{where}.learning_rate", pretrain.learning_rate, 0)
    at_least(f"{where}.weight_decay", pretrain.weight_decay, 0)
    if pretrain.pairs or len(config.data.features) > 1:
        pretrain_pairs(config)


def check_distill(distill, where: str = "distill") -> None:
    """``temperature > 0`` and ``alpha`` (the soft term's share of the loss) in [0, 1].

    Example:
        >>> from types import SimpleNamespace
        >>> check_distill(SimpleNamespace(temperature=4.0, alpha=1.5))
        Traceback (most recent call last):
        ...
        mmkeras.errors.ConfigError: distill.alpha must be in [0, 1], got 1.5
    """
    above(f"{where}.temperature", distill.temperature, 0)
    if not 0.0 <= distill.alpha <= 1.0:
        raise ConfigError(f"{where}.alpha must be in [0, 1], got {distill.alpha!r}")


def check_config(config) -> None:
    """Every rule above, then a writable ``data.cache`` (resolved against the config file)."""
    check_data(config.data)
    check_model_section(config.model, list(config.data.features))
    check_train(config.train)
    check_export(config.export)
    check_pretrain(config)
    check_distill(config.distill)
    cache = config.data.cache
    if cache not in ("memory", "none", ""):
        check_writable_prefix(config.resolve_path(cache), f"data.cache={cache!r}")
