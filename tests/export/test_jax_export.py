"""A run trained on the JAX backend exports (jax2tf inside ExportArchive) and serves raw bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.export.conftest import write_config

SCRIPT = """
import json, os, sys
sys.path.insert(0, sys.argv[4])
from conftest import keras_predictions, raw_rows
from mmkeras.config import load_config
from mmkeras.training.trainer import train
from mmkeras.export.serving import METADATA_FILE, export_run

config = load_config(sys.argv[1], ["train.backend=jax"])
run = train(config, run_dir=sys.argv[2])
path = export_run(run.run_dir, sys.argv[3])
import keras
import numpy as np
import tensorflow as tf

labels, expected = keras_predictions(run.run_dir)
names = {"text": "text", "image_bytes": "image", "audio_bytes": "audio"}
_, inputs = raw_rows(config, "test", names)
served = tf.saved_model.load(str(path)).signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
metadata = json.loads((path / METADATA_FILE).read_text())
print(json.dumps({"backend": keras.backend.backend(), "trained_backend": metadata["trained_backend"],
                  "rows": len(labels), "max_abs_diff": float(np.abs(served["probabilities"].numpy() - expected).max())}))
"""


def start_jax_export(tiny_data, folder: Path) -> subprocess.Popen:
    """Train and export on the JAX backend in a subprocess (started early by conftest, so it runs
    while the TensorFlow-backend tests do)."""
    config = write_config(tiny_data, ("text", "image", "audio"), "jax_three")
    environment = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(config), str(folder / "run"), str(folder / "exports" / "digits"),
         str(Path(__file__).parent)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
    )


def test_jax_trained_run_exports_and_matches_its_keras_model(jax_export_job):
    stdout, stderr = jax_export_job.communicate(timeout=600)
    assert jax_export_job.returncode == 0, stderr[-3000:]
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax" and result["trained_backend"] == "jax" and result["rows"] == 8
    assert result["max_abs_diff"] <= 1e-5, result
