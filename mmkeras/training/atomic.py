"""Writes that a kill or a full disk cannot leave half done: a temp file, fsync, then a rename.

``replace_atomically(path, write)`` lets ``write`` fill a hidden temp file beside ``path`` (same
folder, so the rename stays on one filesystem, where POSIX makes it atomic) and only then renames it
over ``path``: a reader sees the old file or the new one, never a truncated one. A failed write
removes its temp file and keeps the previous ``path``; a full disk is reported in one sentence
naming the file.

Example:
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "note.txt"
    >>> replace_atomically(target, lambda temp: temp.write_text("done"))
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('done', ['note.txt'])
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable

PARTIAL = ".partial-"


class WriteError(RuntimeError):
    """A file of the run could not be written (full disk, no permission); the message names it."""


def partial_path(path: Path) -> Path:
    """The temp name ``path`` is written under: hidden, unique to this process, same suffixes (Keras
    insists on ``.keras`` and ``.weights.h5``)."""
    base, dot, suffixes = path.name.partition(".")
    return path.with_name(f".{base}{PARTIAL}{os.getpid()}{dot}{suffixes}")


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError:  # some filesystems (and directories on some platforms) refuse fsync
        pass
    finally:
        os.close(descriptor)


def _explain(error: OSError, path: Path) -> WriteError:
    kept = "the previous copy is kept" if path.exists() else "nothing was written"
    if error.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(error):
        return WriteError(f"no space left on the device to write {path} ({kept}); free some space and run the "
                          "same command again to continue from the last backup")
    return WriteError(f"could not write {path} ({kept}): {error.strerror or error}")


def replace_atomically(path, write: Callable[[Path], object]) -> None:
    """Run ``write(temp_path)``, make it durable, then rename it to ``path``.

    Raises:
        WriteError: the write failed with an ``OSError`` (``ENOSPC``: one sentence naming ``path``).
    """
    path = Path(path)
    temp = partial_path(path)
    try:
        write(temp)
        _fsync(temp)
        os.replace(temp, path)
        _fsync(path.parent)
    except OSError as error:
        raise _explain(error, path) from None
    finally:
        if temp.exists():
            temp.unlink()


def write_text_atomically(path, text: str) -> None:
    """``Path(path).write_text(text)``, atomically."""
    replace_atomically(path, lambda temp: temp.write_text(text))


def save_model_atomically(model, path) -> None:
    """``model.save(path)`` (a ``.keras`` file), atomically: a kill or a full disk leaves the previous
    file, never a truncated one."""
    replace_atomically(path, lambda temp: model.save(temp))


def remove_partials(folder) -> list[Path]:
    """Delete the temp files that killed processes left in ``folder``; returns what was removed.

    Only call this while holding the run's lock: a live writer's temp file looks the same.
    """
    folder = Path(folder)
    removed = [path for path in folder.glob(f".*{PARTIAL}*") if path.is_file()] if folder.is_dir() else []
    for path in removed:
        path.unlink()
    return removed
