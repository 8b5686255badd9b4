"""A run directory: everything one training run leaves behind, in one documented layout.

```
RUN/
  config.yaml         the resolved config (manifest paths absolute)
  run.json            status (training | complete | failed, with the failure), backend, strategy,
                      replicas, epochs done, versions
  preprocessor/       the adapted Preprocessor (vocabularies, statistics, class names)
  best.keras          best model by validation loss (written atomically: temp file, then rename)
  last.keras          model after the last epoch
  backup/             training state at each epoch end and every few steps (deleted when complete)
  train.lock          held while a training runs here (a second one is refused)
  logs/               TensorBoard event files (train/, validation/)
  training_log.csv    one row per epoch (appended across resumes)
  history.json        the same as JSON
  report.json, report.md, *.png   after `mmkeras evaluate`
```

Example:
    >>> run = Run("/tmp/some-run")
    >>> run.best_model.name
    'best.keras'
    >>> run.failure_message({"status": "failed", "failure": {"reason": "the loss became nan"}})
    '/tmp/some-run is a failed run (the loss became nan); its model is not usable: train it again'
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

from mmkeras.training.atomic import write_text_atomically


class RunFailedError(RuntimeError):
    """Training stopped without a usable model (the loss became NaN); the message names epoch and step.

    ``failure`` is what run.json records about it: ``reason`` (a short phrase) and the message.
    """

    def __init__(self, message: str, failure: dict | None = None):
        super().__init__(message)
        self.failure = {"message": message, **(failure or {})}


@dataclass
class Run:
    """Paths of a run directory and its small JSON status file."""

    run_dir: Path

    def __post_init__(self):
        self.run_dir = Path(self.run_dir)

    config_file = property(lambda self: self.run_dir / "config.yaml")
    status_file = property(lambda self: self.run_dir / "run.json")
    preprocessor_dir = property(lambda self: self.run_dir / "preprocessor")
    best_model = property(lambda self: self.run_dir / "best.keras")
    best_head_weights = property(lambda self: self.run_dir / "best_head.weights.h5")
    last_model = property(lambda self: self.run_dir / "last.keras")
    backup_dir = property(lambda self: self.run_dir / "backup")
    log_dir = property(lambda self: self.run_dir / "logs")
    csv_log = property(lambda self: self.run_dir / "training_log.csv")
    history_file = property(lambda self: self.run_dir / "history.json")
    lock_file = property(lambda self: self.run_dir / "train.lock")

    def status(self) -> dict:
        """The contents of run.json ({} for a run that never started)."""
        if not self.status_file.exists():
            return {}
        try:
            return json.loads(self.status_file.read_text())
        except ValueError as error:
            raise ValueError(f"{self.status_file} is not valid JSON ({error}); delete it to let the run "
                             "resume from its backup") from None

    def update_status(self, **values) -> dict:
        status = self.status() | values | {"updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomically(self.status_file, json.dumps(status, indent=2))
        return status

    @property
    def complete(self) -> bool:
        return self.status().get("status") == "complete"

    def failure_message(self, status: dict | None = None) -> str | None:
        """Why this run's model must not be used (None unless run.json says ``failed``)."""
        status = self.status() if status is None else status
        if status.get("status") != "failed":
            return None
        failure = status.get("failure", {})
        reason = failure.get("reason", failure.get("message", "see run.json"))
        return f"{self.run_dir} is a failed run ({reason}); its model is not usable: train it again"

    def model_path(self) -> Path:
        """The model to evaluate or export: the best checkpoint, else the last one.

        Raises ``RunFailedError`` for a failed run (evaluate and export both come through here).
        """
        refusal = self.failure_message()
        if refusal:
            raise RunFailedError(refusal)
        for path in (self.best_model, self.last_model):
            if path.exists():
                return path
        if self.status().get("kind") == "pretrain":
            raise FileNotFoundError(f"{self.run_dir} is a pretraining run (mmkeras pretrain), not a classifier: "
                                    "train one from it with model.init_from, or query it with mmkeras retrieve")
        raise FileNotFoundError(f"{self.run_dir} holds no trained model (best.keras / last.keras); train first")

    def epoch_rows(self) -> list[dict]:
        """Rows of training_log.csv as dicts of floats (epoch as int)."""
        if not self.csv_log.exists():
            return []
        with open(self.csv_log, newline="") as handle:
            rows = list(csv.DictReader(handle))
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""} for row in rows]


def software_versions() -> dict:
    """The versions run.json records: mmkeras, TensorFlow, Keras, Python."""
    import sys

    import keras
    import tensorflow as tf

    import mmkeras

    return {"mmkeras": mmkeras.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "python": sys.version.split()[0]}


def read_run_backend(run_dir) -> str | None:
    """The backend that trained ``run_dir`` (None when unknown); raises if the folder is not a run."""
    run = Run(run_dir)
    if not run.run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run.run_dir} does not exist")
    if not run.config_file.exists():
        raise FileNotFoundError(f"{run.run_dir} is not an mmkeras run (no config.yaml)")
    return run.status().get("backend")
