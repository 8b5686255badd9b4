"""A run's training state on disk, so that a SIGKILL at any moment loses at most a few steps.

``BackupStore`` keeps ``RUN/backup/<serial>-epoch<E>-step<S>.zip``: every model, optimizer and
metric variable (the optimizer's iteration count is what places the learning-rate schedule), as
``.npy`` members of one zip, plus ``meta.json``: the position (epoch ``E`` in progress, ``S`` of its
steps done; an epoch-end backup is ``E+1``, step 0) and the state of the callbacks that must
survive a resume (history, best val_loss, early stopping). Each file is written atomically, and the
previous one is deleted only once the next is complete; a file that fails to read (bad CRC,
truncated) falls back to the one before it, and when none reads the error names them.

Keras's ``BackupAndRestore`` restores only the epoch, so a rerun replays the interrupted epoch from
its first batch with the optimizer's step count already advanced (the cosine schedule then runs out
before the last epoch), and it writes its h5 file in place, where a kill leaves it unreadable.

Example:
    >>> import tempfile, keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> store = BackupStore(tempfile.mkdtemp())
    >>> store.save(model, {"epoch": 1, "step": 0}).name
    '000001-epoch1-step0.zip'
    >>> state = store.load()
    >>> state.position, [array.shape for array in state.arrays["trainable"]]
    ((1, 0), [(2, 1), (1,)])
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmkeras.training.atomic import remove_partials, replace_atomically

GROUPS = ("trainable", "non_trainable", "optimizer", "metrics")
KILL_ENV = "MMKERAS_TEST_KILL_AT"
_events: dict[str, int] = {}


class BackupError(RuntimeError):
    """No backup of the run can be used; the message names the file(s) and what to do."""


def kill_point(event: str) -> None:
    """Test hook: SIGKILL this process at the n-th ``event`` when ``MMKERAS_TEST_KILL_AT=event:n``.

    Events: ``backup-write`` (halfway through writing a backup), ``backup`` (a backup complete),
    ``finish`` (the last epoch trained, the run not yet marked complete). Unset, it does nothing.
    """
    wanted = os.environ.get(KILL_ENV)
    if not wanted:
        return
    _events[event] = _events.get(event, 0) + 1
    name, _, count = wanted.partition(":")
    if name == event and _events[event] == int(count or 1):
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def variable_groups(model) -> dict[str, list]:
    """The model's variables in the order the JAX trainer keeps them in its state."""
    optimizer = getattr(model, "optimizer", None)
    return {"trainable": list(model.trainable_variables), "non_trainable": list(model.non_trainable_variables),
            "optimizer": list(optimizer.variables) if optimizer is not None else [],
            "metrics": list(model.metrics_variables)}


def _to_numpy(variable) -> np.ndarray:
    import keras

    array = np.asarray(keras.ops.convert_to_numpy(keras.ops.convert_to_tensor(variable)))
    # bfloat16 (ml_dtypes) is not a NumPy dtype np.load reads back; float32 holds it exactly.
    return array.astype(np.float32) if array.dtype.kind == "V" or array.dtype.name == "bfloat16" else array


@dataclass
class SavedState:
    """One backup, read into memory."""

    path: Path
    meta: dict
    arrays: dict[str, list[np.ndarray]]

    @property
    def position(self) -> tuple[int, int]:
        """(epoch in progress, steps of it done)."""
        return int(self.meta["epoch"]), int(self.meta["step"])


def _write(path: Path, arrays: dict, meta: dict) -> None:
    members = [(f"{group}/{index:05d}.npy", array) for group in GROUPS for index, array in enumerate(arrays[group])]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.writestr("meta.json", json.dumps(meta | {"counts": {g: len(arrays[g]) for g in GROUPS}}))
        for number, (name, array) in enumerate(members):
            if number == len(members) // 2:
                archive.fp.flush()
                kill_point("backup-write")
            with archive.open(name, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(array, order="C"), allow_pickle=False)


def _read(path: Path) -> SavedState:
    with zipfile.ZipFile(path) as archive:
        meta = json.loads(archive.read("meta.json"))
        # ZipFile.read checks each member's CRC, so a damaged file fails here, not at assign time.
        arrays = {group: [np.load(io.BytesIO(archive.read(f"{group}/{index:05d}.npy")), allow_pickle=False)
                          for index in range(meta["counts"][group])] for group in GROUPS}
    return SavedState(path, meta, arrays)


class BackupStore:
    """The backups in ``folder``, newest first; ``keep`` complete files at most."""

    def __init__(self, folder, keep: int = 2):
        self.folder = Path(folder)
        self.keep = keep

    def files(self) -> list[Path]:
        """Complete backups (temp files of an interrupted write are not listed), newest first."""
        found = [path for path in self.folder.glob("*-epoch*-step*.zip") if path.name.split("-")[0].isdigit()]
        return sorted(found, key=lambda path: int(path.name.split("-")[0]), reverse=True)

    def save(self, model, meta: dict) -> Path:
        """Write the model's variables with ``meta`` (needs ``epoch`` and ``step``) as the newest backup."""
        files = self.files()
        serial = int(files[0].name.split("-")[0]) + 1 if files else 1
        path = self.folder / f"{serial:06d}-epoch{meta['epoch']}-step{meta['step']}.zip"
        arrays = {group: [_to_numpy(v) for v in variables] for group, variables in variable_groups(model).items()}
        self.folder.mkdir(parents=True, exist_ok=True)
        replace_atomically(path, lambda temp: _write(temp, arrays, meta))
        for old in self.files()[self.keep:]:
            old.unlink()
        return path

    def load(self) -> SavedState | None:
        """The newest backup that reads, None when there is none; ``BackupError`` when none reads."""
        remove_partials(self.folder)
        failures = []
        for path in self.files():
            try:
                state = _read(path)
                state.position  # noqa: B018  (a meta.json without a position is as bad as no file)
            except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as error:
                failures.append(f"{path} ({type(error).__name__}: {error})")
                continue
            if failures:
                print(f"warning: the backup {failures[0]} is unreadable; resuming from the previous one, "
                      f"{path.name}", file=sys.stderr)
            return state
        if failures:
            raise BackupError(f"no backup of this run can be read: {'; '.join(failures)}; delete {self.folder} "
                              "to train the run again from its first epoch")
        return None

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def restore(model, state: SavedState, groups=("trainable", "non_trainable", "optimizer")) -> None:
    """Assign ``state``'s arrays to the model's variables of ``groups`` (the model built and compiled)."""
    live = variable_groups(model)
    for group in groups:
        saved, variables = state.arrays[group], live[group]
        shapes = [tuple(v.shape) for v in variables]
        if shapes != [array.shape for array in saved]:
            raise BackupError(
                f"the backup {state.path} does not fit this model: its {len(saved)} {group} variables differ "
                f"from the model's {len(variables)} in number or shape, so the config changed since it was "
                f"written; train in another --run-dir, or delete {state.path.parent} to start this one again"
            )
        for variable, array in zip(variables, saved):
            variable.assign(array)


def build_and_restore(model, state: SavedState, element_spec, scope) -> None:
    """Build what ``fit`` would build at its first step (the optimizer's slots, the compiled
    metrics) from the training batches' ``element_spec``, inside the strategy's ``scope``, then
    restore ``state`` into it. TensorFlow without a strategy scope builds them only when it traces
    the first step, too late to restore before it."""
    with scope():
        model._symbolic_build(data_batch=element_spec)
    restore(model, state)
