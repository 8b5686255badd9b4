"""The tutorial notebooks match their sources, carry no outputs, and run top to bottom with small settings.

``notebooks/src/NAME.py`` is the source of ``notebooks/NAME.ipynb``; ``tools/build_notebooks.py``
converts it. Each notebook is executed with nbclient in a fresh ``python3`` kernel, with
``MMKERAS_NOTEBOOK_SMALL=1`` and one working folder for the whole session. The first notebook test
starts every notebook the session selected, concurrently (``MMKERAS_NOTEBOOK_JOBS`` kernels at a time,
default: the number of CPU cores, at least 2); each test then checks its own notebook. The bundled
datasets the notebooks use are prepared in the working folder before any kernel starts, so that no
two notebooks prepare one folder at once. Under pytest-xdist, which spreads the tests over processes
already, each test runs its own notebook.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 300
# Folder under WORKDIR/data -> (bundled dataset, options): what the notebooks' ensure_prepared calls ask for.
DATASETS = {
    "digits": ("digits", {}),
    "avdigits_theo": ("avdigits", {"holdout_speakers": ["theo"]}),
    "emoji": ("emoji", {}),
    "speech_commands_mini": ("speech_commands_mini", {}),
}

pytestmark = pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
    reason="the notebooks are executed in the TensorFlow pass only",
)


def _converter():
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "tools" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_notebook_is_generated_from_its_source_unchanged():
    converter = _converter()
    assert [source.stem for source in converter.sources()] == [path.stem for path in NOTEBOOKS]
    stale = [path.name for path in NOTEBOOKS
             if path.read_text(encoding="utf-8") != converter.render(converter.SOURCE_DIR / f"{path.stem}.py")]
    assert not stale, f"regenerate with `python tools/build_notebooks.py`: {stale}"


def test_the_converter_cuts_cells_at_percent_markers():
    source = ("# %% [markdown]\n# # Title\n#\n# **Author:** a<br>\n# **Date created:** 2026/01/01<br>\n"
              "# **Description:** b.\n\n# %%\nimport os\n\n\nprint(os.sep)  # a comment stays code\n\n"
              "# %% [markdown]\n# ## Setup\n#\n#    indented\n")
    assert _converter().parse(source) == [
        ("markdown", "# Title\n\n**Author:** a<br>\n**Date created:** 2026/01/01<br>\n**Description:** b."),
        ("code", "import os\n\n\nprint(os.sep)  # a comment stays code"),
        ("markdown", "## Setup\n\n   indented"),
    ]


def test_the_converter_names_the_file_and_line_of_a_malformed_source():
    parse = _converter().parse
    header = "# %% [markdown]\n# # T\n# **Author:** a **Date created:** b **Description:** c\n"
    with pytest.raises(ValueError, match=r"^x.py:1: text before the first '# %%' cell marker$"):
        parse("import os\n# %%\n", "x.py")
    with pytest.raises(ValueError, match=r"^x.py:5: a markdown cell holds comment lines only, got 'text'$"):
        parse(header + "# %% [markdown]\ntext\n", "x.py")
    with pytest.raises(ValueError, match=r"^x.py: the header cell lacks \*\*Date created:\*\*$"):
        parse("# %% [markdown]\n# # T\n# **Author:** a **Description:** c\n", "x.py")
    with pytest.raises(ValueError, match=r"^x.py: cell 1 is empty$"):
        parse(header + "# %%\n\n", "x.py")


def test_notebooks_have_no_outputs_and_start_with_the_colab_install_cell():
    import nbformat

    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(not cell.outputs and cell.execution_count is None for cell in code), path.name
        assert '"google.colab" in sys.modules' in code[0].source, path.name


def _install_cell() -> str:
    """The first code cell, the same in every notebook (checked here)."""
    import nbformat

    cells = {path.name: next(cell.source for cell in nbformat.read(path, as_version=4).cells
                             if cell.cell_type == "code") for path in NOTEBOOKS}
    assert len(set(cells.values())) == 1, f"the Colab install cells differ: {sorted(cells)}"
    return next(iter(cells.values()))


def _run_install_cell(monkeypatch, folder: Path) -> list:
    """Run the install cell as on Colab, in ``folder``; returns the commands it ran."""
    import subprocess
    import sys
    import types

    commands = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda command, check: commands.append(command))
    monkeypatch.chdir(folder)
    exec(compile(_install_cell(), "install cell", "exec"), {})
    return commands


def test_the_colab_install_cell_installs_the_newest_uploaded_wheel(tmp_path, monkeypatch):
    import sys

    monkeypatch.delenv("MMKERAS_WHEEL", raising=False)
    (tmp_path / "dist").mkdir()
    # Newest by time, not by name: a fresh upload into dist/ wins over an older one beside it.
    for age, name in ((200, "mmkeras-0.0.9-py3-none-any.whl"), (100, "dist/mmkeras-0.1.0-py3-none-any.whl")):
        (tmp_path / name).write_bytes(b"PK")
        os.utime(tmp_path / name, (time.time() - age, time.time() - age))
    assert _run_install_cell(monkeypatch, tmp_path) == [
        [sys.executable, "-m", "pip", "install", "-q", "dist/mmkeras-0.1.0-py3-none-any.whl"]]


def test_the_colab_install_cell_takes_the_wheel_mmkeras_wheel_names(tmp_path, monkeypatch):
    url = "https://example.org/wheels/mmkeras-0.1.0-py3-none-any.whl"
    monkeypatch.setenv("MMKERAS_WHEEL", url)
    (tmp_path / "mmkeras-0.0.1-py3-none-any.whl").write_bytes(b"PK")
    assert [command[-1] for command in _run_install_cell(monkeypatch, tmp_path)] == [url]


def test_the_colab_install_cell_says_how_to_get_a_wheel_when_there_is_none(tmp_path, monkeypatch):
    monkeypatch.delenv("MMKERAS_WHEEL", raising=False)
    with pytest.raises(FileNotFoundError, match=r"^no mmkeras wheel in .+: build one with `make wheel` in the "
                                                r"repository and upload dist/mmkeras-\*\.whl here, or set "
                                                r"MMKERAS_WHEEL to its path or URL$"):
        _run_install_cell(monkeypatch, tmp_path)


def test_the_setup_markdown_says_how_to_get_the_wheel_to_colab():
    import nbformat

    import mmkeras

    wheel = f"dist/mmkeras-{mmkeras.__version__}-py3-none-any.whl"  # the name `make wheel` gives it
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        first_code = next(index for index, cell in enumerate(cells) if cell.cell_type == "code")
        setup = cells[first_code - 1].source
        assert setup.startswith("## Setup"), path.name
        for step in ("`make wheel`", wheel, "upload", "`MMKERAS_WHEEL`"):
            assert step in setup, (path.name, step)


class Executions:
    """Executed notebooks by file name: ``(notebook, error or None, seconds)``. Asking for one that has
    not run yet runs it, together with every other selected one that has not (``batch``)."""

    def __init__(self, workdir: Path, selected: list[Path], batch: bool):
        self.workdir, self.selected, self.batch = workdir, selected, batch
        self.jobs = int(os.environ.get("MMKERAS_NOTEBOOK_JOBS", max(2, os.cpu_count() or 1)))
        self.env = dict(os.environ, MMKERAS_NOTEBOOK_SMALL="1", MMKERAS_NOTEBOOK_WORKDIR=str(workdir),
                        KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg")
        self.results: dict = {}

    def get(self, path: Path):
        from nbclient.util import run_sync

        if path.name not in self.results:
            pending = [p for p in self.selected if p.name not in self.results] if self.batch else []
            start = time.perf_counter()
            # nbclient's own helper, as in NotebookClient.execute: the same event loop on every platform.
            self.results.update(run_sync(self._run_all)(pending or [path]))
            print(f"{len(pending or [path])} notebook(s), {self.jobs} at a time: {time.perf_counter() - start:.1f} s")
        return self.results[path.name]

    async def _run_all(self, paths: list[Path]) -> dict:
        slots = asyncio.Semaphore(self.jobs)
        return dict(await asyncio.gather(*(self._run(path, slots) for path in paths)))

    async def _run(self, path: Path, slots: asyncio.Semaphore):
        import nbformat
        from nbclient import NotebookClient

        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, startup_timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(self.workdir)}})
        async with slots:
            start, error = time.perf_counter(), None
            try:
                await client.async_execute(env=self.env)
            except Exception as failure:  # CellExecutionError names the cell; a dead kernel or timeout too
                error = failure
            seconds = time.perf_counter() - start
        nbformat.write(notebook, self.workdir / path.name)  # the executed copy, for reading its outputs
        print(f"{path.name} ran in {seconds:.1f} s")
        return path.name, (notebook, error, seconds)


def _recipes(workdir: Path) -> dict:
    """When each prepared dataset was last (re)written."""
    return {path.parent.name: path.stat().st_mtime_ns for path in (workdir / "data").glob("*/dataset.json")}


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    from mmkeras import datasets

    folder = tmp_path_factory.mktemp("notebooks")
    for name, (dataset, options) in DATASETS.items():
        datasets.ensure_prepared(dataset, folder / "data" / name, **options)
    return folder


@pytest.fixture(scope="session")
def prepared(workdir):
    return _recipes(workdir)


@pytest.fixture(scope="session")
def executions(workdir, prepared, request):
    selected = {item.callspec.params["path"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_notebook_runs_with_small_settings"}
    return Executions(workdir, sorted(selected), batch="PYTEST_XDIST_WORKER" not in os.environ)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_with_small_settings(path, executions, workdir, prepared):
    notebook, error, _ = executions.get(path)
    if error is not None:
        raise error
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert not errors
    assert _recipes(workdir) == prepared, ("a notebook prepared a dataset itself: add it to DATASETS, so that "
                                           "it is ready before notebooks running at the same time ask for it")
