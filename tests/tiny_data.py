"""Tiny real datasets for tests: a few rows of the bundled `digits` set, and a config that reads them.

Example (in a test):
    folder = tiny_digits(tmp_path_factory.mktemp("digits"))
    config = tiny_config(folder, ["train.epochs=1"])
"""

from __future__ import annotations

import csv
from pathlib import Path

from mmkeras.config import load_config

ROWS = {"train": 96, "validation": 32, "test": 32}

TINY_CONFIG = """
data:
  train: train.csv
  validation: validation.csv
  test: test.csv
  label: label
  cache: memory
  features:
    text: {modality: text, max_tokens: 200, sequence_length: 6}
    image: {modality: image, height: 16, width: 16, channels: 1}
    audio: {modality: audio, sample_rate: 8000, duration: 0.5, frontend: logmel, frame_length: 256,
            frame_step: 128, fft_length: 256, num_mel_bins: 16}
model:
  encoders:
    text: {type: embedding}
    image: {type: conv2d}
    audio: {type: lstm}
  fusion: {type: concat}
  head: {type: softmax}
train:
  epochs: 2
  batch_size: 16
  strategy: cpu
  learning_rate: 0.003
  verbose: 0
"""


def tiny_digits(folder: Path, rows: dict | None = None, columns: tuple = ("text", "image", "audio")) -> Path:
    """Prepare `digits` into ``folder/full`` and write ``rows[split]`` evenly spaced rows of each split
    (keeping ``columns`` and ``label``) as ``folder/<split>.csv`` with paths rewritten to stay valid."""
    from mmkeras import datasets

    full = datasets.ensure_prepared("digits", folder / "full")
    for split, count in (rows or ROWS).items():
        with open(full / f"{split}.csv", newline="") as handle:
            every = list(csv.DictReader(handle))
            reader = every[:: max(1, len(every) // count)][:count]  # the manifests are sorted by digit
        with open(folder / f"{split}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[*columns, "label"])
            writer.writeheader()
            for row in reader:
                writer.writerow({c: (f"full/{row[c]}" if c in ("image", "audio") and row[c] else row[c])
                                 for c in (*columns, "label")})
    return folder


def tiny_config(folder: Path, overrides: list[str] | None = None, text: str = TINY_CONFIG):
    """Write the tiny config into ``folder`` and load it with ``overrides``."""
    path = folder / "config.yaml"
    path.write_text(text)
    return load_config(path, overrides or [])
