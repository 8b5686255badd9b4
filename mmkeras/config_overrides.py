"""``--set section.key=value`` on a config's plain dict, before it is validated.

Values are parsed as YAML (``3`` is an int, ``true`` a bool, ``[8, 8]`` a list). Setting a
feature column to null (``data.features.text=null``, ``=~`` or ``=``) removes the column and
its ``model.encoders`` entry, so an ablation needs no edited copy of the YAML.

Example:
    >>> values = {"data": {"features": {"text": {"modality": "text"}, "image": {"modality": "image"}}},
    ...           "model": {"encoders": {"text": {"type": "embedding"}}}}
    >>> out = apply_to_dict(values, ["train.epochs=3", "data.features.text=null"], ("data", "model", "train"))
    >>> out["train"], list(out["data"]["features"]), out["model"]["encoders"]
    ({'epochs': 3}, ['image'], {})
    >>> apply_to_dict(out, ["data.features.image=~"], ("data", "model", "train"))
    Traceback (most recent call last):
    ...
    mmkeras.errors.ConfigError: --set 'data.features.image=~': 'image' is the only column in data.features; a model needs at least one
"""

from __future__ import annotations

import copy
from typing import Any, Iterable

import yaml

from mmkeras.errors import ConfigError


def parse_override(item: str, sections: Iterable[str]) -> tuple[list, Any]:
    """``"train.epochs=3"`` -> ``(["train", "epochs"], 3)``; an empty value is None."""
    sections = tuple(sections)
    if "=" not in item:
        raise ConfigError(f"--set expects section.key=value, got {item!r}")
    key, raw = item.split("=", 1)
    path = key.strip().split(".")
    if len(path) < 2 or path[0] not in sections:
        raise ConfigError(
            f"--set {item!r}: the key must start with a section ({', '.join(sections)}), e.g. train.epochs=3"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({error})") from None
    return path, value


def _drop_column(values: dict, column: str, item: str) -> None:
    data = values.get("data") if isinstance(values.get("data"), dict) else {}
    features = data.get("features") if isinstance(data.get("features"), dict) else {}
    if column not in features:
        listed = ", ".join(map(str, features)) or "(none)"
        raise ConfigError(f"--set {item!r}: data.features has no column {column!r}; columns: {listed}")
    if len(features) == 1:
        raise ConfigError(f"--set {item!r}: {column!r} is the only column in data.features; "
                          "a model needs at least one")
    del features[column]
    encoders = (values.get("model") or {}).get("encoders")
    if isinstance(encoders, dict):
        encoders.pop(column, None)


def apply_to_dict(values: dict, overrides: Iterable[str], sections: Iterable[str]) -> dict:
    """A copy of ``values`` with every override applied in order."""
    values = copy.deepcopy(values)
    for item in overrides or []:
        path, value = parse_override(item, sections)
        if value is None and len(path) == 3 and path[:2] == ["data", "features"]:
            _drop_column(values, path[2], item)
            continue
        node = values
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return values
