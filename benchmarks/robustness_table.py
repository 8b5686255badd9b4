"""Robustness table: accuracy with only some modalities present, with and without modality dropout.

For each bundled config in ``--datasets`` (default ``digits`` and ``avdigits``) and each
``model.modality_dropout`` in ``--dropouts`` (default 0 and 0.3), this trains the shipped config with
``--seeds`` seeds (``train.seed`` = ``data.seed``) through the public API and evaluates it with
``mmkeras.evaluate_run`` (robustness on, attribution off). It prints one markdown table: test accuracy
(mean ± sample std over seeds) for every subset of present modalities (the others missing through
their presence flags, as serving sees a request with empty inputs), and the calibration temperature
and ECE before / after.

    .venv/bin/python benchmarks/robustness_table.py --json benchmarks/results/robustness_table.json
    .venv/bin/python benchmarks/robustness_table.py --datasets avdigits --seeds 1 --epochs 1   # a quick look

With ``--json FILE`` each finished run is appended to FILE at once and runs already there are not trained
again (an interrupted table resumes; a finished one only re-renders).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import shutil
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
_spec = importlib.util.spec_from_file_location("defaults_table", ROOT / "benchmarks" / "defaults_table.py")
defaults_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(defaults_table)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,avdigits")
    parser.add_argument("--dropouts", default="0.0,0.3", help="model.modality_dropout values")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="default: each config's own")
    parser.add_argument("--work", default="/tmp/mmkeras-robustness", help="datasets and run folders go here")
    parser.add_argument("--json", default=None, help="results file (appended as runs finish)")
    parser.add_argument("--keep-runs", action="store_true")
    return parser.parse_args(argv)


def train_one(args, dataset: str, dropout: float, seed: int) -> dict:
    import keras

    import mmkeras

    overrides = [f"model.modality_dropout={dropout}", f"train.seed={seed}", f"data.seed={seed}", "train.verbose=0"]
    if args.epochs:
        overrides.append(f"train.epochs={args.epochs}")
    run_dir = Path(args.work) / "runs" / dataset / f"dropout{dropout}" / f"seed{seed}"
    with defaults_table.working_folder(Path(args.work)):
        config = mmkeras.load_config(dataset, overrides)
        run = mmkeras.train(config, run_dir=run_dir, overwrite=True)
        report = mmkeras.evaluate_run(run.run_dir, attribution=False)
    seconds = run.status()["train_seconds"]
    keras.backend.clear_session()
    if not args.keep_runs:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {"dataset": dataset, "dropout": dropout, "seed": seed, "epochs": config.train.epochs,
            "subsets": report["robustness"]["subsets"], "noise": report["robustness"]["noise"],
            "calibration": report["calibration"], "train_seconds": seconds}


def key(dataset, dropout, seed, epochs) -> str:
    return json.dumps([dataset, float(dropout), seed, epochs])


def table(groups: dict) -> list[str]:
    """``groups``: ``{(dataset, dropout): [results]}`` -> markdown lines, one table per dataset."""
    lines = []
    for dataset in dict.fromkeys(d for d, _ in groups):
        rows = {dropout: runs for (d, dropout), runs in groups.items() if d == dataset and runs}
        subsets = list(next(iter(rows.values()))[0]["subsets"])
        lines += ["", f"**{dataset}** (test split; accuracy with only these modalities present)", "",
                  "| modality_dropout | seeds | " + " | ".join(subsets) + " | T | ECE before | ECE after |",
                  "|---|---|" + "---|" * (len(subsets) + 3)]
        for dropout, runs in rows.items():
            cells = [defaults_table.mean_std([r["subsets"][s] for r in runs]) for s in subsets]
            calibration = [defaults_table.mean_std([r["calibration"][k] for r in runs])
                           for k in ("temperature", "ece_before", "ece_after")]
            lines.append(f"| {dropout:g} | {len(runs)} | " + " | ".join(cells + calibration) + " |")
    return lines


def main(argv=None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    command = " ".join([".venv/bin/python", "benchmarks/robustness_table.py",
                        *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    print(f"command: {command}", flush=True)
    store = Path(args.json) if args.json else None
    done = {}
    if store and store.exists():
        done = {key(r["dataset"], r["dropout"], r["seed"], r["epochs"]): r for r in json.loads(store.read_text())["runs"]}
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    groups = {}
    for dataset in args.datasets.split(","):
        epochs = args.epochs or defaults_table._config_epochs(dataset)
        for dropout in (float(d) for d in args.dropouts.split(",")):
            runs = groups.setdefault((dataset, dropout), [])
            for seed in range(args.seeds):
                name = key(dataset, dropout, seed, epochs)
                if name not in done:
                    started = time.perf_counter()
                    done[name] = train_one(args, dataset, dropout, seed)
                    print(f"  {dataset} dropout {dropout:g} seed {seed}: {done[name]['subsets']} "
                          f"({time.perf_counter() - started:.0f} s)", flush=True)
                    if store:
                        store.parent.mkdir(parents=True, exist_ok=True)
                        store.write_text(json.dumps({"command": command, "runs": list(done.values())}, indent=1))
                runs.append(done[name])
    print("\n".join([f"\nCommand: `{command}`", f"{os.cpu_count()} logical CPUs, load average {load} at start",
                     *table(groups)]), flush=True)


if __name__ == "__main__":
    main()
