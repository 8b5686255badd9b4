"""Session fixtures for the export tests: tiny real data and runs trained once per session.

The data: 40 rows made from real files, four classes ("0".."3"): the FSDD recording of the
spoken digit, a Noto emoji PNG (RGBA, 72x72) chosen by class, and the digit's English word,
with some cells left empty so the missing-modality path is exported and served too.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

# The real files bundled with the package (copied from shared/data with their licences).
BUNDLED = Path(__file__).resolve().parents[2] / "mmkeras" / "datasets" / "data"
WORDS = ("zero", "one", "two", "three")
EMOJI = ("emoji_u1f600.png", "emoji_u1f603.png", "emoji_u1f604.png", "emoji_u1f601.png")
SPLITS = {"train": 24, "validation": 8, "test": 8}

CONFIG = """
data:
  train: train.csv
  validation: validation.csv
  test: test.csv
  label: label
  features:
{features}
model:
  encoders:
{encoders}
  fusion: {{type: concat, output_dim: 16}}
  head: {{type: softmax}}
train:
  epochs: 1
  batch_size: 8
  strategy: cpu
  verbose: 0
export:
  top_k: 3
  warmup_examples: 3
"""
FEATURES = {
    "text": ("{modality: text, max_tokens: 50, sequence_length: 4}", "{type: embedding}"),
    "image": ("{modality: image, height: 12, width: 12, channels: 3}", "{type: conv2d}"),
    "audio": ("{modality: audio, sample_rate: 8000, duration: 0.5, frontend: logmel, frame_length: 256, "
              "frame_step: 128, fft_length: 256, num_mel_bins: 16}", "{type: lstm}"),
}


def write_tiny_data(folder: Path) -> Path:
    """Copy the real files into ``folder`` and write train/validation/test CSV manifests."""
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    (folder / "image").mkdir(exist_ok=True)
    for name in EMOJI:
        shutil.copy(BUNDLED / "noto_emoji" / "images" / name, folder / "image" / name)
    speakers = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
    row_index = 0
    for split, count in SPLITS.items():
        with open(folder / f"{split}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "image", "audio", "label"])
            writer.writeheader()
            for _ in range(count):
                label = row_index % 4
                wav = f"{label}_{speakers[row_index % 6]}_{row_index // 6}.wav"
                shutil.copy(BUNDLED / "fsdd" / "recordings" / wav, folder / "audio" / wav)
                writer.writerow({
                    "text": "" if row_index % 5 == 0 else WORDS[label],
                    "image": "" if row_index % 7 == 3 else f"image/{EMOJI[label]}",
                    "audio": "" if row_index % 6 == 2 else f"audio/{wav}",
                    "label": str(label),
                })
                row_index += 1
    return folder


def write_config(folder: Path, columns, name: str) -> Path:
    features = "\n".join(f"    {c}: {FEATURES[c][0]}" for c in columns)
    encoders = "\n".join(f"    {c}: {FEATURES[c][1]}" for c in columns)
    path = folder / f"{name}.yaml"
    path.write_text(CONFIG.format(features=features, encoders=encoders))
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return write_tiny_data(tmp_path_factory.mktemp("export_data"))


JAX_TEST = "test_jax_export.py"


def pytest_collection_modifyitems(items):
    """Run the JAX export test last: its subprocess starts first and works while the others run."""
    items.sort(key=lambda item: item.nodeid.split("::")[0].endswith(JAX_TEST))


@pytest.fixture(scope="session", autouse=True)
def jax_export_job(request, tmp_path_factory):
    """The JAX-backend train + export subprocess, started at the beginning of the session when
    its test is selected (None otherwise)."""
    if not any(item.nodeid.split("::")[0].endswith(JAX_TEST) for item in request.session.items):
        yield None
        return
    from tests.export.test_jax_export import start_jax_export

    job = start_jax_export(request.getfixturevalue("tiny_data"), tmp_path_factory.mktemp("jax"))
    yield job
    if job.poll() is None:
        job.kill()
        job.communicate()


def _train(tiny_data, tmp_path_factory, columns, name):
    from mmkeras.config import load_config
    from mmkeras.training.trainer import train

    config = load_config(write_config(tiny_data, columns, name))
    return train(config, run_dir=tmp_path_factory.mktemp("runs") / name).run_dir


@pytest.fixture(scope="session")
def run3(tiny_data, tmp_path_factory) -> Path:
    """A run on text + image + audio, trained for one epoch on the TensorFlow backend."""
    return _train(tiny_data, tmp_path_factory, ("text", "image", "audio"), "three")


@pytest.fixture(scope="session")
def run2(tiny_data, tmp_path_factory) -> Path:
    """A run on text + audio."""
    return _train(tiny_data, tmp_path_factory, ("text", "audio"), "two")


@pytest.fixture(scope="session")
def export3(run3, tmp_path_factory) -> Path:
    """``BASE/1`` of the three-modality run."""
    from mmkeras.export.serving import export_run

    return export_run(run3, tmp_path_factory.mktemp("exports") / "digits")


def raw_rows(config, split: str, input_names: dict):
    """``(labels, {input: [bytes]})`` for every row of ``split``, as a client would send them."""
    from mmkeras.data.manifest import read_manifest
    from mmkeras.export.warmup import raw_request_values

    manifest = read_manifest(config.resolve_path(getattr(config.data, split)))
    inputs = {name: [] for name in input_names}
    for row in manifest.rows:
        for name, value in raw_request_values(manifest, row, input_names).items():
            inputs[name].append(value)
    return [row[config.data.label] for row in manifest.rows], inputs


def keras_predictions(run_dir, split: str = "test"):
    """``(labels, probabilities)`` of the run's Keras model fed by ``build_dataset``, calibrated with
    the run's temperature (as the report and the export are)."""
    import numpy as np

    from mmkeras.evaluation.calibration import apply_temperature, run_temperature
    from mmkeras.evaluation.predictions import predict_split
    from mmkeras.training.run import Run

    preprocessor, labels, probabilities, _ = predict_split(Run(run_dir), split, subsets=False)
    calibrated = apply_temperature(probabilities, run_temperature(Run(run_dir)))
    return [preprocessor.class_names[i] for i in labels], calibrated.astype(np.float32)
