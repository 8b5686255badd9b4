"""Contrastive pretraining on the Keras JAX backend: CLIP on one device, DataParallel over two forced
host devices (negatives span the global batch), and fine-tuning from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from mmkeras.training.pretrain import pretrain
from mmkeras.training.pretrained import REPORT_FILE
from tests.paired_data import paired_config, paired_grid

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return paired_grid(tmp_path_factory.mktemp("paired"))


@pytest.fixture(scope="module")
def clip_run(folder):
    return pretrain(paired_config(folder, ["pretrain.loss=clip", "train.strategy=auto"]), folder / "clip")


def test_clip_pretraining_on_jax_raises_held_out_recall(clip_run):
    assert keras.backend.backend() == "jax"
    report = json.loads((clip_run.run_dir / REPORT_FILE).read_text())
    status = clip_run.status()
    assert (status["backend"], status["kind"], status["status"]) == ("jax", "pretrain", "complete")
    assert report["loss"] == "clip" and report["loss_last_epoch"] < 0.5 * report["loss_first_epoch"]
    for direction in ("text->image", "image->text"):
        assert report[direction]["recall@5"] > report["retrieval_at_init"][direction]["recall@5"] + 0.5
    assert set(report["temperatures"]["text-image"]) == {"scale"}


def test_fine_tuning_from_a_jax_pretraining_run(clip_run, folder, tmp_path):
    from mmkeras.training.trainer import train

    run = train(paired_config(folder, [f"model.init_from={clip_run.run_dir}", "data.label_fraction=0.25"]),
                tmp_path / "run")
    status = run.status()
    assert status["status"] == "complete" and status["init_from"] == str(clip_run.run_dir.resolve())
    assert status["label_fraction"] == 0.25


def test_data_parallel_pretraining_on_two_devices_uses_the_global_batch(clip_run, folder):
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2",
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    command = [sys.executable, "-m", "mmkeras.cli", "pretrain", "--config", str(folder / "config.yaml"),
               "--run-dir", str(folder / "two"), "--set", "pretrain.loss=clip", "--set", "train.strategy=auto"]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "text->image: recall@5" in done.stdout
    status = json.loads((folder / "two" / "run.json").read_text())
    report = json.loads((folder / "two" / REPORT_FILE).read_text())
    assert (status["strategy"], status["replicas"]) == ("data_parallel", 2)
    assert report["negatives"] == "global batch of 32 rows over 2 replicas"
    single = json.loads((clip_run.run_dir / REPORT_FILE).read_text())
    assert report["loss_first_epoch"] == pytest.approx(single["loss_first_epoch"], rel=0.03)
