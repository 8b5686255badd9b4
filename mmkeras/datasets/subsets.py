"""Small balanced cuts of a prepared dataset's splits, for quick runs (tutorials, smoke tests).

Example:
    >>> import csv, tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> for split in ("train", "validation", "test"):
    ...     with open(folder / f"{split}.csv", "w", newline="") as handle:
    ...         csv.writer(handle).writerows([["text", "label"], ["a", "x"], ["b", "x"], ["c", "y"]])
    >>> paths = subset(folder, {"train": 2, "validation": 2, "test": 3})
    >>> paths["train"].name, [row["label"] for row in csv.DictReader(open(paths["train"]))]
    ('train_first2.csv', ['x', 'y'])
    >>> split_overrides(folder, {"train": 2})[1] == f"data.validation={folder / 'validation.csv'}"
    True
"""

from __future__ import annotations

import csv
import itertools
import os
from pathlib import Path
from typing import Optional

from mmkeras.datasets._files import SPLITS


def subset(folder, counts: Optional[dict] = None) -> dict:
    """``{split: manifest path}`` of the CSV splits in ``folder``. With ``counts`` (``{split: rows}``),
    each split it names is cut to its first rows dealt round-robin over the labels (so that every class
    appears), written beside the full manifest as ``<split>_first<N>.csv`` (whole, then renamed:
    several processes may cut one folder at once)."""
    folder, paths = Path(folder), {}
    unknown = sorted(set(counts or {}) - set(SPLITS))
    if unknown:
        raise ValueError(f"counts names no split: {', '.join(unknown)}; the splits are {', '.join(SPLITS)}")
    for split in SPLITS:
        manifest = folder / f"{split}.csv"
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest} does not exist: prepare the dataset first "
                                    "(mmkeras.datasets.ensure_prepared)")
        if counts and split in counts:
            with open(manifest, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                by_label: dict = {}
                for row in reader:
                    by_label.setdefault(row["label"], []).append(row)
            dealt = [row for group in itertools.zip_longest(*by_label.values()) for row in group if row]
            manifest = folder / f"{split}_first{counts[split]}.csv"
            partial = folder / f".{manifest.name}.{os.getpid()}"
            with open(partial, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=reader.fieldnames)
                writer.writeheader()
                writer.writerows(dealt[: counts[split]])
            os.replace(partial, manifest)
        paths[split] = manifest
    return paths


def split_overrides(folder, counts: Optional[dict] = None) -> list:
    """``["data.train=...", "data.validation=...", "data.test=..."]`` pointing a config at
    ``subset(folder, counts)``: what ``load_config(name, overrides)`` and ``--set`` take."""
    return [f"data.{split}={path}" for split, path in subset(folder, counts).items()]
