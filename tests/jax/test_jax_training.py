"""Training on the Keras JAX backend: the same trainer, run directory, report and resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from tests.tiny_data import tiny_config, tiny_digits
from tests.training.test_resume import folder, kill_resume_and_compare  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def test_session_runs_on_jax():
    assert keras.backend.backend() == "jax"


def test_jax_run_killed_inside_a_backup_write_resumes_mid_epoch_as_if_never_interrupted(folder, tmp_path):
    # The subprocess inherits KERAS_BACKEND=jax. Its kill halfway through writing the epoch-end backup
    # leaves the mid-epoch one: the resume here restores the epoch's running metrics and trains the rest
    # of epoch 1 in a shorter fit, then epoch 2.
    seen = kill_resume_and_compare(folder, tmp_path, ("backup-write:2",), epochs=2)
    assert seen[0][1:] == ["000001-epoch0-step6.zip"]


def test_jax_run_records_its_backend_and_evaluates(folder, tmp_path):
    from mmkeras.evaluation.report import evaluate_run
    from mmkeras.training.trainer import train

    run = train(tiny_config(folder, ["train.strategy=auto"]), run_dir=tmp_path / "run")
    status = run.status()
    assert status["backend"] == "jax" and status["status"] == "complete" and status["epochs_done"] == 2
    assert status["jit_compile"] is True  # train.jit_compile: auto is on under JAX
    report = evaluate_run(run.run_dir)
    assert 0.0 <= report["accuracy"] <= 1.0
    assert set(report["modality_ablation"]) == {"text", "image", "audio"}


def test_tf_only_strategy_is_refused_with_the_jax_equivalent(folder, tmp_path):
    from mmkeras.training.trainer import train

    with pytest.raises(ValueError, match="use train.strategy=data_parallel"):
        train(tiny_config(folder, ["train.strategy=mirrored"]), run_dir=tmp_path / "run")


def _train_in_subprocess(config_path: Path, run_dir: Path, devices: int, *overrides) -> dict:
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    command = [sys.executable, "-m", "mmkeras.cli", "train", "--config", str(config_path), "--run-dir", str(run_dir)]
    for override in overrides:
        command += ["--set", override]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((run_dir / "run.json").read_text())


def test_colab_tpu_row_of_the_readme_trains_data_parallel_on_two_host_devices(tmp_path_factory):
    """README "Which path where", Colab TPU: train.backend=jax, train.strategy=auto, mixed_bfloat16, and
    nothing else (jit_compile left at auto); two forced host devices stand in for the TPU cores."""
    folder = tiny_digits(tmp_path_factory.mktemp("dp"), rows={"train": 256, "validation": 64, "test": 32})
    tiny_config(folder)
    row = ["train.backend=jax", "train.strategy=auto", "train.precision=mixed_bfloat16"]
    settings = ["train.epochs=4", "train.batch_size=32"]
    one = _train_in_subprocess(folder / "config.yaml", folder / "one", 1, *row, *settings)
    two = _train_in_subprocess(folder / "config.yaml", folder / "two", 2, *row, *settings)
    assert (one["strategy"], one["replicas"], one["jit_compile"]) == ("cpu", 1, True)
    assert (two["strategy"], two["replicas"], two["jit_compile"]) == ("data_parallel", 2, True)
    assert one["precision"] == two["precision"] == "mixed_bfloat16" and two["status"] == "complete"
    # Same global batch, same seed: the two runs see the same batches and should land in the same range.
    assert one["val_accuracy"] > 0.2 and two["val_accuracy"] > 0.2  # chance is 0.1
    assert abs(one["val_accuracy"] - two["val_accuracy"]) <= 0.15
    assert two["loss"] == pytest.approx(one["loss"], rel=0.25)


def test_eager_data_parallel_on_several_devices_is_refused_and_auto_compiles():
    script = (
        "import keras\n"
        "from mmkeras.config import TrainConfig\n"
        "from mmkeras.training.strategy import build_strategy\n"
        "try:\n"
        "    build_strategy(TrainConfig(strategy='data_parallel', jit_compile=False, batch_size=8))\n"
        "except ValueError as error:\n"
        "    print('REFUSED', error)\n"
        "print('JIT', build_strategy(TrainConfig(strategy='data_parallel', jit_compile=True, batch_size=8)).num_replicas)\n"
        "plan = build_strategy(TrainConfig(strategy='data_parallel', batch_size=8))\n"
        "print('AUTO', plan.num_replicas, plan.jit_compile)\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert "REFUSED train.jit_compile=false is not supported with train.strategy=data_parallel" in result.stdout
    assert "JIT 2" in result.stdout, result.stderr[-2000:]
    assert "AUTO 2 True" in result.stdout  # the default, jit_compile: auto, is on under JAX
