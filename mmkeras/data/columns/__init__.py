"""One class per modality's preprocessing, composed by ``mmkeras.data.preprocessor.Preprocessor``.

``COLUMNS`` maps a feature's ``modality`` to its column class; ``build_column(name, feature)``
makes the column for one entry of ``data.features``. Everything a modality is (its adapted state,
decoding, per-example augmentation, batched features, the byte check shared by validation, training
and serving, its error sentences) lives in its class: see ``mmkeras.data.columns.base.Column``.

Example:
    >>> from types import SimpleNamespace
    >>> column = build_column("photo", SimpleNamespace(modality="image", height=8, width=8, channels=1))
    >>> type(column).__name__, column.reads_files, column.spec.shape
    ('ImageColumn', True, (8, 8, 1))
"""

from mmkeras.data.columns.audio import AudioColumn
from mmkeras.data.columns.base import Column
from mmkeras.data.columns.image import ImageColumn
from mmkeras.data.columns.text import TextColumn

COLUMNS = {"text": TextColumn, "image": ImageColumn, "audio": AudioColumn}


def build_column(name: str, feature) -> Column:
    """The column class of ``feature.modality``, for the manifest column ``name``."""
    if feature.modality not in COLUMNS:
        raise ValueError(f"data.features.{name}.modality={feature.modality!r} is not valid; choose one of: "
                         + ", ".join(COLUMNS))
    return COLUMNS[feature.modality](name, feature)


__all__ = ["COLUMNS", "AudioColumn", "Column", "ImageColumn", "TextColumn", "build_column"]
