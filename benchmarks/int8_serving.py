"""int8 serving: ``mmkeras export --quantize int8`` against the float32 export of the same run.

Two runs, each exported twice (``BASE/1`` float32, ``BASE/2`` int8, ``mmkeras.export.quantize``):

- ``digits``: the bundled config as shipped (our encoders: embedding text, flatten-pooled CNN image,
  conv1d speech; concat fusion), 4 epochs.
- ``emoji + KerasHub``: the bundled emoji set classified by frozen KerasHub backbones, a ViT (96 x 96,
  6 blocks of width 192) on the images and a BERT (6 layers of width 192) on the names: the random-weight
  presets of ``benchmarks/frozen_cache.py`` (nothing here needs the network; a frozen random backbone
  still shows what int8 does to a transformer's arithmetic, though not how a pretrained one's accuracy
  moves), concat fusion and head trained 4 epochs.

For each export: the SavedModel's size (the whole folder, and ``variables/``), batch-1 latency of the
raw-bytes ``serving_default`` signature (p50 / p99 over ``--calls`` calls; float32 and int8 calls
alternate, so both see the same load on a shared machine), and test accuracy of the served answers on
the whole test split; between the two exports, the largest difference of a served probability and
the share of test examples whose argmax agrees. A run already complete in ``--work`` is reused.

Usage:
    .venv/bin/python benchmarks/int8_serving.py [--work DIR] [--calls 200] [--cases digits,keras_hub] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

CASES = ("digits", "keras_hub")
LABELS = {"digits": "digits (our encoders)", "keras_hub": "emoji + KerasHub ViT + BERT (frozen)"}


def case_config(case: str, work: Path):
    """The config of one case; the KerasHub presets are written under ``work/presets`` first."""
    import mmkeras

    if case == "digits":
        return mmkeras.load_config("digits", ["train.verbose=0"])
    mmkeras.datasets.ensure_prepared("emoji", work / "data" / "emoji")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from frozen_cache import make_presets

    presets = {"image": str(work / "presets" / "vit_small"), "text": str(work / "presets" / "bert_small")}
    if not all((Path(path) / "config.json").exists() for path in presets.values()):
        presets = make_presets(work / "presets")
    return mmkeras.load_config("emoji", [
        "train.epochs=4", "train.verbose=0", "train.batch_size=64", "model.fusion={type: concat, output_dim: 64}",
        f"model.encoders.image={{type: keras_hub, preset: {presets['image']}}}", "data.features.image.augment={}",
        "data.features.image.height=null", "data.features.image.width=null",
        f"model.encoders.text={{type: keras_hub, preset: {presets['text']}}}", "data.features.text.sequence_length=16"])


def _mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def raw_test_split(config, input_columns: dict) -> tuple:
    """``(labels, [{input: bytes}])`` of every test row, as a client sends them."""
    from mmkeras.data.manifest import read_manifest
    from mmkeras.export.warmup import audio_columns, raw_request_values

    manifest = read_manifest(config.resolve_path(config.data.test))
    names = {name: spec["column"] for name, spec in input_columns.items()}
    rows = [raw_request_values(manifest, row, names, audio_columns(config)) for row in manifest.rows]
    return [row[config.data.label] for row in manifest.rows], rows


def served_probabilities(signature, rows: list, batch: int = 32) -> tuple:
    """``(probabilities, class names)`` of ``rows`` through ``signature``, in batches."""
    import numpy as np
    import tensorflow as tf

    probabilities, names = [], []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        out = signature(**{name: tf.constant([row[name] for row in chunk]) for name in chunk[0]})
        probabilities.append(out["probabilities"].numpy())
        names += [n.decode() for n in out["class_names"].numpy()]
    return np.concatenate(probabilities), names


def alternating_latencies(signatures: dict, rows: list, calls: int) -> dict:
    """``{precision: [seconds]}`` of batch-1 calls, the precisions taking turns on the same example."""
    import tensorflow as tf

    singles = [{name: tf.constant([value]) for name, value in row.items()} for row in rows[:32]]
    for signature in signatures.values():
        signature(**singles[0])  # warm up
    times = {precision: [] for precision in signatures}
    for i in range(calls):
        for precision, signature in signatures.items():
            start = time.perf_counter()
            signature(**singles[i % len(singles)])
            times[precision].append(time.perf_counter() - start)
    return times


def matmul_ms(rows: int = 145, inner: int = 192, outer: int = 768, calls: int = 200) -> dict:
    """Median ms of one ``tf.matmul`` at a ViT feed-forward shape (145 tokens, 192 -> 768): float32 against
    int8 x int8 -> int32 (``output_type=tf.int32``, what ``keras.ops.matmul`` runs for int8 on TensorFlow)."""
    import numpy as np
    import tensorflow as tf

    generator = np.random.default_rng(0)
    a = tf.constant(generator.integers(-127, 128, (rows, inner), dtype=np.int8))
    b = tf.constant(generator.integers(-127, 128, (inner, outer), dtype=np.int8))
    af, bf = tf.cast(a, tf.float32), tf.cast(b, tf.float32)
    functions = {"float32": tf.function(lambda: tf.matmul(af, bf)),
                 "int8": tf.function(lambda: tf.matmul(a, b, output_type=tf.int32))}
    times = {name: [] for name in functions}
    for function in functions.values():
        function()
    for _ in range(calls):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: round(float(np.median(t)) * 1000.0, 3) for name, t in times.items()}


def measure(case: str, work: Path, calls: int) -> dict:
    import numpy as np
    import tensorflow as tf

    from mmkeras.export.serving import METADATA_FILE, export_run
    from mmkeras.training.run import Run
    from mmkeras.training.trainer import train

    config = case_config(case, work)
    run = Run(work / "runs" / case)
    if not run.complete:
        start = time.perf_counter()
        train(config, run_dir=run.run_dir, overwrite=True)
        print(f"{case}: trained in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    paths, export_s = {}, {}
    for version, precision in ((1, "float32"), (2, "int8")):
        start = time.perf_counter()
        paths[precision] = export_run(run.run_dir, work / "exports" / case, version=version, overwrite=True,
                                      quantize="int8" if precision == "int8" else None)
        export_s[precision] = time.perf_counter() - start
    metadata = {p: json.loads((path / METADATA_FILE).read_text()) for p, path in paths.items()}
    signatures = {p: tf.saved_model.load(str(path)).signatures["serving_default"] for p, path in paths.items()}
    labels, rows = raw_test_split(config, metadata["float32"]["input_columns"])
    served = {p: served_probabilities(signature, rows) for p, signature in signatures.items()}
    latencies = alternating_latencies(signatures, rows, calls)
    result = {"case": case, "label": LABELS[case], "run_dir": str(run.run_dir), "test_examples": len(labels),
              "int8_layers": metadata["int8"]["int8_layer_count"],
              "float32_layers": len(metadata["int8"]["float32_layers"]),
              "max_abs_probability_diff": float(np.abs(served["int8"][0] - served["float32"][0]).max()),
              "argmax_agreement": float(np.mean(served["int8"][0].argmax(1) == served["float32"][0].argmax(1)))}
    for precision, path in paths.items():
        times_ms = np.asarray(latencies[precision]) * 1000.0
        result[precision] = {
            "saved_model_mb": round(_mb(path), 3), "variables_mb": round(_mb(path / "variables"), 3),
            "p50_ms": round(float(np.percentile(times_ms, 50)), 3), "p99_ms": round(float(np.percentile(times_ms, 99)), 3),
            "test_accuracy": float(np.mean([name == label for name, label in zip(served[precision][1], labels)])),
            "export_s": round(export_s[precision], 1)}
    return result


def table(results: list) -> list:
    lines = ["| run | weights | SavedModel MB | variables MB | raw-bytes batch-1 p50 ms | p99 ms | test accuracy |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        f, q = r["float32"], r["int8"]
        lines.append(f"| {r['label']} | float32 | {f['saved_model_mb']:.2f} | {f['variables_mb']:.2f} "
                     f"| {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {f['test_accuracy']:.3f} |")
        lines.append(f"| | int8 ({r['int8_layers']} layers int8, {r['float32_layers']} float32) "
                     f"| {q['saved_model_mb']:.2f} | {q['variables_mb']:.2f} | {q['p50_ms']:.2f} | {q['p99_ms']:.2f} "
                     f"| {q['test_accuracy']:.3f} |")
        lines.append(f"| | **int8 / float32** | **{q['saved_model_mb'] / f['saved_model_mb']:.2f}x** "
                     f"| {q['variables_mb'] / f['variables_mb']:.2f}x | **{q['p50_ms'] / f['p50_ms']:.2f}x** "
                     f"| {q['p99_ms'] / f['p99_ms']:.2f}x | **{q['test_accuracy'] - f['test_accuracy']:+.3f}** |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one); runs are reused")
    parser.add_argument("--calls", type=int, default=200, help="timed batch-1 calls per export")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--json", default=None, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if unknown := sorted(set(cases) - set(CASES)):
        parser.error(f"unknown case(s) {', '.join(unknown)}; valid: {', '.join(CASES)}")
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    json_path = Path(args.json).resolve() if args.json else None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    work = Path(args.work or tempfile.mkdtemp(prefix="int8_serving_")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)  # the bundled configs prepare data/<name>/ in the working folder
    load = os.getloadavg()
    results = [measure(case, work, args.calls) for case in cases]
    matmul = matmul_ms()

    import keras
    import tensorflow as tf

    print(f"$ {command}")
    print(f"{os.cpu_count()} logical CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at start; "
          f"TensorFlow {tf.__version__}, Keras {keras.__version__}; {args.calls} alternating batch-1 calls per export")
    print()
    print("\n".join(table(results)))
    print()
    for r in results:
        print(f"{r['label']}: {r['test_examples']} test examples; max |p_int8 - p_float32| = "
              f"{r['max_abs_probability_diff']:.4f}, argmax agrees on {r['argmax_agreement']:.3f}; export "
              f"{r['float32']['export_s']:.0f} s (float32), {r['int8']['export_s']:.0f} s (int8)")
    print(f"tf.matmul 145 x 192 @ 192 x 768, median of 200: float32 {matmul['float32']:.3f} ms, int8 x int8 -> int32 "
          f"{matmul['int8']:.3f} ms ({matmul['int8'] / matmul['float32']:.2f}x)")
    if json_path:
        json_path.write_text(json.dumps({"command": command, "load_average": load, "results": results,
                                         "matmul_ms": matmul}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
