"""Runs the ``Example:`` doctests in every module under ``mmkeras/``, so examples never drift.

Modules are found with ``pkgutil.walk_packages``. A module that fails to import is skipped only
when the error is a missing *optional third-party* module (reported as a skip with its name);
any other import error, including a missing ``mmkeras`` module, fails the test. NumPy prints
scalars the pre-2.0 way here (``-1.0``, not ``np.float32(-1.0)``) so examples read naturally.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import numpy as np
import pytest

import mmkeras

_WALK_ERRORS: dict[str, BaseException] = {}


def _record_walk_error(name):
    # walk_packages swallows ImportErrors of packages unless given onerror; record them instead.
    import sys

    _WALK_ERRORS[name] = sys.exc_info()[1]


def _module_names():
    names = [mmkeras.__name__]
    names += [info.name for info in pkgutil.walk_packages(mmkeras.__path__, "mmkeras.", onerror=_record_walk_error)]
    return sorted(set(names) | set(_WALK_ERRORS))


MODULE_NAMES = _module_names()


def _import(name):
    # The dev extra installs every optional dependency, so every module must import here.
    return importlib.import_module(name)


@pytest.mark.parametrize("module_name", MODULE_NAMES)
def test_docstring_examples_run(module_name):
    module = _import(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    # The finder only returns objects defined in this module, so re-exports run once, at home.
    options = np.get_printoptions()
    np.set_printoptions(legacy="1.25")
    try:
        for test in finder.find(module, module_name):
            runner.run(test, out=report.write)
    finally:
        np.set_printoptions(**options)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} docstring example(s) failed in {module_name}:\n{report.getvalue()}"
