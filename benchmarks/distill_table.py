"""Distillation table: a teacher, a small student distilled from it, and the same student alone.

For each seed (``train.seed`` = ``data.seed``) this trains the bundled ``--dataset`` config as the
teacher (every label, ``--teacher-set`` overrides), then for each ``data.label_fraction`` in
``--fractions``: the student (``--student-set``: narrower encoders and fusion) distilled from that
teacher with ``mmkeras.distill`` (default ``distill`` settings: T = 4, alpha = 0.7, raw teacher; with
a fraction below 1 it also reads the unlabelled train rows, soft term only), the same distillation on
the labelled rows only (``distill.unlabelled=false``, fractions below 1), and the same student trained
alone with ``mmkeras.train``: with the config's epochs (it sees only the labelled rows, so fewer steps)
and, for fractions below 1, with epochs / fraction (about as many optimizer steps as distilled). Every run
is measured by ``mmkeras.evaluation.comparison.measure_run``: parameters, SavedModel MB (the TF Serving
version folder), ``serving_default`` raw-bytes p50 latency at batch 1 (``--calls`` calls on test rows),
test accuracy and ECE of the calibrated distribution. One markdown table per fraction, mean ± sample
std over seeds, with the command that made it.

    .venv/bin/python benchmarks/distill_table.py --json benchmarks/results/distill_table.json
    .venv/bin/python benchmarks/distill_table.py --seeds 1 --epochs 1 --fractions 1.0   # a quick look

With ``--json FILE`` each finished run is appended to FILE at once and runs already there are not trained
again (an interrupted table resumes; a finished one only re-renders).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
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

STUDENT = ("model.encoders.text.embedding_dim=16;"
           "model.encoders.image={type: conv2d, filters: [16, 32], pooling: average, units: 32};"
           "model.fusion={type: concat, output_dim: 32}")
ROWS = (("teacher", "teacher (every label)"), ("distilled", "student, distilled"),
        ("distilled-labelled", "student, distilled on the labelled rows only"), ("alone", "student alone"),
        ("alone-steps", "student alone, epochs / fraction (as many steps as distilled)"))
#: Rows trained only for a label fraction below 1 (with every label they repeat another row).
PARTIAL_ONLY = ("distilled-labelled", "alone-steps")
COLUMNS = (("parameters", "parameters"), ("savedmodel_mb", "SavedModel MB"), ("p50_ms", "batch-1 p50 ms"),
           ("accuracy", "test accuracy"), ("ece", "ECE"))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="emoji")
    parser.add_argument("--fractions", default="1.0,0.1", help="data.label_fraction values of the student")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's own")
    parser.add_argument("--teacher-set", default="", help="';'-separated overrides of the teacher")
    parser.add_argument("--student-set", default=STUDENT, help="';'-separated overrides of the student")
    parser.add_argument("--calls", type=int, default=30, help="timed batch-1 serving calls per run")
    parser.add_argument("--work", default="/tmp/mmkeras-distill", help="datasets and run folders go here")
    parser.add_argument("--json", default=None, help="results file (appended as runs finish)")
    return parser.parse_args(argv)


def _overrides(text: str) -> list[str]:
    return [item.strip() for item in text.split(";") if item.strip()]


def run_one(args, name: str, fraction: float, seed: int) -> dict:
    """Train (or distil) one row's run for ``seed`` and measure it."""
    import keras

    import mmkeras
    from mmkeras.evaluation.comparison import measure_run

    common = [f"train.seed={seed}", f"data.seed={seed}", "train.verbose=0"]
    common += [f"train.epochs={args.epochs}"] if args.epochs else []
    runs = Path(args.work) / "runs" / args.dataset / f"seed{seed}"
    teacher_dir = runs / "teacher"
    student = [*common, *_overrides(args.student_set), f"data.label_fraction={fraction}"]
    with defaults_table.working_folder(Path(args.work)):
        if name == "teacher":
            run = mmkeras.train(mmkeras.load_config(args.dataset, common + _overrides(args.teacher_set)),
                                run_dir=teacher_dir)
        elif name.startswith("alone"):
            config = mmkeras.load_config(args.dataset, student)
            if name == "alone-steps":
                config = mmkeras.apply_overrides(config, [f"train.epochs={round(config.train.epochs / fraction)}"])
            run = mmkeras.train(config, run_dir=runs / f"{name}-{fraction:g}", overwrite=True)
        else:
            extra = ["distill.unlabelled=false"] if name == "distilled-labelled" else []
            run = mmkeras.distill(mmkeras.load_config(args.dataset, student + extra), teacher_dir,
                                  runs / f"{name}-{fraction:g}", overwrite=True)
        row = measure_run(run.run_dir, "test", args.calls)
    keras.backend.clear_session()
    return {"name": name, "fraction": fraction, "seed": seed, "train_seconds": run.status().get("train_seconds"),
            "epochs": run.status().get("epochs_done"), **row}


def key(name: str, fraction: float, seed: int) -> str:
    return json.dumps([name, 1.0 if name == "teacher" else float(fraction), seed])


def tables(results: dict, fractions: list, seeds: int) -> list[str]:
    """``results``: ``{key: row}`` -> markdown lines, one table per student label fraction."""
    lines = []
    for fraction in fractions:
        lines += ["", f"**student with data.label_fraction {fraction:g}** (teacher on every label; test split; "
                  f"mean ± std over {seeds} seed(s))", "",
                  "| run | " + " | ".join(title for _, title in COLUMNS) + " | train s |",
                  "|---|" + "---:|" * (len(COLUMNS) + 1)]
        for name, label in ROWS:
            runs = [results[k] for k in (key(name, fraction, s) for s in range(seeds)) if k in results]
            if not runs:
                continue
            cells = [f"{runs[0]['parameters']:,}" if column == "parameters" else
                     defaults_table.mean_std([r[column] for r in runs]) for column, _ in COLUMNS]
            seconds = defaults_table.mean_std([r["train_seconds"] or 0.0 for r in runs]).split(" ")[0]
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {float(seconds):.0f} |")
    return lines


def main(argv=None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    command = " ".join([".venv/bin/python", "benchmarks/distill_table.py",
                        *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    print(f"command: {command}", flush=True)
    store = Path(args.json) if args.json else None
    done = json.loads(store.read_text())["runs"] if store and store.exists() else {}
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    fractions = [float(f) for f in args.fractions.split(",")]
    for seed in range(args.seeds):
        for fraction in fractions:
            for name, _ in ROWS:
                if (name in PARTIAL_ONLY and fraction >= 1) or key(name, fraction, seed) in done:
                    continue
                started = time.perf_counter()
                done[key(name, fraction, seed)] = row = run_one(args, name, fraction, seed)
                print(f"  seed {seed} fraction {fraction:g} {name}: accuracy {row['accuracy']:.3f}, "
                      f"{row['parameters']:,} parameters ({time.perf_counter() - started:.0f} s)", flush=True)
                if store:
                    store.parent.mkdir(parents=True, exist_ok=True)
                    store.write_text(json.dumps({"command": command, "runs": done}, indent=1))
    print("\n".join([f"\nCommand: `{command}`", f"{os.cpu_count()} logical CPUs, load average {load} at start",
                     *tables(done, fractions, args.seeds)]), flush=True)


if __name__ == "__main__":
    main()
