"""Reading one config section: keys, types, choices and numeric ranges, each error naming the key.

``build_section`` turns a mapping into a section dataclass: an unknown key fails listing the
valid ones, a value of the wrong type names the key and the value. Float fields also accept a
numeric string, since YAML 1.1 reads ``1e-3`` (no dot) as a string; int fields take ints only.
The range helpers (``at_least``, ``above``, ``fraction``, ``share``) are what the dataclasses' ``check``
methods call.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Section:
    ...     rate: float = 0.1
    ...     steps: int = 1
    >>> build_section(Section, {"rate": "1e-3"}, "train").rate
    0.001
    >>> build_section(Section, {"steps": "3"}, "train")
    Traceback (most recent call last):
    ...
    mmkeras.errors.ConfigError: train.steps must be int, got str '3'
    >>> at_least("train.steps", 0, 1)
    Traceback (most recent call last):
    ...
    mmkeras.errors.ConfigError: train.steps must be >= 1, got 0
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from typing import Any, Optional, Union

from mmkeras.errors import ConfigError

_MISSING = object()


def _resolve(annotation: Any) -> Any:
    if isinstance(annotation, str):
        return eval(annotation, vars(typing) | {"Optional": Optional, "Union": Union})  # noqa: S307
    return annotation


def _number(value: Any) -> Any:
    """A float for an int, float or numeric string; ``_MISSING`` for anything else."""
    if isinstance(value, bool):
        return _MISSING
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return _MISSING
    return _MISSING


def coerce(value: Any, annotation: Any) -> Any:
    """``value`` as the field ``annotation`` wants it, or ``_MISSING`` when it does not fit.

    Floats accept ints and numeric strings (``"1e-3"`` -> 0.001); ints accept ints only (never
    a bool, a float or a string).
    """
    annotation = _resolve(annotation)
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            out = coerce(value, arg)
            if out is not _MISSING:
                return out
        return _MISSING
    if annotation is type(None):
        return value if value is None else _MISSING
    if annotation is float:
        return _number(value)
    if annotation is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISSING
    if origin is not None:
        return value if isinstance(value, origin) else _MISSING
    return value if isinstance(value, annotation) else _MISSING


def number_from_string(value: Any) -> Any:
    """A numeric string as a float (YAML reads ``1e-1`` as a string); anything else unchanged."""
    number = _number(value) if isinstance(value, str) else _MISSING
    return value if number is _MISSING else number


def choices_for(choices: dict, prefix: str) -> dict:
    """``{key: allowed}`` of the ``"<prefix>.<key>"`` entries of ``choices`` (``mmkeras.config.CHOICES``)."""
    return {key[len(prefix) + 1:]: allowed for key, allowed in choices.items() if key.startswith(prefix + ".")}


def _type_name(annotation: Any) -> str:
    annotation = _resolve(annotation)
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (Union, types.UnionType) and type(None) in args:
        return " or ".join([_type_name(a) for a in args if a is not type(None)] + ["null"])
    return str(annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")


def build_section(cls: type, values: Any, where: str, choices: Optional[dict] = None):
    """Instantiate dataclass ``cls`` from ``values``, failing with the key path on any problem.

    Args:
        cls: the section dataclass; its fields are the valid keys.
        values: the mapping read from YAML (``None`` means all defaults).
        where: key path of the section for messages (``train``, ``data.features.text``).
        choices: ``{key: allowed values}`` for the keys that take one of a few values.
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__} {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    unknown = sorted(set(values) - set(fields), key=str)
    if unknown:
        raise ConfigError(
            f"unknown key {where}.{unknown[0]}; valid keys of {where}: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in values.items():
        converted = coerce(value, hints[key])
        if converted is _MISSING:
            raise ConfigError(
                f"{where}.{key} must be {_type_name(hints[key])}, got {type(value).__name__} {value!r}"
            )
        if isinstance(converted, float) and not math.isfinite(converted):
            raise ConfigError(f"{where}.{key} must be a finite number, got {value!r}")
        allowed = (choices or {}).get(key)
        if allowed is not None and converted not in allowed:
            raise ConfigError(
                f"{where}.{key}={value!r} is not valid; choose one of: "
                + ", ".join(repr(a) for a in allowed)
            )
        out[key] = converted
    return cls(**out)


def at_least(where: str, value, minimum) -> None:
    """Fail naming ``where`` unless ``value >= minimum``."""
    if value < minimum:
        raise ConfigError(f"{where} must be >= {minimum}, got {value!r}")


def above(where: str, value, bound) -> None:
    """Fail naming ``where`` unless ``value`` is finite and ``> bound``."""
    if not (value > bound and math.isfinite(value)):
        raise ConfigError(f"{where} must be a finite number > {bound}, got {value!r}")


def fraction(where: str, value) -> None:
    """Fail naming ``where`` unless ``0 <= value < 1``."""
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{where} must be in [0, 1), got {value!r}")


def share(where: str, value) -> None:
    """Fail naming ``where`` unless ``value`` is a number with ``0 < value <= 1``."""
    number = _MISSING if isinstance(value, str) else _number(value)
    if number is _MISSING or not 0.0 < number <= 1.0:
        raise ConfigError(f"{where} must be in (0, 1], got {value!r}")


def as_config_error(where: str, check, *args) -> None:
    """Run ``check(*args)``; a ValueError or TypeError it raises becomes a ConfigError.

    The data modules' validators raise ValueError naming the key already; a TypeError (a string
    compared with a number) does not, so it gets ``where`` in front.
    """
    try:
        check(*args)
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(str(error)) from None
    except TypeError as error:
        raise ConfigError(f"{where} is not valid: {error}") from None


def check_writable_prefix(path: str, where: str) -> None:
    """Fail naming ``where`` when files named ``path.*`` could not be written (local paths only).

    The nearest folder of ``path`` that exists must be a writable directory: the pipeline creates
    the missing ones below it. Nothing is created here. URIs (``gs://...``) are not checked.
    """
    if "://" in path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f"{where}: folder {folder} cannot be created, because {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: folder {existing} is not writable")


def read_utf8(path, what: str = "file") -> str:
    """The text of ``path``; a directory or bytes that are not UTF-8 fail naming the path."""
    if os.path.isdir(path):
        raise ConfigError(f"{what} {path} is a directory, not a YAML file")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(f"{path} is not UTF-8 text (byte {raw[error.start]:#04x} on line {line})") from None
