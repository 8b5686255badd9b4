"""What small hostile files cost: mmkeras's checked decode vs the plain TensorFlow decode.

Each case runs in its own process, once through the column's ``decode`` (what training and serving
run: header check first) and once through the plain TF op a tutorial would call
(``tf.io.decode_image`` / ``tf.audio.decode_wav`` + resampling), both inside a ``tf.function`` (as in
``tf.data`` and in the serving graph) warmed up on a small good file first, with a time limit.
Peak memory is the highest RSS a 2 ms polling thread saw during the call, minus the RSS before it.

Usage:
    .venv/bin/python benchmarks/hostile_inputs.py [--json out.json] [--timeout 120]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MAKE = {
    "png_100mp": "zlib_png(10000, 10000)",
    "png_16mp": "zlib_png(4000, 4000)",
    "gif_400_frames": "many_frame_gif(400, 1000)",
    "wav_3hz": "wav(np.zeros(2_000_000, np.int16), 3)",
    "wav_10min": "wav(np.zeros(8000 * 600, np.int16), 8000)",
    "wav_1m_chunks": "padded_wav(1_000_000)",
}

CASE = r'''
import io, resource, sys, time, wave, zlib, struct
import numpy as np, tensorflow as tf
from mmkeras.config import AudioFeature, ImageFeature
from mmkeras.data.columns import build_column
from mmkeras.data.columns.audio_ops import resample

def zlib_png(width, height):
    raw = zlib.compress(b"".join(b"\x00" + bytes(width) for _ in range(height)), 9)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))

def many_frame_gif(frames, side):
    from PIL import Image
    images = [Image.new("L", (side, side), i % 2) for i in range(frames)]
    buffer = io.BytesIO(); images[0].save(buffer, "GIF", save_all=True, append_images=images[1:])
    return buffer.getvalue()

def wav(samples, rate):
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate); w.writeframes(samples.tobytes())
    return buffer.getvalue()

def padded_wav(chunks):
    good = wav(np.zeros(8000, np.int16), 8000)
    return good[:12] + b"JUNK\x00\x00\x00\x00" * chunks + good[12:]

contents = tf.constant(MAKE)
image = sys.argv[2].startswith(("png", "gif"))
feature = ImageFeature(height=28, width=28, channels=1) if image else AudioFeature(sample_rate=8000, duration=1.0)
column = build_column("x", feature)
def naive(c):
    if image:
        return tf.io.decode_image(c, expand_animations=False)
    samples, rate = tf.audio.decode_wav(c)
    return resample(samples[:, 0], rate, 8000)
decode = tf.function(column.decode if sys.argv[1] == "mmkeras" else naive)
decode(tf.constant(zlib_png(8, 8) if image else wav(np.zeros(800, np.int16), 8000)))  # trace and warm up
import psutil, threading
process, peak, running = psutil.Process(), [0], [True]
def poll():
    while running[0]:
        peak[0] = max(peak[0], process.memory_info().rss); time.sleep(0.002)
before = process.memory_info().rss
thread = threading.Thread(target=poll); thread.start()
start = time.perf_counter()
try:
    decode(contents)
    verdict = "decoded"
except tf.errors.OpError as error:
    verdict = "error: " + str(error).splitlines()[0][-70:]
seconds = time.perf_counter() - start
running[0] = False; thread.join()
if sys.argv[1] == "mmkeras" and verdict != "decoded":
    verdict = "refused: " + column.problems(contents[None]).numpy()[0].decode()
print("RESULT", {"size_kb": round(len(contents.numpy()) / 1024), "seconds": round(seconds, 3),
                 "peak_mb": round(max(peak[0] - before, 0) / 2**20), "verdict": verdict})
'''


def run(case: str, path: str, timeout: float) -> dict:
    code = CASE.replace("tf.constant(MAKE)", f"tf.constant({MAKE[case]})")
    try:
        done = subprocess.run([sys.executable, "-c", code, path, case], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    except subprocess.TimeoutExpired:
        return {"seconds": f">{timeout:.0f}", "peak_mb": "?", "verdict": "timed out", "size_kb": "?"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    if not lines:
        return {"seconds": "?", "peak_mb": "?", "verdict": f"crashed (exit {done.returncode})", "size_kb": "?"}
    return eval(lines[-1][len("RESULT "):])  # noqa: S307 - our own subprocess's dict


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=None)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    results = {case: {path: run(case, path, args.timeout) for path in ("mmkeras", "plain_tf")} for case in MAKE}
    print(f"`{' '.join([Path(sys.executable).name, *sys.argv])}`\n")
    print("| file | size | mmkeras: verdict | s | peak MB | plain TF: outcome | s | peak MB |")
    print("|---|---:|---|---:|---:|---|---:|---:|")
    for case, by_path in results.items():
        ours, plain = by_path["mmkeras"], by_path["plain_tf"]
        print(f"| {case} | {ours['size_kb']} KB | {ours['verdict']} | {ours['seconds']} | {ours['peak_mb']} "
              f"| {plain['verdict']} | {plain['seconds']} | {plain['peak_mb']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
