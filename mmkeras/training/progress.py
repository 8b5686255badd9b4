"""The callbacks that carry a run's progress across a kill and a resume.

``Position`` says where training is (epoch, and steps done in it, counting the steps a resumed
epoch started after). ``RunBackup`` saves the whole state at every epoch end and every ``every``
steps, and puts a loaded backup back at the start of ``fit``. ``EpochLog`` (history and
training_log.csv), ``BestModel`` (best.keras, written atomically) and ``ResumableEarlyStopping``
hand their state to the backup (``get_state``/``set_state``), so a resumed run logs each epoch
once and keeps its best val_loss and patience. ``DivergenceGuard`` stops a run whose loss stops
being finite, naming epoch and step.

Example:
    >>> import tempfile
    >>> log = EpochLog(Path(tempfile.mkdtemp()) / "training_log.csv")
    >>> log.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.75})
    >>> log.set_state(log.get_state())  # what a resume does: the CSV rewritten from the backup
    >>> log.csv_path.read_text().splitlines()
    ['epoch,accuracy,loss', '0,0.75,0.5']
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path

import keras

from mmkeras.training.atomic import replace_atomically, save_model_atomically, write_text_atomically
from mmkeras.training.backup import BackupStore, SavedState, kill_point, restore
from mmkeras.training.run import RunFailedError


class Position(keras.callbacks.Callback):
    """Epoch in progress and steps of it done; ``start(epoch, step)`` before each ``fit`` call."""

    def __init__(self, epochs: int, steps_per_epoch: int):
        super().__init__()
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.epoch = self.step = self.offset = 0

    def start(self, epoch: int, step: int = 0) -> None:
        self.epoch, self.step, self.offset = epoch, step, step

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.step = epoch, self.offset

    def on_train_batch_end(self, batch, logs=None):
        self.step = self.offset + batch + 1

    def on_epoch_end(self, epoch, logs=None):
        self.offset = 0


class RunBackup(keras.callbacks.Callback):
    """Backs the run up at every epoch end and every ``every`` steps. Given the ``state`` a run
    resumes from, it hands the callbacks in ``stateful`` their state at once, and the model its
    running metrics when the resumed epoch begins (Keras resets them just before); the trainer
    restores the variables (``backup.build_and_restore``).

    Place it last: at an epoch end it records what the callbacks before it did in that epoch.
    """

    def __init__(self, store: BackupStore, position: Position, *, every: int, stateful: dict,
                 state: SavedState | None = None):
        super().__init__()
        self.store, self.position, self.every, self.stateful = store, position, max(1, every), stateful
        self._pending = state
        self._last_saved = 0
        if state is not None:
            for name, callback in stateful.items():
                if name in state.meta.get("callbacks", {}):
                    callback.set_state(state.meta["callbacks"][name])

    def on_epoch_begin(self, epoch, logs=None):
        self._last_saved = self.position.step
        if self._pending is not None:
            if self._pending.position[1] > 0:  # mid-epoch: the epoch's running loss and metrics too
                restore(self.model, self._pending, ("metrics",))
            self._pending = None

    def on_train_batch_end(self, batch, logs=None):
        done = self.position.step
        if done < self.position.steps_per_epoch and done - self._last_saved >= self.every:
            self._save(self.position.epoch, done, stopped=False)
            self._last_saved = done

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1, 0, stopped=bool(self.model.stop_training))

    def _save(self, epoch: int, step: int, *, stopped: bool) -> None:
        meta = {"epoch": epoch, "step": step, "steps_per_epoch": self.position.steps_per_epoch, "stopped": stopped,
                "callbacks": {name: callback.get_state() for name, callback in self.stateful.items()}}
        self.store.save(self.model, meta)
        kill_point("backup")


def _csv_text(rows: list[dict], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n", extrasaction="ignore")
    if header:
        writer.writeheader()
    writer.writerows({k: repr(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()


class EpochLog(keras.callbacks.Callback):
    """One row per finished epoch (``epoch``, then the logs by name, with ``epoch_seconds``: its
    training steps and validation pass), kept in ``rows`` and appended to ``csv_path`` when given
    (the chief's training_log.csv)."""

    def __init__(self, csv_path: Path | None = None):
        super().__init__()
        self.csv_path = Path(csv_path) if csv_path is not None else None
        self.rows: list[dict] = []
        self._started = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def get_state(self) -> list[dict]:
        return [dict(row) for row in self.rows]

    def set_state(self, rows: list[dict]) -> None:
        """Start from ``rows`` (a backup's), rewriting the CSV to exactly them: an epoch logged after
        the backup was taken is trained again, and must not appear twice."""
        self.rows = [dict(row) for row in rows]
        if self.csv_path is not None:
            if self.rows:
                write_text_atomically(self.csv_path, _csv_text(self.rows, header=True))
            elif self.csv_path.exists():
                self.csv_path.unlink()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self._started is not None:
            logs["epoch_seconds"] = round(time.perf_counter() - self._started, 4)
        row = {"epoch": int(epoch), **{k: float(v) for k, v in sorted(logs.items())}}
        self.rows.append(row)
        if self.csv_path is not None:
            new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
            with open(self.csv_path, "a", newline="") as handle:
                handle.write(_csv_text([{k: row.get(k, "") for k in self.rows[0]}], header=new))


class BestModel(keras.callbacks.Callback):
    """Saves the model to ``path`` (atomically) whenever ``val_loss`` improves on the best so far.

    ``weights_path``: when the model being fit is the head of a frozen-backbone cache, only its
    weights are written there (a frozen backbone can be hundreds of MB); the trainer writes the full
    ``best.keras`` from them once, at the end (``best_weights_path``).
    """

    def __init__(self, path: Path, weights_path: Path | None = None):
        super().__init__()
        self.path = Path(path)
        self.best: float | None = None
        self.weights_path = weights_path

    def get_state(self) -> dict:
        return {"best": self.best}

    def set_state(self, state: dict) -> None:
        self.best = state.get("best")

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_loss")
        if value is None or not math.isfinite(float(value)):
            return
        if self.best is None or float(value) < self.best:
            if self.weights_path is not None:
                replace_atomically(self.weights_path, lambda temp: self.model.save_weights(temp))
            else:
                save_model_atomically(self.model, self.path)
            self.best = float(value)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """``EarlyStopping`` on ``val_loss`` whose patience count survives a resume and a second ``fit``
    (Keras resets it in ``on_train_begin``)."""

    def __init__(self, patience: int):
        super().__init__(monitor="val_loss", mode="min", patience=patience, restore_best_weights=False)
        self._carried = None

    def get_state(self) -> dict:
        best = None if self.best is None else float(self.best)
        return {"wait": int(self.wait), "best": best, "best_epoch": int(self.best_epoch)}

    def set_state(self, state: dict) -> None:
        self._carried = dict(state)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._carried:
            self.wait, self.best, self.best_epoch = (self._carried[k] for k in ("wait", "best", "best_epoch"))

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._carried = self.get_state()


class DivergenceGuard(keras.callbacks.Callback):
    """Raises ``RunFailedError`` as soon as the training loss (or, at an epoch end, the validation
    loss) is NaN or infinite, naming the epoch and step; place it before the callbacks that save."""

    def __init__(self, position: Position):
        super().__init__()
        self.position = position

    def _check(self, logs, key: str, where: str) -> None:
        value = (logs or {}).get(key)
        if value is None or math.isfinite(float(value)):
            return
        what = "validation loss" if key.startswith("val_") else "loss"
        reason = f"the {what} became {float(value)} at {where}"
        raise RunFailedError(
            f"training diverged: {reason}; lower train.learning_rate (or raise train.warmup_epochs) and "
            "train again", {"reason": reason, "epoch": self.position.epoch + 1, "step": self.position.step})

    def on_train_batch_end(self, batch, logs=None):
        position = self.position
        self._check(logs, "loss", f"epoch {position.epoch + 1}/{position.epochs}, "
                                  f"step {position.step}/{position.steps_per_epoch}")

    def on_epoch_end(self, epoch, logs=None):
        where = f"the end of epoch {epoch + 1}/{self.position.epochs}"
        self._check(logs, "loss", where)
        self._check(logs, "val_loss", where)
