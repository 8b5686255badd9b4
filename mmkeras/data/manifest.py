"""Read CSV and JSONL manifests: one row per example, file paths relative to the manifest.

A manifest is a ``.csv`` file with a header row, or a ``.jsonl`` file with one JSON object per
line. Every path goes through ``tf.io.gfile``, so ``gs://`` and other TensorFlow filesystem URIs
work as well as local paths. Cells are strings; an empty cell (or a JSON ``null``) is a missing
value. File cells are made absolute against the manifest's folder unless they already are
absolute or a URI.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "train.csv"), "w") as f:
    ...     _ = f.write("text,image,label\\nhello,img/a.png,cat\\n,,dog\\n")
    >>> m = read_manifest(os.path.join(folder, "train.csv"), required=["text", "label"])
    >>> len(m), m.rows[1]["text"], m.resolve("img/a.png") == os.path.join(folder, "img/a.png")
    (2, '', True)
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
from dataclasses import dataclass
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


def _read_csv(path: str, text: str) -> tuple[list, list]:
    reader = csv.DictReader(io.StringIO(text))
    columns = list(reader.fieldnames or [])
    if not columns:
        raise ManifestError(f"{path}: empty CSV manifest (no header row)")
    rows = []
    for number, row in enumerate(reader, start=1):
        if None in row:
            raise ManifestError(
                f"{path} row {number}: more cells than the {len(columns)} header columns"
            )
        rows.append({c: _cell(row.get(c)) for c in columns})
    return columns, rows


def _read_jsonl(path: str, text: str) -> tuple[list, list]:
    columns: list = []
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ManifestError(f"{path} line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise ManifestError(f"{path} line {number}: expected a JSON object, got {record!r}")
        for key in record:
            if key not in columns:
                columns.append(key)
        records.append(record)
    rows = [{c: _cell(record.get(c)) for c in columns} for record in records]
    return columns, rows


def read_manifest(path: str, required: Optional[Iterable[str]] = None) -> Manifest:
    """Read a ``.csv`` or ``.jsonl`` manifest and check that the ``required`` columns exist.

    Args:
        path: local path or TF filesystem URI (``gs://bucket/train.csv``).
        required: column names that must be present (feature columns and the label).

    Raises:
        ManifestError: the file is missing or malformed, or a required column is absent.
    """
    path = str(path)
    if not tf.io.gfile.exists(path):
        raise ManifestError(f"manifest {path} does not exist")
    with tf.io.gfile.GFile(path, "r") as f:
        text = f.read()
    if text.startswith("\ufeff"):
        text = text[1:]
    lower = path.lower()
    if lower.endswith((".jsonl", ".json", ".ndjson")):
        columns, rows = _read_jsonl(path, text)
    else:
        columns, rows = _read_csv(path, text)
    manifest = Manifest(path=path, columns=columns, rows=rows)
    manifest.require(required or [])
    return manifest
