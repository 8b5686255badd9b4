"""Experiment configs that ship with mmkeras, loadable by name: ``mmkeras train --config digits``.

A name is the file's path in this folder without ``.yaml``: ``digits``, ``avdigits``, ``emoji``,
``speech_commands`` and the fusion comparison ``fusion/concat`` ... ``fusion/weighted_sum``. A
``--config`` value (or ``load_config`` argument) that names an existing file is that file; any other
value is looked up here, with or without ``.yaml``.

Where data paths point: a config file of your own resolves its relative manifest paths against its
own folder. A bundled config resolves them against the **current working directory** instead, never
against the installed package: ``data/digits/train.csv`` in ``digits`` means ``./data/digits/train.csv``,
so ``mmkeras train --config digits`` in an empty folder prepares ``data/digits/`` there (``data.prepare``)
and trains. The run directory records the absolute paths, so a resumed run finds the same data from
any folder.

This module imports nothing from mmkeras but its errors, so ``mmkeras.config`` can use it.

Example:
    >>> names()[:5]
    ['avdigits', 'digits', 'emoji', 'fusion/concat', 'fusion/cross_attention']
    >>> path("fusion/gated").relative_to(FOLDER).as_posix()
    'fusion/gated.yaml'
    >>> locate("digits.yaml") == path("digits") == locate("digits")
    True
    >>> manifest_base(str(path("digits"))) == Path.cwd()
    True
    >>> manifest_base("/experiments/mine.yaml").as_posix()
    '/experiments'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from mmkeras.errors import ConfigError

FOLDER = Path(__file__).resolve().parent
SUFFIX = ".yaml"

__all__ = ["FOLDER", "is_bundled", "locate", "manifest_base", "names", "path"]


def names() -> list[str]:
    """Names of the bundled configs, sorted (``fusion/<name>`` for the fusion comparison)."""
    return sorted(file.relative_to(FOLDER).with_suffix("").as_posix() for file in FOLDER.rglob(f"*{SUFFIX}"))


def path(name: str) -> Path:
    """The file of bundled config ``name`` (``.yaml`` optional).

    Raises:
        ConfigError: no bundled config has that name; the message lists the names.
    """
    stem = name.removesuffix(SUFFIX)
    if stem not in names():
        raise ConfigError(f"{name!r} is not a bundled config; bundled configs: {', '.join(names())}")
    return FOLDER / f"{stem}{SUFFIX}"


def locate(value: Union[str, os.PathLike]) -> Path:
    """The file a ``--config`` value means: the path as given when something exists there (the
    loader reports a folder or an unreadable file), else the bundled config of that name.

    Raises:
        ConfigError: neither; the message names the value and lists the bundled configs.
    """
    given = Path(value)
    if given.exists():
        return given
    if given.as_posix().removesuffix(SUFFIX) in names():
        return path(given.as_posix())
    raise ConfigError(f"config file {value} does not exist, and it is not a bundled config name "
                      f"({', '.join(names())})")


def is_bundled(file: Union[str, os.PathLike]) -> bool:
    """Whether ``file`` is one of the configs in this folder."""
    return Path(file).resolve() in {FOLDER / f"{name}{SUFFIX}" for name in names()}


def manifest_base(source: Optional[str]) -> Path:
    """The folder a config's relative manifest paths resolve against: the working directory for a
    bundled config (or a config built in memory, ``source=None``), else the config file's folder."""
    if source is None or is_bundled(source):
        return Path.cwd()
    return Path(source).parent
