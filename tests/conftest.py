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
