"""One training per run directory: ``RUN/train.lock``, held with ``flock`` while ``train()`` runs.

The kernel releases an ``flock`` when its process dies, however it dies (SIGKILL included), so a
lock left by a killed run never blocks the rerun that resumes it; only a live process refuses a
second one. The file holds the holder's pid, host and start time, for the refusal message.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with RunLock(folder):
    ...     try:
    ...         RunLock(folder).acquire()
    ...     except RunLockedError as error:
    ...         print(str(error).split(" (")[0].endswith("is in use by another training"))
    True
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

LOCK_NAME = "train.lock"


class RunLockedError(RuntimeError):
    """Another live training holds the run directory."""


class RunLock:
    """``flock`` on ``run_dir/train.lock``; use as a context manager or ``acquire``/``release``."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._descriptor = None

    def acquire(self) -> "RunLock":
        """Take the lock, or raise ``RunLockedError`` naming the directory and the holder."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        while True:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = self._holder()
                os.close(descriptor)
                raise RunLockedError(
                    f"{self.run_dir} is in use by another training ({holder}); wait for it to finish or "
                    "pass another --run-dir"
                ) from None
            # The holder before us may have unlinked the file between our open and our flock: then
            # we hold a lock on a name nobody else will open, so start again on the current file.
            try:
                same = os.stat(self.path).st_ino == os.fstat(descriptor).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(descriptor)
        os.ftruncate(descriptor, 0)
        os.write(descriptor, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                         "started": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode())
        self._descriptor = descriptor
        return self

    def _holder(self) -> str:
        try:
            holder = json.loads(self.path.read_text())
            return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "a process that has not written its pid yet"

    def release(self) -> None:
        """Remove the file and drop the lock (unlinking first, while still holding it)."""
        if self._descriptor is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._descriptor)
        self._descriptor = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()
