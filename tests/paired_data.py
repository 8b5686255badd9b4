"""A small synthetic paired image-text set for contrastive tests, written as PNG files and CSVs.

Each item lights two cells of a 4x4 grid on a 16x16 image: cell ``p`` bright, cell ``q`` dim; its
text names them (``"p5 q12"``). The 240 combinations (p != q) are split at random, so the test
split holds combinations never seen in training, built from tokens and cells that were.

Example (in a test):
    folder = paired_grid(tmp_path)
    config = paired_config(folder, ["pretrain.epochs=2"])
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from mmkeras.config import load_config

PAIRED_CONFIG = """
data:
  train: train.csv
  validation: validation.csv
  test: test.csv
  label: label
  features:
    text: {modality: text, max_tokens: 100, sequence_length: 2}
    image: {modality: image, height: 16, width: 16, channels: 1}
model:
  encoders:
    text: {type: embedding, embedding_dim: 32}
    image: {type: conv2d, pooling: flatten}
train:
  epochs: 1
  batch_size: 16
  strategy: cpu
  verbose: 0
pretrain:
  epochs: 12
  batch_size: 32
  projection_dim: 32
  learning_rate: 0.005
"""


def _image(p: int, q: int) -> np.ndarray:
    pixels = np.zeros((16, 16, 1), np.uint8)
    for cell, value in ((p, 255), (q, 110)):
        row, col = divmod(cell, 4)
        pixels[row * 4:(row + 1) * 4, col * 4:(col + 1) * 4] = value
    return pixels


def paired_grid(folder: Path, counts=(160, 32, 48), seed: int = 0) -> Path:
    """Write ``images/`` and ``train.csv`` / ``validation.csv`` / ``test.csv`` (text, image, label)."""
    import tensorflow as tf

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    combos = [(p, q) for p in range(16) for q in range(16) if p != q]
    order = np.random.default_rng(seed).permutation(len(combos))
    start = 0
    for split, count in zip(("train", "validation", "test"), counts):
        with open(folder / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "image", "label"])
            for index in order[start:start + count]:
                p, q = combos[index]
                name = f"images/{p}_{q}.png"
                tf.io.write_file(str(folder / name), tf.io.encode_png(_image(p, q)))
                writer.writerow([f"p{p} q{q}", name, "top" if p < 8 else "bottom"])
        start += count
    return folder


def paired_config(folder: Path, overrides: list[str] | None = None, text: str = PAIRED_CONFIG):
    """Write the paired config into ``folder`` and load it with ``overrides``."""
    path = Path(folder) / "config.yaml"
    path.write_text(text)
    return load_config(path, overrides or [])
