"""Version folders of a model base: a number reserved atomically, published by one rename.

TF Serving serves the highest integer-named folder of ``BASE`` and ignores other names, so an
export builds in a hidden folder and renames it into place. Several exports may write to one
base at once (two CI jobs, a user and a cron job); each reserves its number first:

- ``BASE/.N-staging/`` is the reservation of version ``N``. It appears by a rename of a folder
  that already holds ``.lock``, locked (``flock``) by its owner, so a visible reservation is
  always locked while its owner lives. Two exports cannot both rename onto ``.N-staging``.
- a reservation whose lock is free belongs to a killed export: the next export removes it
  (renamed to ``.trash-*`` first, so only one process removes it). A live export's is kept.
- ``publish`` renames the built folder to ``BASE/N``; a version folder is never deleted to make
  room for another, except by an explicit ``overwrite`` of the same number.

Example:
    >>> import tempfile
    >>> base = Path(tempfile.mkdtemp())
    >>> with reserve_version(base) as reservation:
    ...     (reservation.staging / "model").mkdir()
    ...     reservation.publish(reservation.staging / "model").name
    '1'
    >>> with reserve_version(base) as reservation:
    ...     reservation.number, sorted(p.name for p in base.iterdir())
    (2, ['.2-staging', '1'])
    >>> sorted(p.name for p in base.iterdir()), version_dirs(base) == {1: base / "1"}
    (['1'], True)
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; reservations still work, stale ones are never removed.
    fcntl = None

LOCK_FILE = ".lock"
_RESERVED = re.compile(r"^\.(\d+)-staging$")
_NEW_PREFIX, _TRASH_PREFIX = ".new-", ".trash-"
# A ``.new-*`` folder lives for the microseconds between mkdtemp and its rename; one this old was
# left by a process killed in that gap.
ORPHAN_AGE_S = 3600
_TAKEN = (errno.EEXIST, errno.ENOTEMPTY)


def version_dirs(base) -> dict:
    """``{version: path}`` of the integer-named folders of a model base folder."""
    base = Path(base)
    if not base.is_dir():
        return {}
    return {int(p.name): p for p in base.iterdir() if p.is_dir() and p.name.isdigit()}


def reserved_versions(base) -> dict:
    """``{version: path}`` of the reservations (``.N-staging``) in ``base``, live or stale."""
    base = Path(base)
    if not base.is_dir():
        return {}
    return {int(m.group(1)): p for p in base.iterdir() if (m := _RESERVED.match(p.name))}


def _try_lock(path: Path):
    """An open descriptor holding an exclusive lock on ``path``, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _discard(base: Path, folder: Path) -> None:
    """Remove ``folder``; renamed first so that no other process reads it as a reservation meanwhile."""
    trash = base / f"{_TRASH_PREFIX}{folder.name.lstrip('.')}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        folder.rename(trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def clean_stale(base) -> list:
    """Remove what killed exports left in ``base``: unlocked reservations, old ``.new-*``, ``.trash-*``.

    Returns the names removed. A reservation held by a live process is never touched.
    """
    base = Path(base)
    removed = []
    if fcntl is None or not base.is_dir():
        return removed
    for path in base.iterdir():
        name = path.name
        if name.startswith(_TRASH_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
        elif name.startswith(_NEW_PREFIX):
            try:
                if time.time() - path.stat().st_mtime < ORPHAN_AGE_S:
                    continue
            except FileNotFoundError:
                continue
            _discard(base, path)
        elif _RESERVED.match(name):
            try:
                fd = _try_lock(path / LOCK_FILE)
            except (FileNotFoundError, NotADirectoryError):
                continue  # being removed by its owner right now
            if fd is None:
                continue  # a live export
            try:
                # The lock is on the file we opened; if the folder was replaced since, it is not ours to judge.
                if os.fstat(fd).st_ino != os.stat(path / LOCK_FILE).st_ino:
                    continue
                _discard(base, path)
            except FileNotFoundError:
                continue
            finally:
                os.close(fd)
        else:
            continue
        removed.append(name)
    return removed


class Reservation:
    """Version ``number`` of ``base``, held by this process through the locked folder ``staging``.

    A context manager: leaving it removes ``staging`` (and anything not published from it).
    """

    def __init__(self, base: Path, number: int, staging: Path, lock_fd: int | None):
        self.base, self.number, self.staging, self._lock_fd = base, number, staging, lock_fd
        self.target = base / str(number)

    def publish(self, folder, overwrite: bool = False) -> Path:
        """Rename ``folder`` (inside ``staging``) to ``BASE/N``; with ``overwrite``, the old ``BASE/N``
        is moved aside first and removed with the reservation."""
        replaced = self.staging / "replaced"
        if overwrite and self.target.exists():
            self.target.rename(replaced)
        try:
            Path(folder).rename(self.target)
        except OSError as error:
            if replaced.exists():
                replaced.rename(self.target)
            if error.errno not in _TAKEN:
                raise
            raise FileExistsError(f"{self.target} appeared while this export was written; "
                                  "export again (the next free version is chosen)") from None
        return self.target

    def release(self) -> None:
        if self.staging.exists():
            _discard(self.base, self.staging)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _new_locked_folder(base: Path) -> tuple:
    folder = Path(tempfile.mkdtemp(prefix=_NEW_PREFIX, dir=base))
    (folder / LOCK_FILE).write_text(f"{os.getpid()}\n")
    return folder, (_try_lock(folder / LOCK_FILE) if fcntl is not None else None)


def reserve_version(base, version: int | None = None, overwrite: bool = False) -> Reservation:
    """Reserve ``version`` (default: one above every existing and reserved version) of ``base``.

    Stale reservations of killed exports are removed first.

    Raises:
        ValueError: ``version`` is not an integer >= 1.
        FileExistsError: ``BASE/<version>`` exists and ``overwrite`` is false, or another live
            export holds that version.
    """
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise ValueError(f"version must be an integer >= 1 (TF Serving's folder names), got {version!r}")
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    clean_stale(base)
    if version is not None and (base / str(version)).exists() and not overwrite:
        raise FileExistsError(f"{base / str(version)} already exists; pass another version (--version) "
                              "or overwrite=True")
    folder, fd = _new_locked_folder(base)
    try:
        number = version or max([*version_dirs(base), *reserved_versions(base)], default=0) + 1
        while True:
            staging = base / f".{number}-staging"
            try:
                folder.rename(staging)
            except OSError as error:
                if error.errno not in _TAKEN:
                    raise
                if version is not None:
                    raise FileExistsError(f"version {version} of {base} is being exported by another process "
                                          f"right now ({staging})") from None
                number += 1
                continue
            if version is None and (base / str(number)).exists():
                # Another export published this number between our listing and our rename.
                staging.rename(folder)
                number += 1
                continue
            return Reservation(base, number, staging, fd)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        if fd is not None:
            os.close(fd)
        raise
