"""The ``data.features`` section: each column's settings, as its modality's dataclass.

The dataclasses live with their column classes (``mmkeras.data.columns``: ``TextFeature``,
``ImageFeature``, ``AudioFeature``), which import TensorFlow; they are imported here when a config
is built (after the Keras backend is chosen) and re-exported lazily by ``mmkeras.config``.
``attach_presets`` gives a column whose encoder is a KerasHub preset that preset
(``feature.preset``) and refuses settings that contradict it, naming both keys.

Example:
    >>> build_features({"title": {"modality": "text", "sequence_length": "8"}})
    Traceback (most recent call last):
    ...
    mmkeras.errors.ConfigError: data.features.title.sequence_length must be int or null, got str '8'
    >>> build_features({"title": {"modality": "text", "sequence_length": 8}})["title"].spec("title").shape
    (8,)
"""

from __future__ import annotations

from typing import Any

from mmkeras.config_schema import build_section
from mmkeras.errors import ConfigError


def feature_types() -> dict:
    """``{modality: feature dataclass}`` (importing the column classes, hence TensorFlow)."""
    from mmkeras.data.columns import FEATURE_TYPES

    return FEATURE_TYPES


def build_features(features: Any) -> dict:
    """``data.features`` -> ``{column: feature dataclass}``, each key and value checked."""
    if not isinstance(features, dict):
        raise ConfigError(f"data.features must map column names to settings, got {features!r}")
    if not features:
        return {}
    types = feature_types()
    out = {}
    for column, settings in features.items():
        where = f"data.features.{column}"
        if not isinstance(settings, dict) or "modality" not in settings:
            raise ConfigError(f"{where} needs a 'modality' key, one of: {', '.join(types)} (got {settings!r})")
        modality = settings["modality"]
        if modality not in types:
            raise ConfigError(f"{where}.modality={modality!r} is not valid; choose one of: {', '.join(types)}")
        out[column] = build_section(types[modality], settings, where, types[modality].CHOICES)
    return out


def attach_presets(features: dict, encoders: dict) -> None:
    """Set ``feature.preset`` from each ``{type: keras_hub, preset: HANDLE}`` encoder and check the
    handle resolves and the column's settings agree with what the preset takes."""
    from mmkeras.presets import read_preset_json

    for column, settings in encoders.items():
        if not isinstance(settings, dict) or settings.get("type") != "keras_hub" or column not in features:
            continue
        where, feature = f"model.encoders.{column}", features[column]
        handle = settings.get("preset")
        if not isinstance(handle, str) or not handle:
            raise ConfigError(f"{where}.preset is required: a KerasHub preset name or a local preset directory")
        if feature.preset not in (None, handle):
            raise ConfigError(f"data.features.{column}.preset={feature.preset!r} contradicts {where}.preset={handle!r}")
        feature.preset = handle
        # Reading the backbone config resolves the handle now, not after an epoch.
        feature.check_preset(column, where, read_preset_json(handle, "config.json", where).get("config") or {})
