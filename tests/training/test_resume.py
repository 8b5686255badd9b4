"""Resume after SIGKILL at any moment: the run continues exactly where its backup was taken.

One run is killed twice (``MMKERAS_TEST_KILL_AT`` makes the trainer SIGKILL itself at a named point,
so each kill lands where it should on a loaded machine): at the end of epoch 1, halfway through
writing its backup (the rerun resumes mid-epoch from the backup before), and after the last epoch
before the run is marked complete (the rerun only restores and finishes). It is then finished in
this process and compared with the same config trained without interruption: same history (loss,
metrics and learning rate of every epoch, each epoch logged once), same final weights. tests/jax runs
``kill_resume_and_compare`` under KERAS_BACKEND=jax with one kill (the subprocess inherits the
backend; each JAX process pays for its XLA compilation).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.tiny_data import tiny_config, tiny_digits

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_digits(tmp_path_factory.mktemp("tiny_digits"))


def _train_until_killed(folder: Path, run_dir: Path, kill_at: str, settings: list) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mmkeras.cli", "train", "--config", str(folder / "config.yaml"),
               "--run-dir", str(run_dir), *[item for setting in settings for item in ("--set", setting)]]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", MMKERAS_TEST_KILL_AT=kill_at)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _weights(path: Path) -> list[np.ndarray]:
    from mmkeras import registry

    registry.load_all()
    return keras.saving.load_model(path, compile=False).get_weights()


def kill_resume_and_compare(folder: Path, tmp_path: Path, kills: tuple, epochs: int) -> list[list[str]]:
    """Train ``epochs`` epochs uninterrupted here; train the same in subprocesses killed at each of
    ``kills`` in turn, finish it here, and check both runs agree. Returns the backup folder's
    listing after each kill."""
    from mmkeras.training.trainer import train

    settings = [f"train.epochs={epochs}", "train.batch_size=8"]  # 12 steps per epoch, a backup every 6
    config = tiny_config(folder, settings)
    reference = train(config, run_dir=tmp_path / "reference")
    run_dir = tmp_path / "killed"
    seen = []
    for kill_at in kills:
        result = _train_until_killed(folder, run_dir, kill_at, settings)
        assert result.returncode == -signal.SIGKILL, (kill_at, result.stderr[-3000:])
        assert json.loads((run_dir / "run.json").read_text())["status"] == "training"
        assert (run_dir / "train.lock").exists()  # left by the killed process; must not block the rerun
        seen.append(sorted(path.name for path in (run_dir / "backup").iterdir()))

    run = train(config, run_dir=run_dir)
    status = run.status()
    assert status["status"] == "complete" and status["resumed"] is True
    assert status["epochs_done"] == status["epochs_planned"] == epochs
    assert not run.backup_dir.exists() and not (run_dir / "train.lock").exists()
    assert not list(run_dir.glob(".*partial*"))
    expected, rows = reference.epoch_rows(), run.epoch_rows()
    assert [row["epoch"] for row in rows] == list(range(epochs))  # each epoch once, in order
    assert [row["learning_rate"] for row in rows] == [row["learning_rate"] for row in expected]
    assert rows[1]["learning_rate"] == pytest.approx(0.003 * (1 + np.cos(np.pi / epochs)) / 2)  # cosine, step 12
    for row, reference_row in zip(rows, expected):
        assert row.pop("epoch_seconds") > 0 and reference_row.pop("epoch_seconds") > 0  # wall time differs
        assert row == pytest.approx(reference_row, rel=1e-5, abs=1e-6)
    for mine, theirs in zip(_weights(run.last_model), _weights(reference.last_model)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    return seen


def test_run_killed_at_every_point_finishes_as_if_never_interrupted(folder, tmp_path):
    seen = kill_resume_and_compare(folder, tmp_path, ("backup-write:2", "finish"), epochs=3)
    # Killed at the end of epoch 1, inside the write of its backup (the run's 2nd): the 1st backup
    # (epoch 1, step 6 of 12) is intact, the half-written one a hidden temp file, never a backup.
    # The rerun resumes mid-epoch and is killed after the last epoch, before the run is marked
    # complete: the last two backups kept, the newest at the end of epoch 3.
    assert seen[0][0].startswith(".000002-epoch1-step0.partial-") and seen[0][1:] == ["000001-epoch0-step6.zip"]
    assert seen[1] == ["000005-epoch2-step6.zip", "000006-epoch3-step0.zip"]


def _tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(0.1), "mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0)
    return model


def test_store_keeps_the_previous_backup_and_falls_back_when_the_newest_is_damaged(tmp_path, capsys):
    from mmkeras.training.backup import BackupStore, restore

    model = _tiny_model()
    store = BackupStore(tmp_path / "backup")
    first = store.save(model, {"epoch": 0, "step": 2})
    kernel = model.get_weights()[0].copy()
    model.layers[0].kernel.assign(np.zeros_like(kernel))
    store.save(model, {"epoch": 1, "step": 0})
    third = store.save(model, {"epoch": 1, "step": 2})
    assert [path.name for path in store.files()] == [third.name, "000002-epoch1-step0.zip"]  # two kept
    assert not first.exists()

    # A damaged newest file (a byte flipped inside an array): its CRC fails, the previous one loads.
    data = bytearray(third.read_bytes())
    with zipfile.ZipFile(third) as archive:
        info = archive.getinfo("trainable/00000.npy")
    data[info.header_offset + 100] ^= 0xFF
    third.write_bytes(bytes(data))
    state = store.load()
    assert state.position == (1, 0)
    assert f"the backup {third}" in capsys.readouterr().err
    model.layers[0].kernel.assign(kernel)
    restore(model, state)
    np.testing.assert_array_equal(model.get_weights()[0], np.zeros_like(kernel))
    assert int(model.optimizer.iterations.numpy()) == 1


def test_no_readable_backup_stops_with_one_sentence_naming_the_files(tmp_path):
    from mmkeras.training.backup import BackupError, BackupStore

    store = BackupStore(tmp_path / "backup")
    store.save(_tiny_model(), {"epoch": 0, "step": 2})
    only = store.files()[0]
    only.write_bytes(only.read_bytes()[:200])  # truncated, as a kill mid-write in place would leave it
    with pytest.raises(BackupError) as caught:
        store.load()
    message = str(caught.value)
    assert message.startswith(f"no backup of this run can be read: {only} (BadZipFile")
    assert message.endswith(f"delete {store.folder} to train the run again from its first epoch")
    assert "\n" not in message


def test_backup_of_another_model_is_refused_naming_the_file(tmp_path):
    from mmkeras.training.backup import BackupError, BackupStore, restore

    store = BackupStore(tmp_path / "backup")
    path = store.save(_tiny_model(), {"epoch": 1, "step": 0})
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    other.compile(keras.optimizers.Adam(0.1), "mse")
    with pytest.raises(BackupError, match=f"the backup {path} does not fit this model: its 2 trainable"):
        restore(other, store.load())
