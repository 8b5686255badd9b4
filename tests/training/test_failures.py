"""Runs that cannot finish: a loss that becomes NaN, a full disk, a second training on one directory."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys

import keras
import pytest

from tests.tiny_data import tiny_config, tiny_digits


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny_digits(tmp_path_factory.mktemp("tiny_digits"))


def test_nan_loss_fails_the_run_naming_epoch_and_step_and_its_model_is_refused(folder, tmp_path, capsys):
    from mmkeras import cli
    from mmkeras.evaluation.report import evaluate_run
    from mmkeras.training.run import Run, RunFailedError
    from mmkeras.training.trainer import train

    run_dir = tmp_path / "run"
    config = tiny_config(folder, ["train.epochs=1", "train.learning_rate=1e30"])
    with pytest.raises(RunFailedError) as caught:
        train(config, run_dir=run_dir)
    message = str(caught.value)
    assert re.fullmatch(r"training diverged: the loss became (nan|inf) at epoch 1/1, step [1-6]/6; lower "
                        r"train\.learning_rate \(or raise train\.warmup_epochs\) and train again", message), message
    status = json.loads((run_dir / "run.json").read_text())
    assert status["status"] == "failed"
    assert status["failure"]["epoch"] == 1 and status["failure"]["message"] == message
    assert not (run_dir / "last.keras").exists() and not (run_dir / "train.lock").exists()

    refusal = f"{run_dir} is a failed run ({status['failure']['reason']}); its model is not usable: train it again"
    with pytest.raises(RunFailedError, match=re.escape(refusal)):
        Run(run_dir).model_path()
    with pytest.raises(RunFailedError, match=re.escape(refusal)):
        evaluate_run(run_dir)
    assert not (run_dir / "report.json").exists()

    capsys.readouterr()
    assert cli.main(["evaluate", "--run-dir", str(run_dir)]) == 2
    assert capsys.readouterr().err.strip() == f"mmkeras evaluate: error: {refusal}"
    train_command = ["train", "--config", str(folder / "config.yaml"), "--run-dir", str(run_dir),
                     "--set", "train.epochs=1", "--set", "train.learning_rate=1e30"]
    assert cli.main(train_command) == 2  # the rerun resumes, diverges again, and says so
    assert capsys.readouterr().err.strip() == f"mmkeras train: error: {message}"


def test_full_disk_while_saving_a_model_names_the_file_and_keeps_the_previous_copy(folder, tmp_path, monkeypatch):
    from mmkeras.training.atomic import WriteError
    from mmkeras.training.trainer import train

    real_save, calls = keras.Model.save, []

    def save_until_the_disk_fills(self, filepath, *args, **kwargs):
        calls.append(str(filepath))
        if len(calls) == 1:
            return real_save(self, filepath, *args, **kwargs)
        with open(filepath, "wb") as handle:  # what a full disk leaves: the start of a zip
            handle.write(b"PK\x03\x04 truncated")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", save_until_the_disk_fills)
    run_dir = tmp_path / "run"
    with pytest.raises(WriteError) as caught:
        train(tiny_config(folder), run_dir=run_dir)
    monkeypatch.undo()
    target = run_dir / ("best.keras" if os.path.basename(calls[1]).startswith(".best") else "last.keras")
    kept = "the previous copy is kept" if target.name == "best.keras" else "nothing was written"
    assert str(caught.value) == (f"no space left on the device to write {target} ({kept}); free some space and "
                                 "run the same command again to continue from the last backup")
    assert calls[0].startswith(str(run_dir / ".best.partial-"))  # every save goes through a temp name
    from mmkeras import registry

    registry.load_all()
    assert keras.saving.load_model(run_dir / "best.keras").count_params() > 1000  # the first copy, whole
    assert not list(run_dir.glob(".*partial*"))
    assert json.loads((run_dir / "run.json").read_text())["status"] == "training"  # resumable, not failed


def test_manifest_mistake_fails_before_the_run_directory_exists(folder, tmp_path):
    from mmkeras.data.manifest import ManifestError
    from mmkeras.training.trainer import train

    validation = tmp_path / "validation.csv"
    validation.write_text("text,image,audio,label\neleven,,,11\n")
    run_dir = tmp_path / "run"
    with pytest.raises(ManifestError, match=f"{validation.name} row 1: label '11' is not a class of the train split"):
        train(tiny_config(folder, [f"data.validation={validation}"]), run_dir=run_dir)
    assert not run_dir.exists()


def test_second_training_on_one_run_directory_is_refused_at_once(folder, tmp_path):
    from mmkeras.training.lock import RunLock, RunLockedError
    from mmkeras.training.trainer import train

    run_dir = tmp_path / "run"
    with RunLock(run_dir):
        with pytest.raises(RunLockedError) as caught:
            train(tiny_config(folder), run_dir=run_dir)
        assert list(run_dir.iterdir()) == [run_dir / "train.lock"]  # the refused one wrote nothing
    assert re.fullmatch(rf"{re.escape(str(run_dir))} is in use by another training \(pid {os.getpid()} on "
                        r"\S+, started [\d\-T:]+\); wait for it to finish or pass another --run-dir", str(caught.value))
    assert not (run_dir / "train.lock").exists()  # released


def test_lock_left_by_a_dead_process_does_not_block(tmp_path):
    from mmkeras.training.lock import RunLock

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "train.lock").write_text(json.dumps({"pid": int(dead.stdout), "host": "here", "started": "then"}))
    with RunLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
