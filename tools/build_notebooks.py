"""Write ``notebooks/NAME.ipynb`` from each tutorial source ``notebooks/src/NAME.py``.

A source is a plain Python script in the jupytext "percent" format (VS Code, PyCharm and jupytext open
it as a notebook), cut into cells by marker lines:

    # %% [markdown]     a markdown cell: the comment lines that follow, without their "# "
    # %%                a code cell: the lines that follow, up to the next marker

The first cell is markdown and carries the keras.io header: a ``# Title`` line, then ``**Author:**``,
``**Date created:**`` and ``**Description:**``. Adding a notebook is adding one source file. The
notebooks are written without outputs, with stable cell ids so that regenerating does not churn diffs;
``tests/notebooks`` checks that they equal what this script writes and runs each of them.

Usage:
    python tools/build_notebooks.py           # (re)write notebooks/*.ipynb
    python tools/build_notebooks.py --check   # exit 1 if a notebook differs from its source
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
SOURCE_DIR = NOTEBOOK_DIR / "src"
MARKER = re.compile(r"# %%( \[markdown\])?")
HEADER_FIELDS = ("**Author:**", "**Date created:**", "**Description:**")
METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
    "accelerator": "GPU",
    "colab": {"provenance": []},
}


def parse(text: str, name: str = "<source>") -> list[tuple[str, str]]:
    """``(kind, source)`` of each cell of a percent-format script, kind ``"markdown"`` or ``"code"``."""
    cells: list[tuple[str, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        marker = MARKER.fullmatch(line.rstrip())
        if marker:
            cells.append(("markdown" if marker.group(1) else "code", []))
        elif not cells:
            if line.strip():
                raise ValueError(f"{name}:{number}: text before the first '# %%' cell marker")
        elif cells[-1][0] == "markdown":
            if line.strip() and not line.startswith("#"):
                raise ValueError(f"{name}:{number}: a markdown cell holds comment lines only, got {line!r}")
            cells[-1][1].append(line[2:] if line.startswith("# ") else line[1:])
        else:
            cells[-1][1].append(line)
    parsed = [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells]
    empty = [index for index, (_, source) in enumerate(parsed) if not source.strip()]
    if empty:
        raise ValueError(f"{name}: cell {empty[0]} is empty")
    check_header(parsed, name)
    return parsed


def check_header(cells: list[tuple[str, str]], name: str) -> None:
    if not cells or cells[0][0] != "markdown" or not cells[0][1].startswith("# "):
        raise ValueError(f"{name}: the first cell must be markdown starting with '# Title'")
    missing = [field for field in HEADER_FIELDS if field not in cells[0][1]]
    if missing:
        raise ValueError(f"{name}: the header cell lacks {', '.join(missing)}")


def render(source: Path) -> str:
    """The notebook file's text for ``source``, as written to disk."""
    notebook = nbformat.v4.new_notebook(metadata=METADATA)
    new_cell = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    for number, (kind, text) in enumerate(parse(source.read_text(encoding="utf-8"), source.name)):
        notebook.cells.append(new_cell[kind](text, id=f"cell-{number:02d}"))
    return nbformat.writes(notebook) + "\n"


def sources() -> list[Path]:
    return sorted(SOURCE_DIR.glob("*.py"))


def notebook_path(source: Path) -> Path:
    return NOTEBOOK_DIR / f"{source.stem}.ipynb"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook differs from its source")
    args = parser.parse_args(argv)
    stale = []
    for source in sources():
        path, text = notebook_path(source), render(source)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if args.check:
            stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    orphans = sorted({p.name for p in NOTEBOOK_DIR.glob("*.ipynb")} - {notebook_path(s).name for s in sources()})
    if orphans:
        print(f"notebooks without a source in {SOURCE_DIR.relative_to(ROOT)}: {', '.join(orphans)}")
    if stale:
        print(f"out of date (run python tools/build_notebooks.py): {', '.join(stale)}")
    return 1 if stale or orphans else 0


if __name__ == "__main__":
    sys.exit(main())
