"""Defaults table: the encoder choices of every bundled config, measured on its own dataset.

For each bundled dataset config (``digits``, ``avdigits``, ``emoji``, ``speech_commands``) and each modality
subset that matters (all columns; each column alone; image + audio for ``digits``), this trains every encoder
variant listed in ``VARIANTS`` with the config's own epochs, batch size and optimizer, through the public API
(``mmkeras.load_config(name, overrides)``, ``mmkeras.train``, ``mmkeras.evaluate_run``), with several seeds
(``train.seed`` and ``data.seed``), and prints a markdown table of test accuracy (mean ± sample std over
seeds), training seconds and parameters. A variant is nothing but ``--set`` overrides: a column is dropped
with ``data.features.<column>=null`` and an encoder is replaced whole (``model.encoders.image={type: conv2d,
pooling: flatten}``), so every row names exactly what it trained whatever the shipped defaults are. The
``shipped`` column marks the row whose encoders equal what the config ships today (factory defaults filled
in), so rerunning with ``--json`` after a change of defaults re-renders the table at no cost.

Bundled configs resolve their data paths against the working folder, so each training runs with the working
folder set to ``--work`` (datasets are prepared there on first use; run folders go to ``WORK/runs`` and are
deleted after evaluation unless ``--keep-runs``).

    .venv/bin/python benchmarks/defaults_table.py --json /tmp/defaults.json          # 3 seeds, every row
    .venv/bin/python benchmarks/defaults_table.py --quick                             # 1 seed, 1 epoch, 4 rows
    .venv/bin/python benchmarks/defaults_table.py --datasets emoji --subsets image --seeds 2

With ``--json FILE`` each finished training is appended to FILE at once, and runs already in FILE (same
dataset, subset, variant, seed and epochs) are not trained again: an interrupted run resumes, and a finished
one only re-renders the table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: import this checkout's mmkeras
    sys.path.insert(0, str(ROOT))

IMAGE_AVERAGE = {"type": "conv2d", "pooling": "average"}
IMAGE_FLATTEN = {"type": "conv2d", "pooling": "flatten"}
AUDIO = {name: {"type": name} for name in ("lstm", "crnn", "conv1d")}
TEXT = {name: {"type": name} for name in ("embedding", "conv1d")}


def _combos(image=(), audio=(), text=()) -> list[dict]:
    """Encoder assignments ``{column: settings}``; each argument lists one column's candidates."""
    out = [{}]
    for column, candidates in (("text", text), ("image", image), ("audio", audio)):
        if candidates:
            out = [{**combo, column: dict(c)} for combo in out for c in candidates]
    return out


# (config, subset) -> the encoder assignments trained for it. Single-column subsets try every candidate;
# multi-column subsets try the old defaults, then the stronger image pooling with each audio encoder
# (the full product would double the cost for combinations the single-column rows already rule out).
_AV = [{"image": IMAGE_AVERAGE, "audio": AUDIO["lstm"]}] + _combos([IMAGE_FLATTEN], AUDIO.values())
VARIANTS = {
    ("digits", "all"): [{"text": TEXT["embedding"], **combo} for combo in _AV],
    ("digits", "text"): _combos(text=[TEXT["embedding"]]),
    ("digits", "image"): _combos(image=[IMAGE_AVERAGE, IMAGE_FLATTEN]),
    ("digits", "audio"): _combos(audio=AUDIO.values()),
    ("digits", "image+audio"): _AV,
    ("avdigits", "all"): _AV,
    ("avdigits", "image"): _combos(image=[IMAGE_AVERAGE, IMAGE_FLATTEN]),
    ("avdigits", "audio"): _combos(audio=AUDIO.values()),
    ("emoji", "all"): _combos([IMAGE_AVERAGE, IMAGE_FLATTEN], text=[TEXT["embedding"]])
                      + _combos([IMAGE_FLATTEN], text=[TEXT["conv1d"]]),
    ("emoji", "text"): _combos(text=TEXT.values()),
    ("emoji", "image"): _combos(image=[IMAGE_AVERAGE, IMAGE_FLATTEN]),
    ("speech_commands", "all"): _combos(audio=AUDIO.values()),
}
DATASETS = ("digits", "avdigits", "emoji", "speech_commands")
QUICK = {("digits", "all"): VARIANTS[("digits", "all")][:2], ("digits", "image+audio"): _AV[:2]}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default=None, help=f"comma-separated, from {', '.join(DATASETS)} (default all)")
    parser.add_argument("--subsets", default=None,
                        help="comma-separated subsets to keep (all, text, image, audio, image+audio; default all of them)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per row (default 3; 1 with --quick)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override train.epochs (default: each config's own; 1 with --quick)")
    parser.add_argument("--work", default="/tmp/mmkeras_defaults_table",
                        help="working folder: datasets are prepared here, run folders go to WORK/runs")
    parser.add_argument("--json", default=None, help="results file: appended after every run, reused when rerun")
    parser.add_argument("--keep-runs", action="store_true", help="keep each run folder after evaluation")
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, 1 epoch, digits only: old defaults vs flatten pooling, with and without text")
    args = parser.parse_args(argv)
    args.seeds = args.seeds or (1 if args.quick else 3)
    args.epochs = args.epochs or (1 if args.quick else None)
    grid = QUICK if args.quick else VARIANTS
    datasets = args.datasets.split(",") if args.datasets else list(DATASETS)
    subsets = args.subsets.split(",") if args.subsets else None
    for name in datasets:
        if name not in DATASETS:
            parser.error(f"--datasets: unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    args.grid = {key: rows for key, rows in grid.items()
                 if key[0] in datasets and (subsets is None or key[1] in subsets)}
    if not args.grid:
        parser.error(f"--datasets {args.datasets} --subsets {args.subsets} selects no row; "
                     f"rows: {', '.join(f'{d}/{s}' for d, s in grid)}")
    return args


# ------------------------------------------------------------------------------ one row
def subset_overrides(dataset: str, subset: str) -> list[str]:
    """``data.features.<column>=null`` for every column of the config outside ``subset``."""
    import mmkeras

    columns = list(mmkeras.load_config(dataset).data.features)
    keep = columns if subset == "all" else subset.split("+")
    return [f"data.features.{c}=null" for c in columns if c not in keep]


def encoder_overrides(encoders: dict) -> list[str]:
    return [f"model.encoders.{column}={json.dumps(settings)}" for column, settings in encoders.items()]


def variant_label(encoders: dict) -> str:
    parts = []
    for column, settings in encoders.items():
        extra = ", ".join(f"{k}: {v}" for k, v in settings.items() if k != "type")
        parts.append(f"{column} `{settings['type']}`" + (f" ({extra})" if extra else ""))
    return "; ".join(parts)


def resolved_encoders(config) -> dict:
    """``{column: settings}`` the model factory would build, with every factory default filled in."""
    from mmkeras import registry
    from mmkeras.encoders import DEFAULT_ENCODERS, ENCODER_KINDS
    from mmkeras.encoders.base import settings_of

    out = {}
    for column, feature in config.data.features.items():
        given = dict(config.model.encoders.get(column) or {})
        name = given.pop("type", DEFAULT_ENCODERS[feature.modality])
        defaults = settings_of(registry.get(ENCODER_KINDS[feature.modality], name))
        merged = {**defaults, **given}
        out[column] = {"type": name, **{k: list(v) if isinstance(v, tuple) else v for k, v in merged.items()}}
    return out


def is_shipped(dataset: str, subset: str, encoders: dict) -> bool:
    import mmkeras

    drops = subset_overrides(dataset, subset)
    shipped = resolved_encoders(mmkeras.load_config(dataset, drops))
    return shipped == resolved_encoders(mmkeras.load_config(dataset, drops + encoder_overrides(encoders)))


@contextlib.contextmanager
def working_folder(path: Path):
    previous = os.getcwd()
    path.mkdir(parents=True, exist_ok=True)
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def train_one(args, dataset: str, subset: str, encoders: dict, seed: int) -> dict:
    import keras

    import mmkeras

    overrides = subset_overrides(dataset, subset) + encoder_overrides(encoders)
    overrides += [f"train.seed={seed}", f"data.seed={seed}", "train.verbose=0"]
    if args.epochs:
        overrides.append(f"train.epochs={args.epochs}")
    slug = "_".join(f"{c}-{'-'.join(str(v) for v in s.values())}" for c, s in encoders.items())
    run_dir = Path(args.work) / "runs" / dataset / subset.replace("+", "_") / slug / f"seed{seed}"
    with working_folder(Path(args.work)):
        config = mmkeras.load_config(dataset, overrides)
        run = mmkeras.train(config, run_dir=run_dir, overwrite=True)
        report = mmkeras.evaluate_run(run.run_dir, attribution=False, robustness=False)
    status = run.status()
    keras.backend.clear_session()
    if not args.keep_runs:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {"dataset": dataset, "subset": subset, "encoders": encoders, "seed": seed,
            "epochs": config.train.epochs, "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "train_seconds": status["train_seconds"], "parameters": status["parameters"],
            "overrides": overrides}


def run_key(result: dict) -> str:
    return json.dumps([result["dataset"], result["subset"], result["encoders"], result["seed"], result["epochs"]],
                      sort_keys=True)


# ------------------------------------------------------------------------------ the table
def mean_std(values) -> str:
    import numpy as np

    values = np.asarray(values, dtype=float)
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.3f} ± {std:.3f}"


def table(rows: list[tuple]) -> list[str]:
    """``rows``: ``(dataset, subset, encoders, runs, shipped)``; the best mean per dataset/subset is bold."""
    import numpy as np

    best = {}
    for dataset, subset, _, runs, _ in rows:
        if runs:
            score = float(np.mean([r["accuracy"] for r in runs]))
            best[(dataset, subset)] = max(best.get((dataset, subset), score), score)
    lines = ["| config | modalities | encoders | seeds | test accuracy | train s | parameters | shipped |",
             "|---|---|---|---|---|---|---|---|"]
    for dataset, subset, encoders, runs, shipped in rows:
        if not runs:
            continue
        accuracy = mean_std([r["accuracy"] for r in runs])
        if float(np.mean([r["accuracy"] for r in runs])) == best[(dataset, subset)]:
            accuracy = f"**{accuracy}**"
        seconds = float(np.mean([r["train_seconds"] for r in runs]))
        lines.append(f"| {dataset} | {subset} | {variant_label(encoders)} | {len(runs)} | {accuracy} | "
                     f"{seconds:.0f} | {runs[0]['parameters']:,} | {'yes' if shipped else ''} |")
    return lines


def environment(args) -> list[str]:
    import keras
    import tensorflow as tf

    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    epochs = f"train.epochs={args.epochs}" if args.epochs else "each config's own epochs, batch size and optimizer"
    return [f"{os.cpu_count()} logical CPUs, {platform.machine()}, no GPU, load average {load} at start; "
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}; {epochs}; seeds 0..{args.seeds - 1} "
            "(train.seed = data.seed); test accuracy of the run's best.keras (by validation loss) from "
            "mmkeras.evaluate_run; train s = run.json train_seconds"]


def main(argv=None) -> None:
    args = parse_args(argv)
    # Keras's notes on tf.data inputs (shuffle ignored, input ran out at the epoch end) repeat once per run.
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    command = " ".join([".venv/bin/python", "benchmarks/defaults_table.py",
                        *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    print(f"command: {command}", flush=True)
    store = Path(args.json) if args.json else None
    done = {}
    if store and store.exists():
        for result in json.loads(store.read_text())["runs"]:
            done[run_key(result)] = result
    rows = []
    for (dataset, subset), variants in args.grid.items():
        for encoders in variants:
            runs = []
            for seed in range(args.seeds):
                probe = {"dataset": dataset, "subset": subset, "encoders": encoders, "seed": seed}
                epochs = args.epochs or _config_epochs(dataset)
                key = run_key({**probe, "epochs": epochs})
                if key not in done:
                    started = time.perf_counter()
                    done[key] = train_one(args, dataset, subset, encoders, seed)
                    print(f"  {dataset} {subset} {variant_label(encoders)} seed {seed}: accuracy "
                          f"{done[key]['accuracy']:.3f}, train {done[key]['train_seconds']:.0f} s "
                          f"({time.perf_counter() - started:.0f} s with evaluation)", flush=True)
                    if store:
                        store.parent.mkdir(parents=True, exist_ok=True)
                        store.write_text(json.dumps({"command": command, "runs": list(done.values())}, indent=1))
                runs.append(done[key])
            rows.append((dataset, subset, encoders, runs, is_shipped(dataset, subset, encoders)))
    print("\n" + "\n".join([f"Command: `{command}`", "", *environment(args), "", *table(rows)]), flush=True)


def _config_epochs(dataset: str) -> int:
    import mmkeras

    return mmkeras.load_config(dataset).train.epochs


if __name__ == "__main__":
    main()
