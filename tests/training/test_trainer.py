import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.tiny_data import tiny_config, tiny_digits

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_digits(tmp_path_factory.mktemp("tiny_digits"))


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    from mmkeras.training.trainer import train

    run_dir = tmp_path_factory.mktemp("runs") / "run"
    return train(tiny_config(folder), run_dir=run_dir)


def test_train_writes_the_documented_run_directory(trained):
    run = trained
    for path in (run.config_file, run.best_model, run.last_model, run.history_file, run.csv_log):
        assert path.exists(), path
    assert (run.preprocessor_dir).is_dir()
    assert not run.backup_dir.exists() and not run.lock_file.exists()  # both gone once training completed
    status = run.status()
    assert status["status"] == "complete" and status["resumed"] is False
    assert status["backend"] == "tensorflow" and status["strategy"] == "cpu" and status["replicas"] == 1
    assert status["jit_compile"] is False  # train.jit_compile: auto is off for TensorFlow on the CPU
    assert status["epochs_done"] == 2 and status["parameters"] > 1000
    history = json.loads(run.history_file.read_text())
    assert [row["epoch"] for row in history] == [0, 1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(history[0])
    assert history == run.epoch_rows()  # history.json and training_log.csv hold the same rows
    # The rate of each epoch's first step: cosine decay from 0.003 over 2 x 6 steps.
    assert [row["learning_rate"] for row in history] == pytest.approx([0.003, 0.0015])


def test_tensorboard_has_scalars_learning_rate_and_confusion_matrix_image(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = {}
    for folder in ("train", "validation"):
        accumulator = EventAccumulator(str(trained.log_dir / folder), size_guidance={"tensors": 0, "images": 0})
        accumulator.Reload()
        tags[folder] = accumulator.Tags()
    assert "epoch_loss" in tags["train"]["tensors"]
    assert "epoch_learning_rate" in tags["train"]["tensors"]
    assert "confusion_matrix" in tags["validation"]["tensors"]  # tf.summary.image stores a tensor summary


def test_rerunning_a_complete_run_changes_nothing(trained, folder, capsys):
    from mmkeras.training.trainer import train

    before = trained.last_model.stat().st_mtime
    train(tiny_config(folder), run_dir=trained.run_dir)
    assert "already holds a complete run" in capsys.readouterr().out
    assert trained.last_model.stat().st_mtime == before


def test_focal_loss_matches_its_formula_and_is_below_crossentropy():
    import keras

    from mmkeras.config import TrainConfig
    from mmkeras.training.objective import build_loss

    y_true = np.array([[0.0, 1.0], [1.0, 0.0]], dtype="float32")
    y_pred = np.array([[0.2, 0.8], [0.6, 0.4]], dtype="float32")
    focal = float(build_loss(TrainConfig(loss="focal", focal_gamma=2.0))(y_true, y_pred))
    crossentropy = float(build_loss(TrainConfig())(y_true, y_pred))
    p = np.array([0.8, 0.6])
    assert crossentropy == pytest.approx(np.mean(-np.log(p)), rel=1e-5)
    # Keras' categorical focal loss: alpha * (1 - p)^gamma * -log(p), alpha = 0.25
    assert focal == pytest.approx(np.mean(0.25 * (1 - p) ** 2 * -np.log(p)), rel=1e-4)
    smoothed = float(build_loss(TrainConfig(label_smoothing=0.2))(y_true, y_pred))
    assert smoothed > crossentropy  # smoothing penalizes confident correct predictions


def test_balanced_class_weights_scale_the_loss_of_rare_classes():
    import tensorflow as tf

    from mmkeras.training.fit_data import training_targets
    from mmkeras.training.objective import balanced_class_weights

    weights = balanced_class_weights([0, 0, 0, 1], 2)
    assert weights == pytest.approx([4 / 6, 2.0])
    dataset = tf.data.Dataset.from_tensor_slices(({"x": [1.0, 2.0]}, [0, 1])).batch(2)

    class OneOutput:
        output_names = ["probabilities"]

    features, targets, sample_weight = next(iter(training_targets(dataset, OneOutput(), 2, weights)))
    assert targets.numpy().tolist() == [[1, 0], [0, 1]]
    assert sample_weight.numpy() == pytest.approx([4 / 6, 2.0])


def _train_command(config_path, run_dir, *overrides):
    return [sys.executable, "-m", "mmkeras.cli", "train", "--config", str(config_path), "--run-dir", str(run_dir),
            *[item for override in overrides for item in ("--set", override)]]


def test_bad_config_value_fails_before_training_and_names_the_key(folder, tmp_path):
    tiny_config(folder)
    run_dir = tmp_path / "run"
    result = subprocess.run(_train_command(folder / "config.yaml", run_dir, "train.precision=fp8"),
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert "train.precision='fp8' is not valid; choose one of: 'float32', 'mixed_float16', 'mixed_bfloat16'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not run_dir.exists()


def test_auxiliary_head_losses_only_count_examples_where_the_column_is_present():
    import tensorflow as tf

    from mmkeras.training.fit_data import training_targets

    features = {"text": [[1], [2]], "text_present": [1.0, 0.0], "image_present": [0.0, 1.0]}
    dataset = tf.data.Dataset.from_tensor_slices((features, [0, 1])).batch(2)

    class WithAuxiliaryHeads:
        output_names = ["probabilities", "aux_text", "aux_image"]

    _, targets, weights = next(iter(training_targets(dataset, WithAuxiliaryHeads(), 2, [1.0, 3.0])))
    assert set(targets) == {"probabilities", "aux_text", "aux_image"}
    assert weights["probabilities"].numpy().tolist() == [1.0, 3.0]
    assert weights["aux_text"].numpy().tolist() == [1.0, 0.0]
    assert weights["aux_image"].numpy().tolist() == [0.0, 3.0]


def test_speed_and_imbalance_settings_train_together(folder, tmp_path, capsys):
    """jit_compile, mixed_bfloat16, warm-up, focal loss, balanced class weights, auxiliary heads, verbose auto."""
    from mmkeras.training.trainer import train

    overrides = ["train.epochs=1", "train.jit_compile=true", "train.precision=mixed_bfloat16",
                 "train.warmup_epochs=0.5", "train.loss=focal", "train.class_weight=balanced",
                 "model.head.auxiliary=true", "train.verbose=auto"]
    run = train(tiny_config(folder, overrides), run_dir=tmp_path / "run")
    status = run.status()
    assert status["status"] == "complete" and status["precision"] == "mixed_bfloat16"
    assert status["jit_compile"] is True
    # verbose: auto with output captured (not a terminal): one line per epoch, no progress bar.
    out = capsys.readouterr().out
    assert "\r" not in out and "━" not in out, out
    assert [line for line in out.splitlines() if " - loss: " in line or "val_loss" in line] == [
        next(line for line in out.splitlines() if line.startswith("6/6 - ") and "val_loss" in line)]
    assert np.isfinite(status["loss"])
    import keras

    from mmkeras import registry

    registry.load_all()
    model = keras.models.load_model(run.last_model)
    assert set(model.output_names) == {"probabilities", "aux_text", "aux_image", "aux_audio"}
