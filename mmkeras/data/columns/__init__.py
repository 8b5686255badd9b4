"""One class per modality's preprocessing, composed by ``mmkeras.data.preprocessor.Preprocessor``.

``COLUMNS`` maps a feature's ``modality`` to its column class; ``build_column(name, feature)``
makes the column for one entry of ``data.features`` (``PRESET_COLUMNS`` when the column's encoder
is a KerasHub preset: its own tokenizer / converter). Everything a modality is (its adapted state,
decoding, per-example augmentation, batched features, the byte check shared by validation, training
and serving, its error sentences) lives in its class: see ``mmkeras.data.columns.base.Column``.

Example:
    >>> column = build_column("photo", ImageFeature(height=8, width=8))
    >>> type(column).__name__, column.reads_files, column.spec.shape
    ('ImageColumn', True, (8, 8, 1))
"""

from mmkeras.data.columns.audio import AudioColumn, AudioFeature
from mmkeras.data.columns.base import Column, Feature
from mmkeras.data.columns.image import ImageColumn, ImageFeature
from mmkeras.data.columns.keras_hub import PRESET_COLUMNS
from mmkeras.data.columns.text import TextColumn, TextFeature

COLUMNS = {"text": TextColumn, "image": ImageColumn, "audio": AudioColumn}
#: ``data.features.<column>.modality`` -> the settings dataclass of that modality.
FEATURE_TYPES = {modality: column.feature_class for modality, column in COLUMNS.items()}


def build_column(name: str, feature) -> Column:
    """The column class of ``feature.modality`` (its KerasHub variant when ``feature.preset`` is set:
    the column's encoder is that preset), for the manifest column ``name``."""
    if feature.modality not in COLUMNS:
        raise ValueError(f"data.features.{name}.modality={feature.modality!r} is not valid; choose one of: "
                         + ", ".join(COLUMNS))
    classes = PRESET_COLUMNS if getattr(feature, "preset", None) else COLUMNS
    return classes[feature.modality](name, feature)


__all__ = ["COLUMNS", "FEATURE_TYPES", "PRESET_COLUMNS", "AudioColumn", "AudioFeature", "Column", "Feature",
           "ImageColumn", "ImageFeature", "TextColumn", "TextFeature", "build_column"]
