"""Helpers shared by the bundled datasets: bundled sources, PNG, WAV, IDX, CSV, splits.

Only numpy and the standard library are used, so preparing a dataset never imports TensorFlow.

Example:
    >>> import numpy as np
    >>> png = encode_png(np.zeros((2, 3), dtype=np.uint8))
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    >>> splits = stratified_split(["a"] * 10 + ["b"] * 10, fractions=(0.7, 0.15, 0.15), seed=0)
    >>> [len(splits[name]) for name in SPLITS]
    [12, 4, 4]
"""

from __future__ import annotations

import csv
import gzip
import struct
import wave
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

SPLITS = ("train", "validation", "test")
DATA_DIR = Path(__file__).parent / "data"


@dataclass
class Built:
    """What a dataset module's ``build`` returns once its media files are written.

    Args:
        columns: manifest columns in order, mapped to a one-line meaning (for DATASET.md).
        rows: ``{"train": [...], "validation": [...], "test": [...]}``, each row a dict over ``columns``.
        about: markdown: what the dataset is and how its splits were made.
        sources: bundled source folders whose SOURCE.md and LICENSE files must ship with it.
    """

    columns: dict[str, str]
    rows: dict[str, list[dict]]
    about: str
    sources: tuple[str, ...] = field(default_factory=tuple)


def source_dir(source: str) -> Path:
    """Folder of one bundled source (``fsdd``, ``mnist``, ``noto_emoji``, ``speech_commands_mini``)."""
    path = DATA_DIR / source
    if not path.is_dir():
        raise FileNotFoundError(f"bundled source {source!r} is missing: {path} (broken installation?)")
    return path


def attribution_files(source: str) -> list[Path]:
    """SOURCE.md then the LICENSE* files of a bundled source: the text that must ship with the data."""
    folder = source_dir(source)
    return [folder / "SOURCE.md"] + sorted(folder.glob("LICENSE*"))


def read_csv(path: Path) -> list[dict]:
    """Rows of a UTF-8 CSV file with a header, as dicts."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict]) -> None:
    """Writes ``rows`` (dicts) as a UTF-8 CSV with ``columns`` in that order."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="raise")
        writer.writeheader()
        writer.writerows(rows)


def read_idx(path: Path) -> np.ndarray:
    """Reads an unsigned-byte IDX file (optionally gzipped), as used by MNIST, into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (header {data[:4]!r})")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def encode_png(pixels: np.ndarray) -> bytes:
    """Encodes a uint8 array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` as PNG bytes."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"encode_png needs uint8 pixels, received dtype {pixels.dtype}")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    color_types = {1: 0, 3: 2, 4: 6}  # gray, RGB, RGBA
    if pixels.ndim != 3 or pixels.shape[2] not in color_types:
        raise ValueError(f"encode_png needs shape (H, W) or (H, W, 1|3|4), received {pixels.shape}")
    height, width, channels = pixels.shape
    header = struct.pack(">IIBBBBB", width, height, 8, color_types[channels], 0, 0, 0)
    # Every scanline starts with its filter type; 0 (none) keeps the encoder trivial.
    scanlines = np.concatenate(
        [np.zeros((height, 1), dtype=np.uint8), pixels.reshape(height, width * channels)], axis=1
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6))
        + _png_chunk(b"IEND", b"")
    )


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Writes ``pixels`` (see ``encode_png``) to ``path``."""
    Path(path).write_bytes(encode_png(pixels))


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Reads a 16-bit PCM mono WAV file: returns ``(int16 samples, sample_rate)``."""
    with wave.open(str(path), "rb") as f:
        if f.getsampwidth() != 2 or f.getnchannels() != 1:
            raise ValueError(
                f"{path}: expected 16-bit mono PCM, found {8 * f.getsampwidth()}-bit with "
                f"{f.getnchannels()} channels"
            )
        rate = f.getframerate()
        samples = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.int16)
    return samples, rate


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Writes 1-D int16 ``samples`` as a 16-bit PCM mono WAV file."""
    samples = np.asarray(samples)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError(f"write_wav needs 1-D int16 samples, received {samples.dtype} {samples.shape}")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(int(sample_rate))
        f.writeframes(samples.astype("<i2").tobytes())


def stratified_split(
    labels: Sequence, fractions: tuple[float, float, float], seed: int
) -> dict[str, list[int]]:
    """Seeded per-class split of item positions into ``train``/``validation``/``test``.

    Each class is shuffled, then ``round(fraction * class size)`` items go to validation and to test
    (Python rounding, half to even) and the rest to train, so every split holds every class in nearly
    the same proportion.

    Returns:
        ``{"train": [...], "validation": [...], "test": [...]}`` of sorted positions into ``labels``.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, received {fractions}")
    rng = np.random.default_rng(seed)
    labels = list(labels)
    out = {name: [] for name in SPLITS}
    for label in sorted(set(labels), key=str):
        members = [i for i, item in enumerate(labels) if item == label]
        members = [members[i] for i in rng.permutation(len(members))]
        n_val = round(fractions[1] * len(members))
        n_test = round(fractions[2] * len(members))
        out["validation"] += members[:n_val]
        out["test"] += members[n_val : n_val + n_test]
        out["train"] += members[n_val + n_test :]
    return {name: sorted(positions) for name, positions in out.items()}
