"""Serving latency: the exported raw-bytes signature vs ``model.predict`` vs the tensor signature.

Measures, on the same test examples of a run:

- ``serving_default`` (raw file bytes in: decoding, resampling, log-mel, tokenization, checks and the
  model, all in one SavedModel call),
- ``model.predict`` on already-preprocessed features (what a Python service built on Keras does),
- ``serve_tensors`` (the exported model on preprocessed tensors: the compute floor),

p50 / p99 latency at batch 1 and throughput at batch 32, one table, with the command that made it.
Trains the bundled ``digits`` config for one epoch first when ``--run-dir`` holds no complete run.

Usage:
    python benchmarks/serving_latency.py --run-dir runs/bench-digits --export-to exports/bench-digits
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path


def _times(fn, calls: int) -> list:
    fn(0)  # trace / warm up
    out = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out


def _percentile(values, q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values) * 1000.0, q))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="digits")
    parser.add_argument("--run-dir", default="runs/bench-digits")
    parser.add_argument("--export-to", default="exports/bench-digits")
    parser.add_argument("--calls", type=int, default=200, help="timed calls at batch 1")
    parser.add_argument("--batches", type=int, default=20, help="timed calls at batch 32")
    args = parser.parse_args(argv)

    from mmkeras.config import load_config
    from mmkeras.training.run import Run
    from mmkeras.training.trainer import train

    run = Run(args.run_dir)
    if not run.complete:
        train(load_config(args.config, ["train.epochs=1", "train.verbose=0"]), run_dir=run.run_dir)

    import numpy as np
    import tensorflow as tf

    from mmkeras.data.pipeline import build_dataset
    from mmkeras.data.preprocessor import Preprocessor
    from mmkeras.evaluation.predictions import load_run_model
    from mmkeras.export.serving import export_run, serving_input_names
    from mmkeras.export.warmup import example_rows, raw_request_values

    config = load_config(run.config_file)
    path = export_run(run.run_dir, args.export_to, version=1, overwrite=True)
    loaded = tf.saved_model.load(str(path))
    raw_fn, tensor_fn = loaded.signatures["serving_default"], loaded.signatures["serve_tensors"]
    model = load_run_model(run)
    preprocessor = Preprocessor.load(str(run.preprocessor_dir))

    batch = 32
    features = next(iter(build_dataset(config, "test", preprocessor, training=False, batch_size=batch)))[0]
    manifest, rows = example_rows(config, batch, splits=("test",))
    names = list(raw_fn.structured_input_signature[1])
    input_names = serving_input_names(preprocessor.input_specs)
    raw = [raw_request_values(manifest, row, input_names) for row in rows]
    raw_batch = {name: tf.constant([r[name] for r in raw]) for name in names}
    raw_single = [{name: tf.constant([r[name]]) for name in names} for r in raw]
    feature_single = [{k: v[i : i + 1] for k, v in features.items()} for i in range(batch)]
    numpy_single = [{k: v.numpy() for k, v in f.items()} for f in feature_single]
    numpy_batch = {k: v.numpy() for k, v in features.items()}

    served = raw_fn(**raw_batch)["probabilities"].numpy()
    expected = np.asarray(model(features, training=False))
    parity = float(np.abs(served - expected).max())

    n = len(raw)
    measured = {
        "serving_default (raw bytes)": (
            _times(lambda i: raw_fn(**raw_single[i % n]), args.calls),
            _times(lambda i: raw_fn(**raw_batch), args.batches)),
        "model.predict (features)": (
            _times(lambda i: model.predict(numpy_single[i % n], verbose=0), args.calls),
            _times(lambda i: model.predict(numpy_batch, batch_size=batch, verbose=0), args.batches)),
        "serve_tensors (features)": (
            _times(lambda i: tensor_fn(**feature_single[i % n]), args.calls),
            _times(lambda i: tensor_fn(**features), args.batches)),
    }
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    print(f"$ {command}")
    print(f"run {run.run_dir} ({config.source}), export {path}, TF {tf.__version__}, "
          f"{batch} test examples, max |raw-bytes - Keras| = {parity:.2e}")
    print()
    print("| path | batch-1 p50 ms | batch-1 p99 ms | batch-32 examples/s |")
    print("|---|---:|---:|---:|")
    for label, (single, many) in measured.items():
        rate = batch / float(np.median(many))
        print(f"| {label} | {_percentile(single, 50):.2f} | {_percentile(single, 99):.2f} | {rate:,.0f} |")
    raw_p50 = _percentile(measured["serving_default (raw bytes)"][0], 50)
    predict_p50 = _percentile(measured["model.predict (features)"][0], 50)
    floor_p50 = _percentile(measured["serve_tensors (features)"][0], 50)
    print()
    print(f"raw-bytes p50 / model.predict p50 = {raw_p50 / predict_p50:.3f} (target <= 0.200); "
          f"raw-bytes p50 / serve_tensors p50 = {raw_p50 / floor_p50:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
