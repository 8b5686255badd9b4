"""KerasHub presets on the JAX backend: trained (jit on, as on TPUs), exported for TF Serving, in bf16 too."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tests.export.conftest import keras_predictions, raw_rows
from tests.keras_hub_runs import hub_config


def test_a_jax_trained_preset_run_serves_what_its_report_says(tiny_presets, tmp_path):
    from mmkeras.evaluation.report import evaluate_run
    from mmkeras.export.serving import export_run
    from mmkeras.training.trainer import train

    config = hub_config(tmp_path, tiny_presets, overrides=["train.epochs=1"])
    run = train(config, run_dir=tmp_path / "run")
    assert run.status()["backend"] == "jax" and run.status()["jit_compile"] is True
    report = evaluate_run(run.run_dir)
    path = export_run(run.run_dir, tmp_path / "exports" / "hub")
    labels, inputs = raw_rows(config, "test", {"text": "text", "image_bytes": "image", "audio_bytes": "audio"})
    outputs = tf.saved_model.load(str(path)).signatures["serving_default"](
        **{name: tf.constant(values) for name, values in inputs.items()})
    _, expected = keras_predictions(run.run_dir)
    assert np.abs(outputs["probabilities"].numpy() - expected).max() <= 1e-5
    accuracy = np.mean([name.decode() == label for name, label in zip(outputs["class_names"].numpy(), labels)])
    assert accuracy == pytest.approx(report["accuracy"])


def test_presets_train_in_mixed_bfloat16_under_jax(tiny_presets, tmp_path):
    from mmkeras.training.trainer import train

    config = hub_config(tmp_path, tiny_presets, ("text", "image"),
                        ["train.epochs=1", "train.precision=mixed_bfloat16", "model.encoders.image.trainable_layers=1"])
    run = train(config, run_dir=tmp_path / "run")
    status = run.status()
    assert status["status"] == "complete" and status["precision"] == "mixed_bfloat16"
    assert math.isfinite(status["loss"])
