"""A run trained on the JAX backend exports (jax2tf inside ExportArchive) and serves raw bytes, in float32 and int8."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
int8 = export_run(run.run_dir, sys.argv[3], quantize="int8")
served8 = tf.saved_model.load(str(int8)).signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
print(json.dumps({"backend": keras.backend.backend(), "trained_backend": metadata["trained_backend"],
                  "rows": len(labels), "max_abs_diff": float(np.abs(served["probabilities"].numpy() - expected).max()),
                  "int8_max_abs_diff": float(np.abs(served8["probabilities"].numpy() - expected).max()),
                  "int8_layers": json.loads((int8 / METADATA_FILE).read_text())["int8_layers"]}))
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


@pytest.fixture(scope="module")
def jax_result(jax_export_job) -> dict:
    stdout, stderr = jax_export_job.communicate(timeout=600)
    assert jax_export_job.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


def test_jax_trained_run_exports_and_matches_its_keras_model(jax_result):
    result = jax_result
    assert result["backend"] == "jax" and result["trained_backend"] == "jax" and result["rows"] == 8
    assert result["max_abs_diff"] <= 1e-5, result


def test_jax_trained_run_exports_as_int8_within_the_stated_tolerance(jax_result):
    # Keras quantizes on JAX too and jax2tf converts the int8 matmuls; measured max |int8 - Keras float32| 1.4e-3.
    assert jax_result["int8_layers"] == ["text_embedding", "image_dense", "concat_fusion/projection", "head_logits"]
    assert 0 < jax_result["int8_max_abs_diff"] <= 0.01, jax_result
