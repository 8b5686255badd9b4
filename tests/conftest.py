"""Shared pytest fixtures: a fixed seed and a clean global dtype policy for every test."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import pytest

# `from tests.harness import ...` must work under a plain `pytest` too (which, unlike
# `python -m pytest`, does not put the repository root on sys.path).
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


@pytest.fixture(autouse=True)
def _seed_and_restore_dtype_policy():
    """Seed Python/NumPy/backend RNGs with 0 and put back the global dtype policy afterwards."""
    keras.utils.set_random_seed(0)
    policy = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(policy)


@pytest.fixture(scope="session")
def tiny_presets(tmp_path_factory) -> dict:
    """Tiny BERT / ViT / Whisper KerasHub presets saved to disk once per session (tests/presets.py)."""
    from tests.presets import make_presets

    return make_presets(tmp_path_factory.mktemp("presets"))


# Under pytest-xdist (`make test` runs `-n auto --dist loadgroup`), tests that share an expensive
# module- or session-scoped fixture (a trained run, an export) go to one worker, which builds it
# once, instead of every worker building its own copy. The notebooks are left spread out: each is
# a kernel of its own, and one worker running all of them would be the slowest.
_SPREAD = ("tests", "tests/notebooks/test_notebooks.py")


def _shared_fixture_home(item) -> str | None:
    homes = sorted({defs[-1].baseid for defs in item._fixtureinfo.name2fixturedefs.values()
                    if defs and defs[-1].scope in ("module", "session") and defs[-1].baseid
                    and defs[-1].baseid.startswith("tests") and defs[-1].baseid not in _SPREAD})
    return homes[0] if homes else None  # a conftest folder sorts before the modules inside it


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups into the node ids
def pytest_collection_modifyitems(config, items):
    for item in items:
        home = _shared_fixture_home(item)
        if home is not None:
            item.add_marker(pytest.mark.xdist_group(name=home))
