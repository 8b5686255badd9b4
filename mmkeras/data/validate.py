"""``validate``: decode every file a config's manifests reference and list the bad rows.

Each image and audio cell is checked in a parallel ``tf.data`` pass with the same checks the
pipeline uses when a row fails (``mmkeras.data.errors.diagnose_file``): the file is missing,
unreadable, empty, larger than ``max_bytes``, or not a decodable image / WAV. ``mmkeras data
validate --config CFG`` prints ``format_bad_rows(validate(cfg))`` and exits 1 if there are any.

Example:
    >>> print(format_bad_rows([BadRow("train", 17, "image", "images/a.png", "not an image")]))
    split  row  column  reason        path
    train  17   image   not an image  images/a.png
    1 bad row
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tensorflow as tf

from mmkeras.data import errors, pipeline, tfrecord
from mmkeras.data.preprocessor import Preprocessor


@dataclass(frozen=True)
class BadRow:
    """One unusable cell.

    Attributes:
        split: ``train``, ``validation`` or ``test``.
        row: 1-based data row of the manifest (the header is not counted).
        column: the feature column.
        path: the cell as written in the manifest.
        reason: one of ``missing``, ``unreadable``, ``not an image``, ``not a WAV``, ``empty``, ``too large``.
    """

    split: str
    row: int
    column: str
    path: str
    reason: str


def validate(config, splits=pipeline.SPLITS) -> list:
    """Every bad image/audio cell of the config's splits (those that are set), in row order."""
    data = pipeline.data_section(config)
    preprocessor = Preprocessor.from_config(data)
    columns = preprocessor.file_columns
    bad = []
    for split in splits:
        if not getattr(data, split) or not columns:
            continue
        rows, is_path = pipeline.row_dataset(pipeline.split_path(config, split), preprocessor)

        def check(row):
            reasons = []
            for column in columns:
                value = row[column]
                reasons.append(tf.cond(
                    tf.strings.length(value) > 0,
                    lambda v=value, f=preprocessor.features[column]: errors.diagnose_file(v, f, is_path),
                    lambda: tf.constant(errors.OK)))
            return row["_origin"], tf.stack(reasons), tf.stack([row[tfrecord.CELL_PREFIX + c] for c in columns])

        for origin, reasons, cells in rows.map(check, num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator():
            number = int(re.search(rb"row (\d+)$", origin).group(1))
            for column, reason, cell in zip(columns, reasons, cells):
                if reason:
                    bad.append(BadRow(split, number, column, cell.decode("utf-8"), reason.decode("utf-8")))
    return bad


def format_bad_rows(rows: list) -> str:
    """A plain-text table of ``rows`` with a count line ("no bad rows" when empty)."""
    if not rows:
        return "no bad rows"
    header = ("split", "row", "column", "reason", "path")
    table = [header] + [(r.split, str(r.row), r.column, r.reason, r.path) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table]
    lines.append(f"{len(rows)} bad row" + ("s" if len(rows) != 1 else ""))
    return "\n".join(lines)
