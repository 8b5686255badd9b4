"""The wheel `make wheel` builds (what the Colab notebooks install) ships the whole package.

Building the wheel itself needs pip to fetch the build backend (setuptools >= 77, build isolation), so
without network it cannot run here; these tests check what decides the wheel's contents instead: the
Makefile target, the package list (setuptools finds only folders with an ``__init__.py``) and the
``package-data`` globs, evaluated the way setuptools evaluates them (``glob(..., recursive=True)``
under each package folder).
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mmkeras"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _shipped_data_files() -> set:
    """Files the ``package-data`` globs select, relative to the repository root."""
    shipped = set()
    for package, patterns in _pyproject()["tool"]["setuptools"]["package-data"].items():
        folder = ROOT / package.replace(".", "/")
        for pattern in patterns:
            shipped.update(Path(path).relative_to(ROOT).as_posix()
                           for path in glob.glob(str(folder / pattern), recursive=True) if os.path.isfile(path))
    return shipped


def test_make_wheel_builds_the_wheel_into_dist_without_dependencies():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    rule = re.search(r"^wheel:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE)
    assert rule, "Makefile has no `wheel:` rule"
    assert "\t$(PY) -m pip wheel --no-deps -w dist .\n" in rule.group(1)
    assert re.search(r"^PY := \$\(VENV\)/bin/python$", makefile, flags=re.MULTILINE)
    assert re.search(r"^\.PHONY:.* wheel( |$)", makefile, flags=re.MULTILINE)
    # The notebooks' install cell looks for the file name pip gives this project's wheel.
    assert _pyproject()["project"]["name"] == "mmkeras"


def test_every_folder_of_python_modules_is_a_package_setuptools_finds():
    folders = {path.parent for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts}
    missing = sorted(str(folder.relative_to(ROOT)) for folder in folders if not (folder / "__init__.py").exists())
    assert not missing, f"left out of the wheel (no __init__.py): {missing}"
    assert _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"] == ["mmkeras*"]


def test_package_data_ships_every_bundled_config_and_dataset_file():
    shipped = _shipped_data_files()
    configs = {path.relative_to(ROOT).as_posix() for path in (PACKAGE / "configs").rglob("*.yaml")}
    datasets = {path.relative_to(ROOT).as_posix() for path in (PACKAGE / "datasets" / "data").rglob("*")
                if path.is_file()}
    assert "mmkeras/configs/digits.yaml" in shipped
    assert "mmkeras/configs/fusion/gated.yaml" in shipped
    assert configs - shipped == set()
    assert datasets - shipped == set()
    sources = {path.split("/")[3] for path in shipped if path.startswith("mmkeras/datasets/data/")}
    assert sources == {"fsdd", "mnist", "noto_emoji", "speech_commands_mini"}
    assert len(datasets) > 4000  # every FSDD recording and emoji glyph, not a stray file or two
