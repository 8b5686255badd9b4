"""Two ``mmkeras train`` worker processes on localhost under ``train.strategy=multi_worker``.

Keras 3 alone fails here (docs/distributed.md); ``mmkeras.training.distributed`` is what makes it
train, so these tests start real workers: the CLI, ``TF_CONFIG`` with two free localhost ports,
CPU only, and a hard timeout that kills both workers.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest

from mmkeras.training.distributed import local_tf_configs

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute strategies")

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 150

COLOURS = ["red", "green", "blue", "gold"]
FILLER = ["the", "a", "some", "very", "bright", "dark", "thing", "is", "looks", "quite"]
TINY_TEXT_CONFIG = """
data:
  train: train.csv
  validation: validation.csv
  label: label
  cache: memory
  features:
    text: {modality: text, max_tokens: 50, sequence_length: 6}
model:
  encoders:
    text: {type: embedding}
  fusion: {type: concat, output_dim: 16}
  head: {type: softmax}
train:
  epochs: 4
  batch_size: 16
  strategy: cpu
  learning_rate: 0.01
  verbose: 0
"""


def tiny_text_config(folder: Path) -> Path:
    """A 4-class text-only task (the colour word among filler words): 128 train rows, 32 validation."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for split, count in (("train", 128), ("validation", 32)):
        with open(folder / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            for row in range(count):
                words = rng.sample(FILLER, 3) + [COLOURS[row % 4]]
                rng.shuffle(words)
                writer.writerow([" ".join(words), COLOURS[row % 4]])
    (folder / "tiny.yaml").write_text(TINY_TEXT_CONFIG)
    return folder / "tiny.yaml"


def cli_environment(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "KERAS_BACKEND")}
    return env | {"CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"} | extra


def train_command(config: Path, run_dir: Path, *overrides: str) -> list[str]:
    sets = [argument for override in overrides for argument in ("--set", override)]
    return [sys.executable, "-m", "mmkeras.cli", "train", "--config", str(config), "--run-dir", str(run_dir), *sets]


def run_all(commands: list[tuple[list[str], dict]], logs: Path, timeout_s: float = TIMEOUT_S) -> list[int]:
    """Start every command at once; wait at most ``timeout_s`` for all, kill what is left."""
    logs.mkdir(parents=True, exist_ok=True)
    processes = []
    for number, (command, env) in enumerate(commands):
        with open(logs / f"process{number}.log", "w") as log:
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + timeout_s
    try:
        for process in processes:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    codes = [process.returncode for process in processes]
    if codes != [0] * len(codes):
        tails = "\n".join(f"--- process {n}:\n" + (logs / f"process{n}.log").read_text()[-3000:]
                          for n in range(len(processes)))
        pytest.fail(f"exit codes {codes} (negative: killed after {timeout_s}s)\n{tails}")
    return codes


def losses(run_dir: Path) -> list[float]:
    with open(run_dir / "training_log.csv", newline="") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A two-worker run, then the same config trained in this process (no worker start-up to pay)."""
    from mmkeras.config import load_config
    from mmkeras.training.trainer import train

    folder = tmp_path_factory.mktemp("multi_worker")
    config = tiny_text_config(folder / "data")
    single, multi = folder / "single", folder / "multi"
    start = time.monotonic()
    run_all([(train_command(config, multi, "train.strategy=multi_worker"), cli_environment(TF_CONFIG=tf_config))
             for tf_config in local_tf_configs(2)], folder / "logs")
    seconds = time.monotonic() - start
    train(load_config(config), run_dir=single)
    return {"single": single, "multi": multi, "seconds": seconds}


def test_two_workers_finish_and_match_the_single_process_loss(runs):
    single, multi = losses(runs["single"]), losses(runs["multi"])
    assert len(multi) == len(single) == 4
    assert multi[-1] < 0.8 * multi[0]  # it learned
    # Same global batch of 16 (8 per worker), same seed: epoch 1 sees the same data in the same order,
    # so the numbers agree up to float summation order. Later epochs reshuffle, and the single-device
    # run (default strategy) creates its iterators differently from the distributed one, so their
    # orders differ: the same range, not the same numbers. A worker that trained on only its own half
    # would drift far more.
    assert multi[0] == pytest.approx(single[0], rel=1e-3)
    assert multi == pytest.approx(single, rel=0.1)


def test_chief_writes_the_run_and_the_other_worker_writes_beside_it(runs):
    multi = runs["multi"]
    status = json.loads((multi / "run.json").read_text())
    assert status["status"] == "complete"
    assert status["strategy"] == "multi_worker" and status["replicas"] == 2
    assert (multi / "best.keras").exists() and (multi / "last.keras").exists()
    assert list((multi / "logs").glob("train/events.out.tfevents.*"))  # TensorBoard on the chief only
    assert not (multi / "backup").exists()  # BackupAndRestore removed its state when training completed
    worker = multi / "workers" / "1"
    assert json.loads((worker / "run.json").read_text())["status"] == "complete"
    assert (worker / "last.keras").exists()
    assert not (worker / "logs").exists() and not (worker / "training_log.csv").exists()


def test_workers_hold_the_same_trained_weights(runs):
    import keras
    import numpy as np

    import mmkeras.layers  # noqa: F401  (registers the layers the saved model names)

    chief = keras.saving.load_model(runs["multi"] / "last.keras")
    other = keras.saving.load_model(runs["multi"] / "workers" / "1" / "last.keras")
    for mine, theirs in zip(chief.get_weights(), other.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6)


def test_local_tf_configs_name_one_cluster_with_distinct_ports():
    configs = [json.loads(value) for value in local_tf_configs(3)]
    workers = configs[0]["cluster"]["worker"]
    assert all(config["cluster"]["worker"] == workers for config in configs)
    assert len(set(workers)) == 3 and all(address.startswith("localhost:") for address in workers)
    assert [config["task"] for config in configs] == [{"type": "worker", "index": i} for i in range(3)]
    with pytest.raises(ValueError, match="received 0"):
        local_tf_configs(0)
