"""The tutorial notebooks run from top to bottom with small settings, and match their source.

Each notebook is executed with nbclient in a fresh ``python3`` kernel, with
``MMKERAS_NOTEBOOK_SMALL=1`` and a temporary working folder (shared by the notebooks of one session,
so each bundled dataset is prepared once). ``tools/build_notebooks.py`` is the source of the
notebooks: the committed ``.ipynb`` files must equal what it generates.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300

pytestmark = pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
    reason="the notebooks are executed in the TensorFlow pass only",
)


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_generated_notebook_is_in_the_repository_unchanged():
    builder = _builder()
    assert sorted(builder.NOTEBOOKS) == [path.name for path in NOTEBOOKS]
    stale = [name for name in builder.NOTEBOOKS if (ROOT / "notebooks" / name).read_text() != builder.render(name)]
    assert not stale, f"regenerate with `python tools/build_notebooks.py`: {stale}"


def test_notebooks_have_no_outputs_and_start_with_the_colab_install_cell():
    import nbformat

    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(not cell.outputs and cell.execution_count is None for cell in code), path.name
        assert '"google.colab" in sys.modules' in code[0].source, path.name


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("notebooks")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_with_small_settings(path, workdir, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("MMKERAS_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MMKERAS_NOTEBOOK_WORKDIR", str(workdir))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})
    start = time.perf_counter()
    try:
        client.execute()  # raises CellExecutionError naming the cell and the traceback
    finally:
        nbformat.write(notebook, workdir / path.name)  # the executed copy, for reading its outputs
    seconds = time.perf_counter() - start
    print(f"{path.name} ran in {seconds:.1f} s")
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert not errors
