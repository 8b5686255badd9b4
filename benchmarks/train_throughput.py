"""Training throughput: from files through the mmkeras pipeline vs the same data already in memory.

The in-memory run is the compute limit (no decoding, no I/O); the pipeline should come within 5% of it.
Each case runs in its own process because the Keras backend and the XLA host-device count are fixed
at import. Prints one table.

    .venv/bin/python benchmarks/train_throughput.py                 # TF: files vs memory, jit, precision
    .venv/bin/python benchmarks/train_throughput.py --jax           # adds the JAX backend on 1 and 2 host devices
    .venv/bin/python benchmarks/train_throughput.py --jax --only-jax
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "mmkeras" / "configs" / "digits.yaml"
# The encoders the README's throughput table was measured with (digits shipped LSTM audio and an
# average-pooled CNN then); held fixed so that reruns stay comparable with it.
MEASURED_ENCODERS = ['model.encoders.image={type: conv2d, pooling: average}', "model.encoders.audio={type: lstm}"]


def worker(args) -> None:
    import keras
    import numpy as np
    import tensorflow as tf

    from mmkeras.config import load_config
    from mmkeras.data.pipeline import build_dataset, fit_preprocessor
    from mmkeras.models.factory import build_model
    from mmkeras.training.strategy import build_strategy
    from mmkeras.training.trainer import ensure_data

    config = load_config(CONFIG, [*MEASURED_ENCODERS, f"train.batch_size={args.batch_size}", f"train.precision={args.precision}",
                                  f"train.jit_compile={str(args.jit).lower()}", "train.strategy=auto"])
    ensure_data(config)
    preprocessor = fit_preprocessor(config)
    keras.config.set_dtype_policy(args.precision)
    plan = build_strategy(config.train)
    dataset = build_dataset(config, "train", preprocessor, training=True, batch_size=args.batch_size)
    dataset = dataset.map(lambda f, y: (f, tf.one_hot(y, preprocessor.num_classes)))
    if args.source == "memory":
        batches = list(dataset.as_numpy_iterator())
        features = {k: np.concatenate([b[0][k] for b in batches]) for k in batches[0][0]}
        labels = np.concatenate([b[1] for b in batches])
        data = dict(x=features, y=labels, batch_size=args.batch_size, shuffle=True)
    else:
        data = dict(x=dataset)
    with plan.scope():
        model = build_model(config.model, preprocessor)
        model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="categorical_crossentropy",
                      jit_compile=args.jit)
    times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    history = model.fit(**data, epochs=args.epochs, verbose=0, callbacks=[EpochTimer()])
    examples = (len(history.history["loss"]) and
                (sum(1 for _ in dataset) * args.batch_size if args.source == "files" else len(labels)))
    # Epoch 1 includes tracing/compilation and (for files) filling the cache: report the later epochs.
    steady = min(times[1:]) if len(times) > 1 else times[0]
    print("RESULT " + json.dumps({"examples_per_s": examples / steady, "devices": plan.num_replicas}))


def run_case(case: dict, args) -> dict:
    env = dict(os.environ, KERAS_BACKEND=case["backend"], TF_CPP_MIN_LOG_LEVEL="2")
    if case.get("devices", 1) > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={case['devices']}"
    command = [sys.executable, __file__, "--worker", "--source", case["source"], "--precision", case["precision"],
               "--batch-size", str(args.batch_size), "--epochs", str(args.epochs)] + (["--jit"] if case["jit"] else [])
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    line = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")]
    if not line:
        return {**case, "examples_per_s": None, "error": (result.stderr.strip().splitlines() or ["?"])[-1]}
    return {**case, **json.loads(line[-1][7:])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--source", default="files")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--jit", action="store_true")
    parser.add_argument("--jax", action="store_true", help="add JAX backend cases (1 and 2 host devices)")
    parser.add_argument("--only-jax", action="store_true", help="with --jax: run only the JAX cases")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    cases = [dict(backend="tensorflow", source=s, jit=j, precision=p)
             for p in ("float32", "mixed_bfloat16") for j in (False, True) for s in ("memory", "files")]
    if args.jax:
        cases += [dict(backend="jax", source=s, jit=j, precision="float32", devices=d)
                  for d in (1, 2) for j in (False, True) for s in ("memory", "files")]
    if args.only_jax:
        cases = [case for case in cases if case["backend"] == "jax"]
    print("command: " + " ".join([Path(sys.executable).name, "benchmarks/train_throughput.py"] + sys.argv[1:]))
    print(f"digits train split, batch {args.batch_size}, steady-state epoch (best of epochs 2..{args.epochs})\n")
    results = [run_case(case, args) for case in cases]
    print(f"| backend | devices | jit | precision | memory ex/s | files ex/s | files / memory |")
    print("|---|---|---|---|---|---|---|")
    for memory in [r for r in results if r["source"] == "memory"]:
        files = next(r for r in results if r["source"] == "files" and all(
            r.get(k) == memory.get(k) for k in ("backend", "jit", "precision", "devices")))
        m, f = memory["examples_per_s"], files["examples_per_s"]
        ratio = f"{f / m:.2f}x" if m and f else (memory.get("error") or files.get("error"))
        print(f"| {memory['backend']} | {memory.get('devices', 1)} | {memory['jit']} | {memory['precision']} | "
              f"{m or 0:.0f} | {f or 0:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
