"""What each fusion costs on the `digits` shapes: parameters, FLOPs per example, train-step speed.

FLOPs come from XLA's cost analysis of the jitted forward pass (JAX backend, batch 1); train-step
examples/s from `train_on_batch` on random in-memory data (TensorFlow backend, batch 64), with and
without `jit_compile`. Each backend runs in its own process (the backend is fixed at import).
Prints one table. Every registered fusion by default; ``--fusions`` measures some (concat, the
speed baseline, is always measured too).

    .venv/bin/python benchmarks/fusion_cost.py [--steps 20] [--batch-size 64] [--fusions graph,hybrid]
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


class DigitsShapes:
    """The preprocessor interface `build_model` needs, with the shapes mmkeras/configs/digits.yaml produces."""

    def __init__(self):
        from mmkeras.config import load_config

        features = load_config(CONFIG).data.features
        self.input_specs = [features[column].spec(column) for column in ("text", "image", "audio")]
        self.num_classes = 10
        self.class_names = [str(d) for d in range(10)]

    def batch(self, size: int, seed: int = 0):
        import numpy as np

        rng = np.random.default_rng(seed)
        batch = {}
        for spec in self.input_specs:
            if spec.dtype == "int32":
                batch[spec.column] = rng.integers(0, spec.vocab_size, (size, *spec.shape)).astype("int32")
            else:
                batch[spec.column] = rng.random((size, *spec.shape), dtype="float32")
            batch[spec.presence_key] = np.ones(size, "float32")
        return batch, np.eye(10, dtype="float32")[rng.integers(0, 10, size)]


def _model(fusion: str, shapes: DigitsShapes):
    from mmkeras.config import load_config
    from mmkeras.models.factory import build_model

    # The encoders the README's fusion-cost table was measured with, held fixed for comparable reruns.
    model_config = load_config(CONFIG, ["model.encoders.image={type: conv2d, pooling: average}",
                                        "model.encoders.audio={type: lstm}"]).model
    model_config.fusion = {"type": fusion}
    return build_model(model_config, shapes)


def fusion_names(requested) -> list:
    """The registered fusions to measure: ``requested`` (comma-separated) plus concat, or all of them."""
    from mmkeras import registry

    names = registry.names("fusion")
    if not requested:
        return names
    wanted = ["concat"] + [name for name in requested.split(",") if name and name != "concat"]
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise SystemExit(f"--fusions: unknown fusion(s) {', '.join(unknown)}; registered: {', '.join(names)}")
    return wanted


def flops_worker(fusions: list) -> dict:
    import jax

    shapes = DigitsShapes()
    features, _ = shapes.batch(1)
    out = {}
    for fusion in fusions:
        model = _model(fusion, shapes)
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        def forward(trainable, non_trainable, features):
            return model.stateless_call(trainable, non_trainable, features)[0]

        compiled = jax.jit(forward).lower(trainable, non_trainable, features).compile()
        analysis = compiled.cost_analysis()
        analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
        out[fusion] = float(analysis.get("flops", float("nan")))
    return out


def speed_worker(steps: int, batch_size: int, fusions: list) -> dict:
    import keras

    shapes = DigitsShapes()
    features, labels = shapes.batch(batch_size)
    out = {}
    for fusion in fusions:
        row = {}
        for jit in (False, True):
            model = _model(fusion, shapes)
            model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="categorical_crossentropy", jit_compile=jit)
            for _ in range(3):  # tracing / compilation
                model.train_on_batch(features, labels)
            start = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(features, labels)
            row["jit" if jit else "no_jit"] = steps * batch_size / (time.perf_counter() - start)
        row["parameters"] = model.count_params()
        row["fusion_parameters"] = model.get_layer(f"{fusion}_fusion").count_params()
        out[fusion] = row
    return out


def _run_worker(kind: str, backend: str, args) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, __file__, "--worker", kind, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--fusions", args.fusions]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"{kind} worker failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=["flops", "speed"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--fusions", default="", help="comma-separated fusions (default: every registered one)")
    args = parser.parse_args()
    if args.worker == "flops":
        print("RESULT " + json.dumps(flops_worker(fusion_names(args.fusions))))
        return
    if args.worker == "speed":
        print("RESULT " + json.dumps(speed_worker(args.steps, args.batch_size, fusion_names(args.fusions))))
        return
    print("command: " + " ".join(["python", "benchmarks/fusion_cost.py", *sys.argv[1:]]))
    print(f"digits shapes (mmkeras/configs/digits.yaml: embedding text, conv2d image, lstm audio), softmax head; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    flops = _run_worker("flops", "jax", args)
    speed = _run_worker("speed", "tensorflow", args)
    base = speed["concat"]["no_jit"]
    print("| fusion | parameters (fusion layer) | forward MFLOPs / example | train ex/s | train ex/s, jit | jit speed-up | speed vs concat |")
    print("|---|---|---|---|---|---|---|")
    for fusion in sorted(speed):
        row = speed[fusion]
        print(f"| {fusion} | {row['parameters']:,} ({row['fusion_parameters']:,}) | {flops[fusion] / 1e6:.2f} | "
              f"{row['no_jit']:,.0f} | {row['jit']:,.0f} | {row['jit'] / row['no_jit']:.2f}x | {row['no_jit'] / base:.2f}x |")


if __name__ == "__main__":
    main()
