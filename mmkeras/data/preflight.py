"""Checks run before the first epoch: every split's manifest read once, so a mistake costs seconds.

``check_before_training(config)`` reads the train, validation and test manifests (CSV or JSONL)
with ``read_manifest``, which refuses a missing feature or label column, a column named twice in
the header, an unbalanced quote that swallows rows, and a JSON list or object in a feature or
label key. Then it checks the labels: none empty; no two spellings of one number (``5`` and
``5.0`` would become two classes), across all splits; at least two classes in train; and every
validation and test label among the train classes (otherwise the evaluation after a whole epoch
of training is where it would fail). Each error names the file, the row and the label.

A split stored as TFRecords is skipped: its labels sit in records beside the encoded media, so
reading them means reading the whole split; ``mmkeras data validate`` reads those.

Example:
    >>> import os, tempfile
    >>> from types import SimpleNamespace
    >>> folder = tempfile.mkdtemp()
    >>> for name, text in [("train.csv", "text,label\\na,cat\\nb,dog\\n"), ("validation.csv", "text,label\\nc,cow\\n")]:
    ...     with open(os.path.join(folder, name), "w") as f:
    ...         _ = f.write(text)
    >>> config = SimpleNamespace(
    ...     data=SimpleNamespace(train="train.csv", validation="validation.csv", test=None, label="label",
    ...                          features={"text": None}),
    ...     resolve_path=lambda path: os.path.join(folder, path))
    >>> check_before_training(config)
    Traceback (most recent call last):
    ...
    mmkeras.data.manifest.ManifestError: validation.csv row 1: label 'cow' is not a class of the train split (train.csv classes: cat, dog)
"""

from __future__ import annotations

import math
from typing import Optional

from mmkeras.data.manifest import Manifest, ManifestError, read_manifest
from mmkeras.data.tfrecord import is_tfrecord_path

SPLITS = ("train", "validation", "test")
_LISTED_CLASSES = 10


def _number(label: str) -> Optional[float]:
    try:
        value = float(label)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _check_labels(manifests: dict, label: str) -> None:
    spellings: dict = {}  # number -> (spelling, file, row) of its first appearance
    for manifest in manifests.values():
        for row_number, row in enumerate(manifest.rows, start=1):
            value = row[label]
            if not value.strip():
                raise ManifestError(f"{manifest.name} row {row_number}: the label column {label!r} is empty")
            number = _number(value)
            if number is None:
                continue
            first = spellings.setdefault(number, (value, manifest.name, row_number))
            if first[0] != value:
                raise ManifestError(
                    f"{manifest.name} row {row_number}: label {value!r} and label {first[0]!r} "
                    f"({first[1]} row {first[2]}) are the same number spelled two ways, which would make "
                    "two classes; write every label one way"
                )


def _check_known_labels(train: Manifest, others: dict, label: str) -> None:
    classes = set(train.column(label))
    if len(classes) < 2:
        raise ManifestError(f"{train.name} has {len(classes)} class(es) in column {label!r} "
                            f"({', '.join(sorted(classes))}); a classifier needs at least 2")
    listed = sorted(classes)[:_LISTED_CLASSES]
    more = f", ... ({len(classes)} in all)" if len(classes) > _LISTED_CLASSES else ""
    for manifest in others.values():
        unseen = [(n, v) for n, v in enumerate(manifest.column(label), start=1) if v not in classes]
        if unseen:
            row_number, value = unseen[0]
            also = f"; {len(unseen)} rows in all have labels train lacks" if len(unseen) > 1 else ""
            raise ManifestError(
                f"{manifest.name} row {row_number}: label {value!r} is not a class of the train split "
                f"({train.name} classes: {', '.join(listed)}{more}){also}"
            )


def check_before_training(config) -> dict:
    """Read every split's manifest and check its columns and labels; fail naming file, row and label.

    Args:
        config: a ``Config`` (anything with ``data.train/validation/test/label/features`` and
            ``resolve_path``).

    Returns:
        ``{split: rows read}`` for each split that is set; ``None`` for a TFRecord split (skipped).

    Raises:
        ManifestError: naming the manifest, the row (or JSONL line) and the column or label.
    """
    data = config.data
    required = list(data.features) + [data.label]
    manifests: dict = {}
    counts: dict = {}
    for split in SPLITS:
        path = getattr(data, split)
        if not path:
            continue
        path = config.resolve_path(path)
        if is_tfrecord_path(path):
            counts[split] = None
            continue
        manifests[split] = read_manifest(path, required=required)
        counts[split] = len(manifests[split])
    _check_labels(manifests, data.label)
    if "train" in manifests:
        others = {split: m for split, m in manifests.items() if split != "train"}
        _check_known_labels(manifests["train"], others, data.label)
    return counts
