"""Input pipeline benchmark: mmkeras tf.data pipeline vs the tutorial way (a Python loop into NumPy).

Dataset: ``digits`` (``mmkeras.datasets.prepare("digits", DIR)``: MNIST images, FSDD 8 kHz speech, a
short text). Same transforms both ways: text lower-cased, split, vocabulary ids padded to 16; image
decoded, resized to 28x28x1, scaled to [0, 1]; audio decoded, cut/padded to 1 s at 8 kHz, log-mel
(256-sample frames, hop 128, 40 mel bins). Each measurement runs in its own process, so peak memory
(RSS growth over the process after imports) is its own:

- first pass: files -> features. mmkeras is timed from ``build_dataset`` (tracing included) to the
  last batch; the tutorial from its first row to its stacked arrays.
- cached pass: a second epoch. mmkeras reads its ``cache: memory`` (evaluation caches final features;
  training caches decoded examples and redoes shuffle, random crops and the batched audio front end
  every epoch); the tutorial re-runs its loop (it has no cache). A separate row shows the tutorial
  keeping all its arrays in memory: no per-epoch work, paid for in memory (see the 10x row).
- 10x manifest: the manifest repeated 10 times, one pass. mmkeras streams (``cache: none``); the
  tutorial holds every array.

Run: ``.venv/bin/python benchmarks/input_pipeline.py [--dir /tmp/mmkeras_bench/digits] [--batch 64]``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


FEATURES = {
    "text": {"modality": "text", "sequence_length": 16},
    "image": {"modality": "image", "height": 28, "width": 28, "channels": 1, "resize": "stretch"},
    "audio": {"modality": "audio", "sample_rate": 8000, "duration": 1.0, "frontend": "logmel",
              "normalize": False},
}


def repeated_manifest(manifest: str, times: int) -> str:
    if times == 1:
        return manifest
    with open(manifest) as f:
        lines = f.read().splitlines()
    out = manifest.replace(".csv", f"_x{times}.csv")
    with open(out, "w") as f:
        f.write("\n".join([lines[0]] + lines[1:] * times) + "\n")
    return out


# ------------------------------------------------------------------------------ the two ways
def run_mmkeras(manifest: str, batch: int, times: int, training: bool = False) -> dict:
    import tensorflow as tf

    from mmkeras.config import config_from_dict
    from mmkeras.data import pipeline

    base = rss_mb()
    config = config_from_dict({"data": {"train": manifest, "label": "label", "features": FEATURES,
                                        "cache": "memory" if times == 1 else "none"}})
    p = pipeline.fit_preprocessor(config)  # vocabulary + classes (no audio statistics: normalize off)
    config.data.train = repeated_manifest(manifest, times)
    results = {}
    start, n = time.perf_counter(), 0
    dataset = pipeline.build_dataset(config, "train", p, training=training, batch_size=batch)
    results["setup_seconds"] = time.perf_counter() - start
    for name in (["first", "cached"] if times == 1 else ["first"]):
        for features, labels in dataset:
            n += int(labels.shape[0])
        results[name] = {"examples": n, "seconds": time.perf_counter() - start}
        start, n = time.perf_counter(), 0
    results["peak_mb"] = peak_mb() - base
    return results


def run_numpy(manifest: str, batch: int, times: int) -> dict:
    import numpy as np
    import scipy.io.wavfile
    import scipy.signal
    from PIL import Image

    base = rss_mb()
    folder = os.path.dirname(manifest)
    with open(manifest) as f:
        rows = list(csv.DictReader(f))
    classes = sorted({r["label"] for r in rows}, key=float)
    counts: dict = {}
    for r in rows:
        for token in r["text"].lower().split():
            counts[token] = counts.get(token, 0) + 1
    vocab = {t: i + 2 for i, (t, _) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:4998])}
    rows = rows * times

    # Same mel matrix as tf.signal.linear_to_mel_weight_matrix(40, 129, 8000, 20, 4000), in NumPy.
    def hz_to_mel(hz):
        return 1127.0 * np.log1p(hz / 700.0)

    bins = np.linspace(0, 4000, 129)[1:]
    edges = np.linspace(hz_to_mel(20.0), hz_to_mel(4000.0), 42)
    mel = hz_to_mel(bins)[:, None]
    lower = (mel - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    upper = (edges[None, 2:] - mel) / (edges[2:] - edges[1:-1])
    mel_matrix = np.pad(np.maximum(0, np.minimum(lower, upper)), [[1, 0], [0, 0]]).astype(np.float32)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(256) / 256)).astype(np.float32)

    def logmel(path):
        if not path:
            return np.zeros((61, 40), np.float32)
        rate, wav = scipy.io.wavfile.read(os.path.join(folder, path))
        wav = wav.astype(np.float32) / 32768.0
        if wav.ndim == 2:
            wav = wav.mean(axis=1)
        if rate != 8000:
            wav = scipy.signal.resample(wav, round(len(wav) * 8000 / rate)).astype(np.float32)
        excess = max(len(wav) - 8000, 0)
        wav = np.pad(wav[excess // 2: excess // 2 + 8000], (0, max(0, 8000 - len(wav))))[:8000]
        frames = np.lib.stride_tricks.sliding_window_view(wav, 256)[::128] * window
        return np.log(np.abs(np.fft.rfft(frames, axis=-1)) @ mel_matrix + 1e-6).astype(np.float32)

    def image(path):
        if not path:
            return np.zeros((28, 28, 1), np.float32)
        with Image.open(os.path.join(folder, path)) as im:
            return (np.asarray(im.convert("L").resize((28, 28), Image.BILINEAR), np.float32) / 255.0)[..., None]

    def text(value):
        ids = [vocab.get(t, 1) for t in value.lower().split()][:16]
        return np.array(ids + [0] * (16 - len(ids)), np.int32)

    def loop():
        columns = {"text": [], "image": [], "audio": [], "label": []}
        for r in rows:
            columns["text"].append(text(r["text"]))
            columns["image"].append(image(r["image"]))
            columns["audio"].append(logmel(r["audio"]))
            columns["label"].append(classes.index(r["label"]))
        return {k: np.stack(v) for k, v in columns.items()}

    results = {}
    n = (len(rows) // batch) * batch
    start = time.perf_counter()
    arrays = loop()
    results["first"] = {"examples": n, "seconds": time.perf_counter() - start}
    results["peak_mb"] = peak_mb() - base
    if times == 1:
        start = time.perf_counter()
        order = np.random.default_rng(0).permutation(len(rows))
        for i in range(0, n, batch):
            _ = {k: v[order[i:i + batch]] for k, v in arrays.items()}
        results["in_memory"] = {"examples": n, "seconds": time.perf_counter() - start}
        start = time.perf_counter()
        arrays = loop()
        results["cached"] = {"examples": n, "seconds": time.perf_counter() - start}
    return results


# ------------------------------------------------------------------------------ driver
def prepare(folder: str) -> str:
    manifest = os.path.join(folder, "train.csv")
    if not os.path.exists(manifest):
        from mmkeras.datasets import prepare as prepare_dataset

        prepare_dataset("digits", folder)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/mmkeras_bench/digits")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--worker", nargs=2, metavar=("WAY", "TIMES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    manifest = os.path.abspath(os.path.join(args.dir, "train.csv"))
    if args.worker:
        way, times = args.worker[0], int(args.worker[1])
        if way == "numpy":
            result = run_numpy(manifest, args.batch, times)
        else:
            result = run_mmkeras(manifest, args.batch, times, training=way == "mmkeras-training")
        print("RESULT " + json.dumps(result))
        return
    prepare(args.dir)
    repeated_manifest(manifest, 10)
    print("command: " + " ".join([os.path.relpath(sys.executable), *sys.argv]))
    print(f"manifest: {manifest}, batch {args.batch}, cores: {os.cpu_count()}, "
          f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    results = {}
    for way, times in [("mmkeras", 1), ("mmkeras-training", 1), ("numpy", 1), ("mmkeras", 10), ("numpy", 10)]:
        out = subprocess.run([sys.executable, __file__, "--dir", args.dir, "--batch", str(args.batch),
                              "--worker", way, str(times)], capture_output=True, text=True, check=True)
        line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")][-1]
        results[(way, times)] = json.loads(line[len("RESULT "):])

    def rate(result, key):
        return result[key]["examples"] / result[key]["seconds"]

    rows = []
    table = [  # label, mmkeras result and key, tutorial result and key, show memory
        ("first pass: files -> features", ("mmkeras", 1, "first"), ("numpy", 1, "first"), True),
        ("cached pass, evaluation (epoch 2 from cache) vs tutorial re-running its loop",
         ("mmkeras", 1, "cached"), ("numpy", 1, "cached"), False),
        ("cached pass, training (shuffle, crops, front end per epoch) vs tutorial re-running its loop",
         ("mmkeras-training", 1, "cached"), ("numpy", 1, "cached"), False),
        ("  for reference: tutorial's in-memory arrays (no per-epoch work; memory grows with data)",
         ("mmkeras", 1, "cached"), ("numpy", 1, "in_memory"), False),
        ("10x manifest, first pass (mmkeras streams, cache: none)", ("mmkeras", 10, "first"),
         ("numpy", 10, "first"), True),
    ]
    for label, (way, times, key), (theirs_way, theirs_times, theirs_key), memory in table:
        ours, theirs = results[(way, times)], results[(theirs_way, theirs_times)]
        ours_rate, theirs_rate = rate(ours, key), rate(theirs, theirs_key)
        rows.append((label, ours[key]["examples"], f"{ours_rate:,.0f}", f"{theirs_rate:,.0f}",
                     f"{ours_rate / theirs_rate:.2f}x",
                     f"{ours['peak_mb']:.0f}" if memory else "-", f"{theirs['peak_mb']:.0f}" if memory else "-",
                     f"{theirs['peak_mb'] / max(ours['peak_mb'], 1):.2f}x" if memory else "-"))
    header = ("measurement", "examples", "mmkeras ex/s", "tutorial ex/s", "speed ratio",
              "mmkeras peak MB", "tutorial peak MB", "memory ratio (tutorial/mmkeras)")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    print(f"mmkeras first pass includes {results[('mmkeras', 1)]['setup_seconds']:.2f} s of build_dataset "
          "(tracing) before the first batch")
    print("peak MB: growth of the process's peak RSS over its RSS after imports, after the first pass "
          "(mmkeras: first + cached pass share a process, so its figure includes the cache)")
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
