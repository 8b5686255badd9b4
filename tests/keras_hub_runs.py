"""A config that reads the tiny real data of tests/export/conftest.py with tiny KerasHub presets.

Example (in a test):
    config = hub_config(folder, presets, ("text", "image"), ["train.epochs=1"])
"""

from __future__ import annotations

from pathlib import Path

from mmkeras.config import load_config
from tests.export.conftest import write_tiny_data

FEATURES = {"text": "{modality: text}", "image": "{modality: image}", "audio": "{modality: audio, duration: 0.5}"}
PRESET_OF = {"text": "bert", "image": "vit", "audio": "whisper"}


def hub_config(folder: Path, presets: dict, columns=("text", "image", "audio"), overrides=None, fusion="concat"):
    """Write the tiny data into ``folder`` (once) and a config whose ``columns`` use the presets."""
    if not (folder / "train.csv").exists():
        write_tiny_data(folder)
    features = "\n".join(f"    {c}: {FEATURES[c]}" for c in columns)
    encoders = "\n".join(f"    {c}: {{type: keras_hub, preset: {presets[PRESET_OF[c]]}}}" for c in columns)
    text = (f"data:\n  train: train.csv\n  validation: validation.csv\n  test: test.csv\n  label: label\n"
            f"  features:\n{features}\nmodel:\n  encoders:\n{encoders}\n  fusion: {{type: {fusion}, output_dim: 16}}\n"
            f"train: {{epochs: 2, batch_size: 8, strategy: cpu, verbose: 0}}\nexport: {{top_k: 2, warmup_examples: 2}}\n")
    path = folder / f"hub_{'_'.join(columns)}.yaml"
    path.write_text(text)
    return load_config(path, overrides or [])
