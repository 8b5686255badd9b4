"""Small real datasets bundled with mmkeras, prepared as files plus CSV manifests.

``prepare(name, to)`` writes, into the folder ``to``::

    train.csv  validation.csv  test.csv   one row per example; paths are relative to the CSV
    images/  and/or  audio/               PNG images, 16-bit PCM WAV recordings
    DATASET.md                            what it is, splits and counts, sources, licenses
    dataset.json                          the recipe (name, seed, options) and the counts

Manifest columns name their modality (``text``, ``image``, ``audio``) plus ``label``; other columns
(``speaker``, ...) are metadata. The bundled sources, with their SOURCE.md and LICENSE files, live in
``mmkeras/datasets/data/``; every prepared DATASET.md repeats that attribution text.

Preparing imports numpy and the standard library only (no TensorFlow).

Example:
    >>> import tempfile
    >>> names()
    ['avdigits', 'digits', 'emoji', 'speech_commands_mini']
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     folder = prepare("speech_commands_mini", tmp)
    ...     print(sorted(p.name for p in folder.iterdir()))
    ...     print(open(folder / "train.csv").readline().strip())
    ['DATASET.md', 'audio', 'dataset.json', 'test.csv', 'train.csv', 'validation.csv']
    audio,label,transcript,speaker,utterance,is_core_command
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
from pathlib import Path

from mmkeras.datasets import avdigits, digits, emoji, speech_commands_mini
from mmkeras.datasets._files import SPLITS, attribution_files, write_csv
from mmkeras.datasets.subsets import split_overrides, subset

_MODULES = {module.NAME: module for module in (avdigits, digits, emoji, speech_commands_mini)}
# Everything prepare() writes; re-running removes exactly these before moving the new ones in.
_OUTPUTS = ("train.csv", "validation.csv", "test.csv", "DATASET.md", "dataset.json", "images", "audio")
_RECIPE_FILE = "dataset.json"

__all__ = ["default_root", "ensure_prepared", "names", "options", "prepare", "split_overrides", "subset"]


def names() -> list[str]:
    """Names of the bundled datasets, sorted."""
    return sorted(_MODULES)


def _module(name: str):
    if name not in _MODULES:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(names())}")
    return _MODULES[name]


def options(name: str) -> dict:
    """The options ``prepare(name, ...)`` accepts besides ``seed``, mapped to their defaults.

    ``None`` means the dataset chooses (e.g. ``snr_db`` is 0 when ``hard=True``).

    Example:
        >>> options("avdigits")["hard"]
        False
    """
    parameters = inspect.signature(_module(name).build).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY and p.name != "seed"}


def default_root() -> Path:
    """Folder under which ``mmkeras demo`` prepares datasets by default: ``./data`` (absolute).

    Example:
        >>> default_root().name
        'data'
    """
    return Path.cwd() / "data"


def _check_options(name: str, given: dict) -> dict:
    # None means "not given", so the CLI can pass every flag it knows without knowing each dataset.
    given = {key: value for key, value in given.items() if value is not None}
    valid = options(name)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        listing = ", ".join(["seed", *valid]) if valid else "seed (no other options)"
        raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))} for dataset {name!r}; valid options: {listing}")
    return given


def _recipe(name: str, seed: int, given: dict) -> dict:
    # json round trip so tuples/lists and ints/floats compare the way they are stored.
    return json.loads(json.dumps({"name": name, "seed": seed, "options": given}, sort_keys=True, default=str))


def prepare(name: str, to, *, seed: int = 0, **options) -> Path:
    """Writes dataset ``name`` into folder ``to`` as files plus train/validation/test CSV manifests.

    Re-running into the same folder replaces what an earlier ``prepare`` wrote there (the CSVs,
    DATASET.md, dataset.json, ``images/``, ``audio/``) and leaves other files alone. The new files are
    written to a sibling staging folder first, so an interrupted run leaves the old dataset intact.

    Args:
        name: one of ``names()``.
        to: destination folder (created if needed).
        seed: seed of every random choice (splits, pairings, noise, synthetic text).
        **options: dataset options, see ``options(name)``; ``None`` values count as not given.

    Returns:
        The destination folder, absolute.

    Raises:
        ValueError: unknown name or option (the message lists the valid ones), an invalid option value,
            or a destination whose ``images/``/``audio/``/CSVs were not written by ``prepare``.
    """
    module = _module(name)
    given = _check_options(name, options)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, received {seed!r}")
    to = Path(to).expanduser().absolute()
    foreign = [entry for entry in _OUTPUTS if (to / entry).exists()]
    if foreign and not (to / _RECIPE_FILE).exists():
        raise ValueError(
            f"{to} already holds {', '.join(foreign)} not written by mmkeras.datasets.prepare "
            f"(no {_RECIPE_FILE}); refusing to overwrite them: choose another folder"
        )
    staging = to.parent / f".{to.name}.preparing"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        built = module.build(staging, seed=seed, **given)
        counts = {split: len(built.rows[split]) for split in SPLITS}
        for split in SPLITS:
            write_csv(staging / f"{split}.csv", list(built.columns), built.rows[split])
        (staging / "DATASET.md").write_text(_dataset_md(name, module, seed, given, built), encoding="utf-8")
        recipe = dict(_recipe(name, seed, given), counts=counts)
        (staging / _RECIPE_FILE).write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        to.mkdir(parents=True, exist_ok=True)
        for entry in _OUTPUTS:
            old = to / entry
            if old.is_dir():
                shutil.rmtree(old)
            elif old.exists():
                old.unlink()
        for new in staging.iterdir():
            new.rename(to / new.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return to


def ensure_prepared(name: str, to=None, *, seed: int = 0, **options) -> Path:
    """Prepares ``name`` into ``to`` unless it is already there, made with the same seed and options.

    Args:
        name: one of ``names()``.
        to: destination folder; defaults to ``default_root() / name``.
        seed, **options: as for ``prepare``.

    Returns:
        The destination folder, absolute.
    """
    given = _check_options(name, options)
    to = Path(default_root() / name if to is None else to).expanduser().absolute()
    recipe_file = to / _RECIPE_FILE
    if all((to / f"{split}.csv").is_file() for split in SPLITS) and recipe_file.is_file():
        stored = json.loads(recipe_file.read_text(encoding="utf-8"))
        stored.pop("counts", None)
        if stored == _recipe(name, seed, given):
            return to
    return prepare(name, to, seed=seed, **given)


def _demote_headings(markdown: str, levels: int) -> str:
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + levels) + " ", markdown, flags=re.M)


def _dataset_md(name: str, module, seed: int, given: dict, built) -> str:
    from mmkeras import __version__

    call = ", ".join([repr(name), "to", f"seed={seed}", *(f"{k}={v!r}" for k, v in sorted(given.items()))])
    lines = [
        f"# {name}: {module.SUMMARY}",
        "",
        built.about.strip(),
        "",
        "## How this folder was made",
        "",
        f"`mmkeras.datasets.prepare({call})` (mmkeras {__version__}). Running it again with the same",
        "arguments writes the same files. Paths in the CSVs are relative to the CSV.",
        "",
        "## Columns",
        "",
        "| column | meaning |",
        "|--------|---------|",
        *(f"| `{column}` | {meaning} |" for column, meaning in built.columns.items()),
        "",
        "## Splits and counts",
        "",
        "| split | rows | rows per label |",
        "|-------|------|----------------|",
    ]
    for split in SPLITS:
        per_label: dict[str, int] = {}
        for row in built.rows[split]:
            per_label[row["label"]] = per_label.get(row["label"], 0) + 1
        spread = ", ".join(f"{label}: {count}" for label, count in sorted(per_label.items()))
        lines.append(f"| {split} | {len(built.rows[split])} | {spread} |")
    lines += [
        "",
        "## Sources, attribution and licenses",
        "",
        "The text below is copied from the bundled sources (`mmkeras/datasets/data/<source>/`); it must",
        "stay with any copy of this data.",
    ]
    for source in built.sources:
        for path in attribution_files(source):
            text = path.read_text(encoding="utf-8").strip()
            lines += ["", f"### {source}/{path.name}", ""]
            if path.name == "SOURCE.md":
                lines.append(_demote_headings(text, 3))
            else:
                lines += ["```text", text, "```"]
    return "\n".join(lines) + "\n"
