"""KerasHub presets under TensorFlow's MirroredStrategy (two logical CPUs) in mixed_float16: a frozen
backbone (cached) beside a LoRA-tuned one (trained in every step), as a GPU user would run them."""

from __future__ import annotations

import keras
import pytest

from tests.keras_hub_runs import hub_config
from tests.training.test_strategy import TWO_CPUS, run_python

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute strategies")


def test_presets_train_mirrored_in_mixed_float16_and_evaluate(tiny_presets, tmp_path):
    config = hub_config(tmp_path, tiny_presets, ("text", "image"), fusion="concat")
    path = next(tmp_path.glob("hub_text_image.yaml"))
    result = run_python(TWO_CPUS + f"""
import json, math
from mmkeras.config import load_config
from mmkeras.evaluation.report import evaluate_run
from mmkeras.training.trainer import train
config = load_config({str(path)!r}, ["train.strategy=mirrored", "train.precision=mixed_float16",
                                      "model.encoders.text.lora_rank=2", "train.epochs=2"])
run = train(config, run_dir={str(tmp_path / "run")!r})
report = evaluate_run(run.run_dir)
print(json.dumps({{"status": run.status(), "loss": [row["loss"] for row in run.epoch_rows()],
                  "accuracy": report["accuracy"]}}))
""", timeout_s=300)
    status = result["status"]
    assert status["status"] == "complete" and (status["strategy"], status["replicas"]) == ("mirrored", 2)
    assert status["precision"] == "mixed_float16" and status["epochs_done"] == 2
    assert all(loss == loss and loss < 10 for loss in result["loss"]), result["loss"]  # finite, not NaN
    assert 0.0 <= result["accuracy"] <= 1.0
    assert config.model.encoders["image"] == {"type": "keras_hub", "preset": tiny_presets["vit"]}
