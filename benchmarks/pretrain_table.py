"""Pretraining table: retrieval before/after contrastive pretraining, and label efficiency with it.

For each bundled config in ``--datasets`` (default ``emoji``: image-text, ``avdigits``: image-audio) and
each of ``--seeds`` seeds (``train.seed`` = ``data.seed``), this runs ``mmkeras.pretrain`` on the train
split (no labels; ``pretrain`` section defaults unless ``--pretrain-epochs``), records recall@1/5/10 on the
test split before and after, then fine-tunes the shipped config with ``data.label_fraction`` in
``--fractions`` (default 0.1 and 1.0), from scratch and with ``model.init_from`` the pretraining run, and
evaluates test accuracy and macro-F1 (``mmkeras.evaluate_run``, attribution and robustness off).

    .venv/bin/python benchmarks/pretrain_table.py --json benchmarks/results/pretrain_table.json
    .venv/bin/python benchmarks/pretrain_table.py --datasets emoji --seeds 1 --pretrain-epochs 2 --epochs 1

With ``--json FILE`` each finished step is stored at once and not run again (an interrupted table resumes).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
import defaults_table  # noqa: E402  (beside this file: working_folder, mean_std)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="emoji,avdigits")
    parser.add_argument("--fractions", default="0.1,1.0", help="data.label_fraction values")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--loss", default="siglip", choices=["siglip", "clip"])
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="default: the pretrain section's")
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs; default: each config's own")
    parser.add_argument("--work", default="/tmp/mmkeras-pretrain", help="datasets and run folders go here")
    parser.add_argument("--json", default=None, help="results file (written as steps finish)")
    return parser.parse_args(argv)


def pretrain_one(args, dataset: str, seed: int) -> dict:
    import keras

    import mmkeras

    overrides = [f"pretrain.loss={args.loss}", f"train.seed={seed}", f"data.seed={seed}", "train.verbose=0"]
    if args.pretrain_epochs:
        overrides.append(f"pretrain.epochs={args.pretrain_epochs}")
    run_dir = Path(args.work) / "runs" / dataset / f"pretrain-seed{seed}"
    with defaults_table.working_folder(Path(args.work)):
        run = mmkeras.pretrain(mmkeras.load_config(dataset, overrides), run_dir, overwrite=True)
    report = json.loads((run.run_dir / "pretrain_report.json").read_text())
    keras.backend.clear_session()
    directions = {k: v for k, v in report.items() if "->" in k}
    return {"run_dir": str(run_dir), "retrieval": directions, "retrieval_at_init": report["retrieval_at_init"],
            "pretrain_seconds": run.status()["train_seconds"], "epochs": run.status()["epochs_done"]}


def finetune_one(args, dataset: str, seed: int, fraction: float, init_from) -> dict:
    import keras

    import mmkeras

    overrides = [f"data.label_fraction={fraction}", f"train.seed={seed}", f"data.seed={seed}", "train.verbose=0"]
    if init_from:
        overrides.append(f"model.init_from={init_from}")
    if args.epochs:
        overrides.append(f"train.epochs={args.epochs}")
    run_dir = Path(args.work) / "runs" / dataset / f"finetune-{fraction:g}-{'pre' if init_from else 'scratch'}-{seed}"
    with defaults_table.working_folder(Path(args.work)):
        run = mmkeras.train(mmkeras.load_config(dataset, overrides), run_dir=run_dir, overwrite=True)
        report = mmkeras.evaluate_run(run.run_dir, attribution=False, robustness=False)
    seconds = run.status()["train_seconds"]
    keras.backend.clear_session()
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "train_seconds": seconds}


def tables(results: dict, args) -> list[str]:
    mean_std = defaults_table.mean_std
    lines = []
    for dataset, seeds in results.items():
        pre = [s["pretrain"] for s in seeds.values() if "pretrain" in s]
        if pre:
            directions = list(pre[0]["retrieval"])
            lines += ["", f"**{dataset}**: test-split retrieval, {len(pre)} seed(s), {pre[0]['epochs']} pretraining "
                      f"epochs ({args.loss})", "", "| direction | queries | " + " | ".join(
                          f"R@{k} init | R@{k} pretrained" for k in (1, 5, 10)) + " |", "|---|---|" + "---|---|" * 3]
            for d in directions:
                cells = [mean_std([p[stage][d][f"recall@{k}"] for p in pre])
                         for k in (1, 5, 10) for stage in ("retrieval_at_init", "retrieval")]
                lines.append(f"| {d} | {pre[0]['retrieval'][d]['queries']} | " + " | ".join(cells) + " |")
        lines += ["", f"**{dataset}**: test accuracy / macro-F1 after fine-tuning on a fraction of the labels", "",
                  "| labels | from scratch: accuracy | pretrained: accuracy | from scratch: macro-F1 | "
                  "pretrained: macro-F1 |", "|---|---|---|---|---|"]
        for fraction in args.fraction_values:
            cells = []
            for metric in ("accuracy", "macro_f1"):
                for init in ("scratch", "pretrained"):
                    cells.append(mean_std([s[f"{fraction:g}-{init}"][metric] for s in seeds.values()
                                           if f"{fraction:g}-{init}" in s]))
            lines.append(f"| {fraction:.0%} | " + " | ".join([cells[0], cells[1], cells[2], cells[3]]) + " |")
    return lines


def main(argv=None) -> None:
    args = parse_args(argv)
    args.fraction_values = [float(f) for f in args.fractions.split(",")]
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    command = " ".join([".venv/bin/python", "benchmarks/pretrain_table.py",
                        *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    print(f"command: {command}", flush=True)
    store = Path(args.json) if args.json else None
    results = json.loads(store.read_text())["results"] if store and store.exists() else {}
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())

    def save():
        if store:
            store.parent.mkdir(parents=True, exist_ok=True)
            store.write_text(json.dumps({"command": command, "results": results}, indent=1))

    for dataset in args.datasets.split(","):
        for seed in range(args.seeds):
            done = results.setdefault(dataset, {}).setdefault(str(seed), {})
            started = time.perf_counter()
            if "pretrain" not in done or not Path(done["pretrain"]["run_dir"]).exists():
                done["pretrain"] = pretrain_one(args, dataset, seed)
                save()
            for fraction in args.fraction_values:
                for init in ("scratch", "pretrained"):
                    name = f"{fraction:g}-{init}"
                    if name not in done:
                        done[name] = finetune_one(args, dataset, seed, fraction,
                                                  done["pretrain"]["run_dir"] if init == "pretrained" else None)
                        save()
            print(f"  {dataset} seed {seed}: " + ", ".join(f"{k} {v['accuracy']:.3f}" for k, v in done.items()
                                                           if k != "pretrain") + f" ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    print("\n".join([f"\nCommand: `{command}`", f"{os.cpu_count()} logical CPUs, load average {load} at start",
                     *tables(results, args)]), flush=True)


if __name__ == "__main__":
    main()
