"""A run directory: everything one training run leaves behind, in one documented layout.

```
RUN/
  config.yaml         the resolved config (manifest paths absolute)
  run.json            status, backend, strategy, replicas, epochs done, versions
  preprocessor/       the adapted Preprocessor (vocabularies, statistics, class names)
  best.keras          best model by validation loss
  last.keras          model after the last epoch
  backup/             BackupAndRestore state (deleted when training completes)
  logs/               TensorBoard event files (train/, validation/)
  training_log.csv    one row per epoch (appended across resumes)
  history.json        the same as JSON
  report.json, report.md, *.png   after `mmkeras evaluate`
```

Example:
    >>> run = Run("/tmp/some-run")
    >>> run.best_model.name
    'best.keras'
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path


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
    last_model = property(lambda self: self.run_dir / "last.keras")
    backup_dir = property(lambda self: self.run_dir / "backup")
    log_dir = property(lambda self: self.run_dir / "logs")
    csv_log = property(lambda self: self.run_dir / "training_log.csv")
    history_file = property(lambda self: self.run_dir / "history.json")

    def status(self) -> dict:
        """The contents of run.json ({} for a run that never started)."""
        if not self.status_file.exists():
            return {}
        return json.loads(self.status_file.read_text())

    def update_status(self, **values) -> dict:
        status = self.status() | values | {"updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.status_file.write_text(json.dumps(status, indent=2))
        return status

    @property
    def complete(self) -> bool:
        return self.status().get("status") == "complete"

    def model_path(self) -> Path:
        """The model to evaluate or export: the best checkpoint, else the last one."""
        for path in (self.best_model, self.last_model):
            if path.exists():
                return path
        raise FileNotFoundError(f"{self.run_dir} holds no trained model (best.keras / last.keras); train first")

    def epoch_rows(self) -> list[dict]:
        """Rows of training_log.csv as dicts of floats (epoch as int)."""
        if not self.csv_log.exists():
            return []
        with open(self.csv_log, newline="") as handle:
            rows = list(csv.DictReader(handle))
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""} for row in rows]


def read_run_backend(run_dir) -> str | None:
    """The backend that trained ``run_dir`` (None when unknown); raises if the folder is not a run."""
    run = Run(run_dir)
    if not run.run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run.run_dir} does not exist")
    if not run.config_file.exists():
        raise FileNotFoundError(f"{run.run_dir} is not an mmkeras run (no config.yaml)")
    return run.status().get("backend")
