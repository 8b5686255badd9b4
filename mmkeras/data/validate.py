"""``validate``: check every file a config's manifests reference and list the bad rows.

Each image and audio cell is checked in a parallel ``tf.data`` pass with the verdict the pipeline
and the serving signature use (``mmkeras.data.diagnosis.file_problem``): the file is missing,
unreadable, empty, over its column's limits, or not decodable, in the same words everywhere.
``mmkeras data validate --config CFG`` prints ``format_bad_rows(validate(cfg))`` and exits 1 if
there are any.

Example:
    >>> print(format_bad_rows([BadRow("train", 17, "image", "images/a.png", "does not exist")]))
    split  row  column  path          problem
    train  17   image   images/a.png  does not exist
    1 bad row
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from mmkeras.data.diagnosis import cell_problems
from mmkeras.data.preprocessor import Preprocessor
from mmkeras.data.rows import CELL_PREFIX, ROW_KEY, SPLITS, data_section, split_path


@dataclass(frozen=True)
class BadRow:
    """One unusable cell.

    Attributes:
        split: ``train``, ``validation`` or ``test``.
        row: 1-based data row of the manifest (the header is not counted).
        column: the feature column.
        path: the cell as written in the manifest.
        problem: what is wrong, the sentence that follows the file name in every message
            (``does not exist``, ``is not a PNG/JPEG/GIF/BMP/WebP image``, ...).
    """

    split: str
    row: int
    column: str
    path: str
    problem: str


def validate(config, splits=SPLITS) -> list:
    """Every bad image/audio cell of the config's splits (those that are set), in row order."""
    data = data_section(config)
    preprocessor = Preprocessor.from_data_config(data)
    columns = preprocessor.file_columns
    bad = []
    for split in splits:
        if not getattr(data, split) or not columns:
            continue
        rows, is_path = preprocessor.rows(split_path(config, split), columns=columns)

        def check(row):
            problems = cell_problems(row, preprocessor, is_path)
            return row[ROW_KEY], tf.stack([problems[c] for c in columns]), tf.stack([row[CELL_PREFIX + c] for c in columns])

        for number, problems, cells in rows.map(check, num_parallel_calls=tf.data.AUTOTUNE).as_numpy_iterator():
            for column, problem, cell in zip(columns, problems, cells):
                if problem:
                    bad.append(BadRow(split, int(number), column, cell.decode("utf-8"), problem.decode("utf-8")))
    return bad


def format_bad_rows(rows: list) -> str:
    """A plain-text table of ``rows`` with a count line ("no bad rows" when empty)."""
    if not rows:
        return "no bad rows"
    header = ("split", "row", "column", "path", "problem")
    table = [header] + [(r.split, str(r.row), r.column, r.path, r.problem) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table]
    lines.append(f"{len(rows)} bad row" + ("s" if len(rows) != 1 else ""))
    return "\n".join(lines)
