"""Fusion results table: every registered fusion vs single-modality baselines on real avdigits data.

For each variant of ``avdigits`` (``clean``: original MNIST pixels + FSDD recordings; ``hard``: occluded,
noisy images + audio at 0 dB SNR), with the held-out speaker(s) as the test split, this trains

- every fusion in ``mmkeras.registry.names("fusion")`` on image + audio, and
- ``image_only`` / ``audio_only``: the same encoder and softmax head, built from a config whose
  ``data.features`` holds one column (the model factory still puts a fusion between encoder and head;
  here ``concat`` over one vector, i.e. one Dense layer),

for a fixed number of epochs and several seeds, and writes a markdown table (mean +- sample std over
seeds of test accuracy and macro-F1, parameters, training wall and CPU time, and the CPU time's ratio to
``concat``'s), followed by sentences computed from the table (best single modality, which fusions beat it).

Cost: each variant's train and test splits are decoded ONCE through the real mmkeras pipeline
(``fit_preprocessor`` adapted on train, ``build_dataset(..., training=False)``) and materialized as NumPy
arrays; every (method, seed) then trains from memory with the real ``build_model``, ``build_optimizer``
and ``build_loss``. No augmentation, no validation-based selection: the model after the last epoch is
evaluated on the test split with ``mmkeras.evaluation.metrics.classification_metrics``.

    .venv/bin/python benchmarks/fusion_table.py                           # full table -> docs/results.md
    .venv/bin/python benchmarks/fusion_table.py --quick --out /tmp/r.md   # 1 seed, 1 epoch, 3 methods
    .venv/bin/python benchmarks/fusion_table.py --methods concat,gated,image_only --variants hard --seeds 2

The table is printed (and the output file rewritten) after every method, so a partial run still shows
what it measured. A hand-written ``## Discussion`` section at the end of the output file is kept when the
file is rewritten; update it when the numbers change.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
BASE_CONFIG = ROOT / "mmkeras" / "configs" / "avdigits.yaml"
FUSION_CONFIGS = ROOT / "mmkeras" / "configs" / "fusion"
BASELINES = {"image_only": "image", "audio_only": "audio"}
VARIANTS = ("clean", "hard")
QUICK_METHODS = ("concat", "late", "image_only")

# Small encoders (keyword arguments of mmkeras/encoders/image.py::build_conv2d and
# mmkeras/encoders/speech.py::build_speech_conv1d): the table compares fusions, not encoders, and has to
# run on 2 shared CPU cores. conv1d instead of the default LSTM because a recurrent layer over 63 frames
# is several times slower on CPU for no gain in a few epochs.
ENCODERS = {
    "image": {"type": "conv2d", "filters": [16, 32], "pooling": "flatten", "units": 64},
    "audio": {"type": "conv1d", "filters": [32, 64], "kernel_size": 5},
}
FUSION_DIM = 64


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 6; 1 with --quick)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per method (default 3; 1 with --quick)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated fusion names and/or image_only, audio_only "
                             "(default: every registered fusion plus both baselines)")
    parser.add_argument("--variants", default=None, help=f"comma-separated, from {', '.join(VARIANTS)} (default both)")
    parser.add_argument("--holdout-speakers", default="theo", help="FSDD speakers held out as the test split")
    parser.add_argument("--batch-size", type=int, default=None, help="default: train.batch_size of mmkeras/configs/avdigits.yaml")
    parser.add_argument("--max-train", type=int, default=None,
                        help="train on this many rows, evenly spaced over the manifest (for smoke tests)")
    parser.add_argument("--max-test", type=int, default=None, help="likewise for the test split")
    parser.add_argument("--data-dir", default="/tmp/mmkeras_fusion_table",
                        help="where avdigits is prepared (one subfolder per variant; reused when identical)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results.md"), help="markdown file to write")
    parser.add_argument("--quick", action="store_true",
                        help=f"1 seed, 1 epoch, methods {', '.join(QUICK_METHODS)} (unless given explicitly)")
    args = parser.parse_args(argv)
    args.epochs = args.epochs or (1 if args.quick else 6)
    args.seeds = args.seeds or (1 if args.quick else 3)
    args.variants = args.variants.split(",") if args.variants else list(VARIANTS)
    for variant in args.variants:
        if variant not in VARIANTS:
            parser.error(f"--variants: unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if args.methods:
        args.methods = args.methods.split(",")
    elif args.quick:
        args.methods = list(QUICK_METHODS)
    return args


def check_methods(methods, fusions) -> list:
    valid = list(fusions) + list(BASELINES)
    for method in methods:
        if method not in valid:
            raise SystemExit(f"--methods: unknown method {method!r}; valid: {', '.join(valid)}")
    return methods


# ------------------------------------------------------------------------------ data, once per variant
def subsample_manifest(manifest: Path, limit) -> Path:
    """``limit`` rows evenly spaced over the manifest (so every class stays present), as a sibling CSV."""
    if not limit:
        return manifest
    lines = manifest.read_text().splitlines()
    rows = lines[1:]
    picked = [rows[i * len(rows) // limit] for i in range(min(limit, len(rows)))]
    out = manifest.with_name(f"{manifest.stem}_max{limit}.csv")
    out.write_text("\n".join([lines[0]] + picked) + "\n")
    return out


def variant_config(args, variant: str):
    """mmkeras/configs/avdigits.yaml pointed at the prepared variant (preparing it if needed)."""
    from mmkeras import datasets
    from mmkeras.config import load_config

    speakers = [s for s in args.holdout_speakers.split(",") if s]
    options = {"holdout_speakers": speakers, "hard": True} if variant == "hard" else {"holdout_speakers": speakers}
    folder = datasets.ensure_prepared("avdigits", Path(args.data_dir) / variant, **options)
    train = subsample_manifest(folder / "train.csv", args.max_train)
    test = subsample_manifest(folder / "test.csv", args.max_test)
    overrides = [f"data.train={train}", f"data.validation=null", f"data.test={test}", "data.cache=none",
                 "data.prepare=null", f"train.epochs={args.epochs}"]
    if args.batch_size:
        overrides.append(f"train.batch_size={args.batch_size}")
    return load_config(BASE_CONFIG, overrides), options


def materialize(config, preprocessor, split: str):
    """The split decoded through the mmkeras pipeline, as ``(features dict of arrays, label ids)``."""
    import numpy as np

    from mmkeras.data.pipeline import build_dataset

    dataset = build_dataset(config, split, preprocessor, training=False, batch_size=256, drop_remainder=False)
    batches = list(dataset.as_numpy_iterator())
    features = {key: np.concatenate([b[0][key] for b in batches]) for key in batches[0][0]}
    return features, np.concatenate([b[1] for b in batches]).astype("int64")


# ------------------------------------------------------------------------------ one run
def method_config(config, method: str):
    """The config of one table row: a fusion over both columns, or one column for a baseline."""
    import yaml

    from mmkeras.config import config_from_dict

    values = config.to_dict()
    if method in BASELINES:
        column = BASELINES[method]
        values["data"]["features"] = {column: values["data"]["features"][column]}
        values["model"]["encoders"] = {column: dict(ENCODERS[column])}
        fusion = {"type": "concat"}
    else:
        values["model"]["encoders"] = {c: dict(s) for c, s in ENCODERS.items()}
        preset = FUSION_CONFIGS / f"{method}.yaml"
        # The repository's settings for this fusion (heads, rank, projection_dim, ...) where it has them.
        fusion = dict(yaml.safe_load(preset.read_text())["model"]["fusion"]) if preset.exists() else {"type": method}
    values["model"]["fusion"] = {**fusion, "output_dim": FUSION_DIM}
    return config_from_dict(values, source=config.source)


def train_one(config, preprocessor, train, test, seed: int) -> dict:
    import keras
    import numpy as np
    from types import SimpleNamespace

    from mmkeras.evaluation.metrics import classification_metrics
    from mmkeras.models.factory import build_model
    from mmkeras.training.objective import build_loss, build_optimizer

    columns = list(config.data.features)
    # The fitted two-column preprocessor, seen through the row's config: same per-column preprocessing.
    view = SimpleNamespace(input_specs=[s for s in preprocessor.input_specs if s.column in columns],
                           num_classes=preprocessor.num_classes, class_names=preprocessor.class_names)
    keys = [k for s in view.input_specs for k in (s.column, s.presence_key)]
    (train_x, train_y), (test_x, test_y) = train, test
    train_x = {k: train_x[k] for k in keys}
    test_x = {k: test_x[k] for k in keys}
    train_config = config.train
    batch_size = train_config.batch_size
    keras.utils.set_random_seed(seed)
    model = build_model(config.model, view)
    model.compile(optimizer=build_optimizer(train_config, len(train_y) // batch_size),
                  loss=build_loss(train_config))
    one_hot = np.eye(view.num_classes, dtype="float32")[train_y]
    start, cpu_start = time.perf_counter(), time.process_time()
    # drop the last partial batch, as build_dataset does for training (steps_per_epoch = n // batch).
    usable = len(train_y) // batch_size * batch_size
    for _ in range(train_config.epochs):
        order = np.random.permutation(len(train_y))[:usable]
        model.fit({k: v[order] for k, v in train_x.items()}, one_hot[order], batch_size=batch_size,
                  epochs=1, shuffle=False, verbose=0)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    probabilities = model.predict(test_x, batch_size=256, verbose=0)
    metrics = classification_metrics(test_y, probabilities, view.class_names)
    result = {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
              "parameters": int(model.count_params()), "seconds": seconds,
              "cpu_seconds": cpu_seconds}
    keras.backend.clear_session()
    return result


# ------------------------------------------------------------------------------ the table
def mean_std(values) -> str:
    import numpy as np

    values = np.asarray(values, dtype=float)
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.3f} ± {std:.3f}"


def label(method: str) -> str:
    return {"image_only": "image only (baseline)", "audio_only": "audio only (baseline)"}.get(method, method)


def table(results: dict) -> list:
    import numpy as np

    lines = ["| method | test accuracy | test macro-F1 | parameters | train wall (s) | train CPU (s) "
             "| CPU time / concat |",
             "|---|---|---|---|---|---|---|"]
    concat = results.get("concat")
    concat_cpu = np.mean([r["cpu_seconds"] for r in concat]) if concat else None
    for method, runs in results.items():
        seconds = float(np.mean([r["seconds"] for r in runs]))
        cpu = float(np.mean([r["cpu_seconds"] for r in runs]))
        ratio = f"{cpu / concat_cpu:.2f}x" if concat_cpu else "n/a"
        lines.append(f"| {label(method)} | {mean_std([r['accuracy'] for r in runs])} | "
                     f"{mean_std([r['macro_f1'] for r in runs])} | {runs[0]['parameters']:,} | "
                     f"{seconds:.1f} | {cpu:.1f} | {ratio} |")
    return lines


def environment(args, batch_size: int, train_config) -> list:
    import keras
    import tensorflow as tf

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [
        f"- CPU: {os.cpu_count()} logical CPUs ({cores} usable by this process), {platform.machine()}, "
        f"no GPU; load average at start (1/5/15 min): {load} (the machine is shared, so absolute times are noisy; "
        "compare the ratios)",
        f"- Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__} "
        f"(backend {keras.backend.backend()})",
        f"- {args.epochs} epochs (the model after the last one is evaluated), batch size {batch_size}, {args.seeds} seed(s) (0..{args.seeds - 1}); "
        f"optimizer {train_config.optimizer}, learning rate {train_config.learning_rate} with {train_config.schedule} "
        f"decay, weight decay {train_config.weight_decay}, clipnorm {train_config.clipnorm} "
        "(mmkeras/configs/avdigits.yaml through `build_optimizer` / `build_loss`)",
        f"- encoders: image `{ENCODERS['image']}`, audio `{ENCODERS['audio']}`; fusion `output_dim` {FUSION_DIM}, "
        "other fusion settings from `mmkeras/configs/fusion/<name>.yaml`; head `softmax`",
    ]


def summary(results: dict) -> list:
    """Sentences computed from the table: best single modality, best fusion, which fusions beat it."""
    import numpy as np

    accuracy = {m: float(np.mean([r["accuracy"] for r in runs])) for m, runs in results.items()}
    baselines = {m: a for m, a in accuracy.items() if m in BASELINES}
    fusions = {m: a for m, a in accuracy.items() if m not in BASELINES}
    if not baselines or not fusions:
        return []
    base, base_acc = max(baselines.items(), key=lambda item: item[1])
    best, best_acc = max(fusions.items(), key=lambda item: item[1])
    above = sorted((m for m, a in fusions.items() if a > base_acc), key=lambda m: -fusions[m])
    below = sorted((m for m, a in fusions.items() if a <= base_acc), key=lambda m: -fusions[m])
    lines = [f"Best single modality: {label(base)}, accuracy {base_acc:.3f}. Best fusion: {best}, "
             f"{best_acc:.3f} ({best_acc - base_acc:+.3f}). {len(above)} of {len(fusions)} fusions beat the best "
             "single modality on mean accuracy"
             + (f" ({', '.join(f'{m} {fusions[m] - base_acc:+.3f}' for m in above)})" if above else "")
             + (f"; at or below it: {', '.join(f'{m} {fusions[m] - base_acc:+.3f}' for m in below)}." if below else ".")]
    return lines


DISCUSSION = "## Discussion"


def render(args, command: str, sections: dict, env: list, total_seconds=None, complete=True,
           discussion: str = "") -> str:
    lines = ["# Fusion results on avdigits", ""]
    if not complete:
        lines += ["**Partial run: the benchmark was still running (or was interrupted) when this was written.**", ""]
    lines += ["Reproduce (from the repository root):", "", "```bash", command, "```", "", "Environment:", "", *env]
    if total_seconds is not None:
        lines.append(f"- wall time of the whole run (decoding included): {total_seconds / 60:.1f} min")
    lines.append("")
    for variant, (description, results, counts) in sections.items():
        lines += [f"## {variant}: {description}", "", f"Train {counts[0]} / test {counts[1]} examples. "
                  "Mean ± sample std over seeds. Train wall / CPU: mean per run of the `fit` calls (wall clock / "
                  "CPU seconds of this process, all threads); the ratio uses CPU time, which other users of a "
                  "shared machine disturb less than wall time.", ""]
        lines += table(results) + [""] + summary(results) + [""]
    text = "\n".join(lines) + "\n"
    return text + ("\n" + discussion if discussion else "")


def describe(variant: str, options: dict) -> str:
    speakers = ", ".join(options["holdout_speakers"])
    if variant == "hard":
        return (f"`prepare('avdigits', dir, holdout_speakers={options['holdout_speakers']}, hard=True)` "
                f"(14x14 occlusion, image noise std 0.4, audio at 0 dB SNR); test speaker(s): {speakers}")
    return f"`prepare('avdigits', dir, holdout_speakers={options['holdout_speakers']})`; test speaker(s): {speakers}"


def main(argv=None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # one new model per run: predict retracing warnings are expected

    from mmkeras import registry
    from mmkeras.data.pipeline import fit_preprocessor

    fusions = registry.names("fusion")
    methods = check_methods(args.methods or list(BASELINES) + fusions, fusions)
    command = " ".join([".venv/bin/python", "benchmarks/fusion_table.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A hand-written "## Discussion" at the end of an earlier table is kept when the table is rewritten.
    old = out.read_text() if out.exists() else ""
    discussion = old[old.index(DISCUSSION):] if DISCUSSION in old else ""
    print(f"command: {command}", flush=True)
    sections, env = {}, None
    for variant in args.variants:
        t0 = time.perf_counter()
        config, options = variant_config(args, variant)
        preprocessor = fit_preprocessor(config)
        train, test = materialize(config, preprocessor, "train"), materialize(config, preprocessor, "test")
        print(f"\n{variant}: decoded {len(train[1])} train / {len(test[1])} test examples "
              f"in {time.perf_counter() - t0:.1f} s", flush=True)
        env = env or environment(args, config.train.batch_size, config.train)
        results = {}
        sections[variant] = (describe(variant, options), results, (len(train[1]), len(test[1])))
        for method in methods:
            row_config = method_config(config, method)
            runs = []
            for seed in range(args.seeds):
                run = train_one(row_config, preprocessor, train, test, seed)
                runs.append(run)
                print(f"  {variant} {method} seed {seed}: accuracy {run['accuracy']:.3f}, macro-F1 "
                      f"{run['macro_f1']:.3f}, {run['seconds']:.1f} s", flush=True)
            results[method] = runs
            print("\n".join(table(results)), flush=True)
            out.write_text(render(args, command, sections, env, complete=False, discussion=discussion))
    total = time.perf_counter() - started
    out.write_text(render(args, command, sections, env, total_seconds=total, discussion=discussion))
    print(f"\nwrote {out} ({total / 60:.1f} min)", flush=True)


if __name__ == "__main__":
    main()
