"""What every encoder returns, the per-modality defaults, and the one place settings are checked.

An encoder is a factory function registered as ``text_encoder`` / ``image_encoder`` /
``audio_encoder``::

    build_xxx(inputs, spec, *, name, **settings) -> EncoderOutput

``inputs`` is the column's ``keras.Input``; ``spec`` its ``FeatureSpec``; ``name`` the column, used
as the prefix of every layer name so that ``model.summary()`` reads as named branches. Settings
are the factory's other keyword-only arguments; ``model.encoders.<column>`` in the config names
the factory (``type``) and overrides them.

Example:
    >>> import keras
    >>> from mmkeras.data.schema import FeatureSpec
    >>> spec = FeatureSpec(column="text", modality="text", shape=(8,), dtype="int32", vocab_size=50)
    >>> inputs = keras.Input(spec.shape, dtype=spec.dtype, name=spec.column)
    >>> out = build_encoder(inputs, spec, {"type": "embedding", "embedding_dim": 16})
    >>> tuple(out.vector.shape), tuple(out.tokens.shape)
    ((None, 16), (None, 8, 16))
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple, Optional

from mmkeras import registry
from mmkeras.errors import ConfigError

#: The registry kind of each modality's encoders.
ENCODER_KINDS = {"text": "text_encoder", "image": "image_encoder", "audio": "audio_encoder"}

#: The encoder a column gets when ``model.encoders`` does not name one.
DEFAULT_ENCODERS = {"text": "embedding", "image": "conv2d", "audio": "conv1d"}  # measured: docs/results.md


class EncoderOutput(NamedTuple):
    """One column's encoding.

    Attributes:
        vector: ``(batch, d)`` pooled summary, read by every fusion.
        tokens: ``(batch, steps, d)`` sequence (text positions, image cells, audio frames), read by
            the attention fusions; same ``d`` as ``vector``.
        token_mask: ``(batch, steps)`` bool, True at real steps; ``None`` when every step is real.
    """

    vector: Any
    tokens: Any
    token_mask: Optional[Any] = None


def settings_of(factory, reserved=("name",)) -> dict:
    """``{setting: default}`` a factory accepts (``inspect.Parameter.empty`` marks a required one).

    For a function these are its keyword-only arguments; for a class (a fusion layer) the named
    arguments of ``__init__`` along its bases up to ``keras.layers.Layer``. ``reserved`` names
    are set by the model factory, never by the config.
    """
    found: dict = {}
    if inspect.isclass(factory):
        import keras

        for cls in factory.__mro__:
            if cls is keras.layers.Layer or not issubclass(cls, keras.layers.Layer):
                break
            if "__init__" not in vars(cls):
                continue
            for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
                if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                    continue
                found.setdefault(param.name, param.default)
    else:
        for param in inspect.signature(factory).parameters.values():
            if param.kind == param.KEYWORD_ONLY:
                found[param.name] = param.default
    return {key: value for key, value in found.items() if key not in reserved}


def check_settings(factory, settings: dict, where: str, reserved=("name",), extra=()) -> dict:
    """``settings`` minus ``type``, checked against ``factory``'s keyword arguments.

    Raises ``ConfigError`` naming ``<where>.<key>`` for an unknown key (listing the valid ones)
    and for a required setting that is missing.

    Example:
        >>> def build_x(inputs, spec, *, name, units=8): ...
        >>> check_settings(build_x, {"type": "x", "units": 4}, "model.encoders.text")
        {'units': 4}
        >>> check_settings(build_x, {"type": "x", "unit": 4}, "model.encoders.text")
        Traceback (most recent call last):
        ...
        mmkeras.errors.ConfigError: unknown key model.encoders.text.unit; valid keys: type, units
    """
    accepted = settings_of(factory, reserved)
    valid = sorted(set(accepted) | set(extra))
    values = {key: value for key, value in (settings or {}).items() if key != "type"}
    for key in values:
        if key not in valid:
            raise ConfigError(
                f"unknown key {where}.{key}; valid keys: {', '.join(['type', *valid])}"
            )
    for key, default in accepted.items():
        if default is inspect.Parameter.empty and key not in values:
            raise ConfigError(f"{where}.{key} is required (valid keys: {', '.join(['type', *valid])})")
    return values


def build_encoder(inputs, spec, settings: Optional[dict] = None, where: Optional[str] = None) -> EncoderOutput:
    """Run the encoder ``settings["type"]`` (the modality's default when absent) on ``inputs``.

    Args:
        inputs: the column's ``keras.Input``.
        spec: its ``FeatureSpec``.
        settings: ``model.encoders.<column>``: ``{"type": NAME, **settings}`` or ``None``.
        where: config key path for error messages (default ``model.encoders.<column>``).
    """
    where = where or f"model.encoders.{spec.column}"
    if spec.modality not in ENCODER_KINDS:
        raise ConfigError(
            f"column {spec.column!r} has modality {spec.modality!r}; valid: {', '.join(ENCODER_KINDS)}"
        )
    settings = dict(settings or {})
    name = settings.get("type", DEFAULT_ENCODERS[spec.modality])
    try:
        factory = registry.get(ENCODER_KINDS[spec.modality], name)
    except ValueError as error:
        raise ConfigError(f"{where}.type: {error}") from None
    values = check_settings(factory, settings, where)
    output = factory(inputs, spec, name=spec.column, **values)
    if not isinstance(output, EncoderOutput):
        raise TypeError(f"encoder {name!r} returned {type(output).__name__}, not EncoderOutput")
    return output


def encoder_is_frozen(spec, settings: Optional[dict]) -> bool:
    """True when the encoder ``settings`` name learns nothing and runs in inference mode (a frozen
    pretrained backbone, declared by the factory's ``frozen(settings)``): its outputs can be cached."""
    settings = dict(settings or {})
    name = settings.get("type", DEFAULT_ENCODERS.get(spec.modality))
    try:
        factory = registry.get(ENCODER_KINDS[spec.modality], name)
    except (KeyError, ValueError):
        return False  # build_encoder reports the unknown name
    return bool(getattr(factory, "frozen", lambda settings: False)(settings))


def check_choice(name: str, key: str, value, choices) -> Any:
    """``value`` if it is one of ``choices``, else a ConfigError naming ``model.encoders.<name>.<key>``."""
    if value not in choices:
        raise ConfigError(
            f"model.encoders.{name}.{key}={value!r} is not valid; choose one of: "
            + ", ".join(repr(c) for c in choices)
        )
    return value


def check_positive(name: str, key: str, value) -> Any:
    """``value`` (an int, or a list of ints) if every int is > 0, else a ConfigError naming the key."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in items):
        raise ConfigError(f"model.encoders.{name}.{key} must be a positive integer (or a list of them); got {value!r}")
    return value


def check_rate(name: str, key: str, value) -> float:
    """``value`` if it is a float in [0, 1), else a ConfigError naming the key."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ConfigError(f"model.encoders.{name}.{key} must be a float in [0, 1); got {value!r}")
    return float(value)
