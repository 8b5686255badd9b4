"""A run whose three encoders are KerasHub presets exports one SavedModel that takes raw bytes, with the
presets' tokenizer and converters inside, and answers as the report says."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tests.export.conftest import keras_predictions, raw_rows
from tests.export.test_serving import saved_model_ops
from tests.keras_hub_runs import hub_config

NAMES = {"text": "text", "image_bytes": "image", "audio_bytes": "audio"}


@pytest.fixture(scope="module")
def hub_run(tiny_presets, tmp_path_factory):
    from mmkeras.evaluation.report import evaluate_run
    from mmkeras.export.serving import export_run
    from mmkeras.training.trainer import train

    folder = tmp_path_factory.mktemp("hub")
    config = hub_config(folder, tiny_presets)
    run = train(config, run_dir=folder / "run")
    report = evaluate_run(run.run_dir)
    return config, run, report, export_run(run.run_dir, folder / "exports" / "hub")


def test_raw_bytes_answers_match_the_keras_model_and_the_report(hub_run):
    config, run, report, path = hub_run
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    labels, inputs = raw_rows(config, "test", NAMES)
    outputs = served(**{name: tf.constant(values) for name, values in inputs.items()})
    _, expected = keras_predictions(run.run_dir)
    assert np.abs(outputs["probabilities"].numpy() - expected).max() <= 1e-5
    accuracy = np.mean([name.decode() == label for name, label in zip(outputs["class_names"].numpy(), labels)])
    assert accuracy == pytest.approx(report["accuracy"])


def test_the_export_carries_the_presets_preprocessing_and_needs_no_python(hub_run):
    config, run, _, path = hub_run
    for column in ("text", "image", "audio"):  # the run's own copy of each preset's layer
        assert (run.run_dir / "preprocessor" / "assets" / column / "config.json").exists()
    ops = saved_model_ops(path)
    assert {"FastWordpieceTokenizeWithOffsets", "ResizeBilinear", "RFFT"} & ops
    assert not ops & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}
    metadata = json.loads((path / "mmkeras_export.json").read_text())
    assert sorted(metadata["input_columns"]) == ["audio_bytes", "image_bytes", "text"]


def test_a_fresh_process_loads_the_runs_model_after_import_mmkeras(hub_run):
    import subprocess
    import sys

    _, run, _, _ = hub_run
    script = ("import sys, keras, mmkeras\n"
              "model = keras.models.load_model(sys.argv[1])\n"
              "print(sorted(model.input))\n")
    done = subprocess.run([sys.executable, "-c", script, str(run.best_model)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(["audio", "audio_present", "image", "image_present", "text",
                                                        "text_present"])
