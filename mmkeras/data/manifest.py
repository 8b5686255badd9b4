"""Read CSV and JSONL manifests: one row per example, file paths relative to the manifest.

A manifest is a ``.csv`` file with a header row, or a ``.jsonl`` file with one JSON object per
line. Every path goes through ``tf.io.gfile``, so ``gs://`` and other TensorFlow filesystem URIs
work as well as local paths. Cells are strings; an empty cell (or a JSON ``null``) is a missing
value. File cells are made absolute against the manifest's folder unless they already are
absolute or a URI.

What would lose rows or columns silently is refused, naming the file, row (or line) and column:
a header that names a column twice, an unbalanced quote that swallows the following lines into
one cell (a quoted cell may span lines only when it closes cleanly and its row is complete), and
a JSON list or object where a required column needs a string or a number.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "train.csv"), "w") as f:
    ...     _ = f.write("text,image,label\\nhello,img/a.png,cat\\n,,dog\\n")
    >>> m = read_manifest(os.path.join(folder, "train.csv"), required=["text", "label"])
    >>> len(m), m.rows[1]["text"], m.resolve("img/a.png") == os.path.join(folder, "img/a.png")
    (2, '', True)
    >>> with open(os.path.join(folder, "bad.csv"), "w") as f:
    ...     _ = f.write('text,label\\n"hello,cat\\nworld,dog\\n')
    >>> read_manifest(os.path.join(folder, "bad.csv"))
    Traceback (most recent call last):
    ...
    mmkeras.data.manifest.ManifestError: ...bad.csv row 1 (line 2), column 'text': an unbalanced quote opens this cell, so lines 2-3 were read as one cell and the rows in them are lost; remove the quote or close it (a quote inside a cell is written "")
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from dataclasses import dataclass, field
from typing import Iterable, Optional

import tensorflow as tf


class ManifestError(ValueError):
    """A manifest cannot be read or lacks a column; the message names the manifest."""


def is_uri(path: str) -> bool:
    return "://" in path


def join_path(base_dir: str, path: str) -> str:
    """``path`` made absolute against ``base_dir`` unless it already is absolute or a URI."""
    if not path or is_uri(path) or path.startswith("/"):
        return path
    if is_uri(base_dir):
        return posixpath.join(base_dir, path)
    return posixpath.normpath(posixpath.join(base_dir, path))


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class Manifest:
    """The rows of one manifest file.

    Attributes:
        path: the manifest file (as given).
        columns: column names in file order.
        rows: one ``{column: str}`` dict per data row ("" = missing).
    """

    path: str
    columns: list
    rows: list
    #: ``{column: where}`` for a JSONL value that is a list or an object (first one per column).
    bad_values: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The manifest's file name, used in error messages (``train.csv``)."""
        return posixpath.basename(self.path.rstrip("/"))

    @property
    def base_dir(self) -> str:
        return posixpath.dirname(self.path)

    def __len__(self) -> int:
        return len(self.rows)

    def resolve(self, cell: str) -> str:
        """A file cell made absolute against the manifest's folder ("" stays "")."""
        return join_path(self.base_dir, cell)

    def column(self, name: str) -> list:
        return [row[name] for row in self.rows]

    def require(self, columns: Iterable[str]) -> None:
        """Fail naming the manifest and the missing column, listing the present ones."""
        for column in columns:
            if column not in self.columns:
                raise ManifestError(
                    f"{self.path}: column {column!r} is missing; present columns: "
                    + ", ".join(self.columns)
                )
            if column in self.bad_values:
                raise ManifestError(self.bad_values[column])


def _check_header(path: str, columns: list) -> None:
    seen: dict = {}
    for position, column in enumerate(columns, start=1):
        if column in seen:
            raise ManifestError(
                f"{path}: column {column!r} appears twice in the header (columns {seen[column]} and "
                f"{position}); rename one, since only one of them could be read"
            )
        seen[column] = position


def _swallowed(lines: list, cells: list, columns: list) -> bool:
    """A multi-line cell that a short row or a strict re-read exposes as an unbalanced quote."""
    if len(cells) < len(columns):
        return True
    try:
        list(csv.reader(lines, strict=True))
    except csv.Error:
        return True
    return False


def _read_csv(path: str, text: str) -> tuple[list, list]:
    lines = io.StringIO(text).readlines()
    reader = csv.reader(lines)
    columns = next(reader, [])
    if not columns:
        raise ManifestError(f"{path}: empty CSV manifest (no header row)")
    _check_header(path, columns)
    rows = []
    end = reader.line_num
    while True:
        start = end + 1
        try:
            cells = next(reader, None)
        except csv.Error as error:
            raise ManifestError(f"{path} row {len(rows) + 1} (line {start}): not readable as CSV ({error}); "
                                "an unbalanced quote in this row, or lines ended by a bare carriage return, are the "
                                "usual causes") from None
        if cells is None:
            break
        end = reader.line_num
        if not cells:
            continue
        number = len(rows) + 1
        if len(cells) > len(columns):
            raise ManifestError(f"{path} row {number}: more cells than the {len(columns)} header columns")
        spanning = [i for i, cell in enumerate(cells) if "\n" in cell or "\r" in cell]
        if spanning and _swallowed(lines[start - 1:end], cells, columns):
            raise ManifestError(
                f"{path} row {number} (line {start}), column {columns[spanning[0]]!r}: an unbalanced quote "
                f"opens this cell, so lines {start}-{end} were read as one cell and the rows in them are lost; "
                'remove the quote or close it (a quote inside a cell is written "")'
            )
        rows.append({c: _cell(cells[i]) if i < len(cells) else "" for i, c in enumerate(columns)})
    return columns, rows


def _read_jsonl(path: str, text: str) -> tuple[list, list, dict]:
    columns: list = []
    records = []
    bad_values: dict = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ManifestError(f"{path} line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise ManifestError(f"{path} line {number}: expected a JSON object, got {record!r}")
        for key, value in record.items():
            if key not in columns:
                columns.append(key)
            if isinstance(value, (list, dict)) and key not in bad_values:
                kind = "a list" if isinstance(value, list) else "an object"
                bad_values[key] = (f"{path} line {number}, key {key!r}: expected a string or a number, "
                                   f"got {kind} {json.dumps(value)[:80]}")
        records.append(record)
    rows = [{c: _cell(record.get(c)) for c in columns} for record in records]
    return columns, rows, bad_values


def read_manifest(path: str, required: Optional[Iterable[str]] = None) -> Manifest:
    """Read a ``.csv`` or ``.jsonl`` manifest and check that the ``required`` columns exist.

    Args:
        path: local path or TF filesystem URI (``gs://bucket/train.csv``).
        required: column names that must be present (feature columns and the label).

    Raises:
        ManifestError: the file is missing or malformed (a column named twice in the header, an
            unbalanced quote, a line that is not JSON), a required column is absent, or a
            required JSONL key holds a list or an object.
    """
    path = str(path)
    if not tf.io.gfile.exists(path):
        raise ManifestError(f"manifest {path} does not exist")
    with tf.io.gfile.GFile(path, "r") as f:
        text = f.read()
    if text.startswith("\ufeff"):
        text = text[1:]
    lower = path.lower()
    bad_values: dict = {}
    if lower.endswith((".jsonl", ".json", ".ndjson")):
        columns, rows, bad_values = _read_jsonl(path, text)
    else:
        columns, rows = _read_csv(path, text)
    manifest = Manifest(path=path, columns=columns, rows=rows, bad_values=bad_values)
    manifest.require(required or [])
    return manifest
