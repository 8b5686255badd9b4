"""Tiny files written on the fly for the data tests: WAVs via ``wave``, images via tf.io / Pillow."""

import io
import os
import wave

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.config import config_from_dict


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """16-bit PCM WAV; ``samples`` float in [-1, 1], shape ``[n]`` or ``[n, channels]``."""
    samples = np.asarray(samples, np.float64)
    if samples.ndim == 1:
        samples = samples[:, None]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).round().astype("<i2").tobytes())
    return buffer.getvalue()


def sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)


def png_bytes(pixels: np.ndarray) -> bytes:
    return tf.io.encode_png(tf.constant(pixels, tf.uint8)).numpy()


def write(path, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


DIGITS_FEATURES = {
    "text": {"modality": "text", "sequence_length": 16},
    "image": {"modality": "image", "height": 28, "width": 28, "channels": 1},
    "audio": {"modality": "audio", "sample_rate": 8000, "duration": 1.0, "frontend": "logmel"},
}


def make_digits_dir(tmp_path):
    """Six good rows (two classes), files in sub-folders, paths relative to the manifest."""
    rng = np.random.default_rng(0)
    rows = ["text,image,audio,label"]
    for i in range(6):
        label = ["cat", "dog"][i % 2]
        write(tmp_path / "images" / f"{i}.png", png_bytes(rng.integers(0, 255, (20 + i, 24, 1))))
        rate = 8000 if i % 3 else 16000
        write(tmp_path / "audio" / f"{i}.wav", wav_bytes(sine(300 + 100 * i, rate, 0.5), rate))
        rows.append(f"a {label} number {i},images/{i}.png,audio/{i}.wav,{label}")
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


@pytest.fixture
def digits_dir(tmp_path):
    return make_digits_dir(tmp_path)


def make_config(folder, train="train.csv", features=None, **data):
    values = {"data": {"train": train, "label": "label", "features": features or DIGITS_FEATURES,
                       "cache": "none", **data}}
    return config_from_dict(values, source=str(folder / "config.yaml"))
