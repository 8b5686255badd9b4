"""``avdigits``: spoken digits (FSDD) paired with handwritten digits (MNIST), the AV-MNIST recipe.

Every FSDD recording is paired with a distinct MNIST test-set image of the same digit. Splits follow
FSDD's official convention (recording index 0-4 is test); index 5-9 is validation, 10-49 train. With
``holdout_speakers`` the listed speakers form the test split instead, and the other speakers' index 0-4
is validation, 5-49 train. MNIST images are dealt per digit into disjoint train/validation/test pools,
so no image appears in two splits.

``hard=True`` degrades both modalities, as MultiBench does for AV-MNIST, so that neither alone
suffices: a random square of the image is blanked, Gaussian pixel noise is added, and white noise is
mixed into the audio at ``snr_db``.

Reference:
    Vielzeuf et al., "CentralNet: a Multilayer Approach for Multimodal Fusion", ECCV Workshops 2018
    (AV-MNIST); Liang et al., "MultiBench: Multiscale Benchmarks for Multimodal Representation
    Learning", NeurIPS Datasets and Benchmarks 2021.

Example:
    >>> import numpy as np
    >>> clean = np.full(8000, 1000, dtype=np.int16)
    >>> noisy = add_noise_at_snr(clean, snr_db=10.0, rng=np.random.default_rng(0))
    >>> noise = noisy.astype(float) - clean
    >>> print(round(10 * np.log10(np.sum(clean.astype(float) ** 2) / np.sum(noise ** 2)), 1))
    10.0
"""

from __future__ import annotations

import numbers
import shutil
from pathlib import Path

import numpy as np

from mmkeras.datasets._files import SPLITS, Built, read_csv, read_idx, read_wav, source_dir, write_png, write_wav

NAME = "avdigits"
SUMMARY = "spoken digits (FSDD audio) paired with handwritten digits (MNIST images), 10 classes"

TEST_INDICES = range(0, 5)  # FSDD's official test set
VALIDATION_INDICES = range(5, 10)
HARD_DEFAULTS = {"snr_db": 0.0, "image_noise_std": 0.4, "occlusion_size": 14}

COLUMNS = {
    "image": "MNIST digit, 28x28 grayscale PNG",
    "audio": "FSDD recording, 8 kHz mono 16-bit PCM WAV",
    "label": "the digit, 0-9 (same for image and audio)",
    "speaker": "FSDD speaker name",
    "fsdd_index": "FSDD recording index 0-49 of that speaker and digit",
    "mnist_index": "position of the image in the MNIST test set (t10k), 0-9999",
}


def speakers() -> list[str]:
    """FSDD speaker names, sorted."""
    return sorted({row["speaker"] for row in read_csv(source_dir("fsdd") / "manifest.csv")})


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The bundled MNIST test set: ``(images uint8 (10000, 28, 28), labels uint8 (10000,))``."""
    folder = source_dir("mnist")
    return read_idx(folder / "t10k-images-idx3-ubyte.gz"), read_idx(folder / "t10k-labels-idx1-ubyte.gz")


def add_noise_at_snr(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Mixes white Gaussian noise into int16 ``samples`` at exactly ``snr_db`` (signal/noise power).

    The noise is rescaled to the exact power the SNR asks for; a mixture that would clip is scaled down
    as a whole, which keeps the SNR.
    """
    signal = samples.astype(np.float64)
    noise = rng.standard_normal(signal.shape)
    signal_power = np.mean(signal**2)
    noise *= np.sqrt(signal_power / 10 ** (snr_db / 10) / np.mean(noise**2))
    mixture = signal + noise
    peak = np.max(np.abs(mixture))
    if peak > 32767:
        mixture *= 32767 / peak
    return np.round(mixture).astype(np.int16)


def degrade_image(
    pixels: np.ndarray, noise_std: float, occlusion_size: int, rng: np.random.Generator
) -> np.ndarray:
    """Blanks a random ``occlusion_size`` square of a uint8 image, then adds Gaussian noise.

    ``noise_std`` is in units of full intensity (1.0 = 255).
    """
    image = pixels.astype(np.float64) / 255.0
    height, width = image.shape
    if occlusion_size > 0:
        top = rng.integers(0, height - occlusion_size + 1)
        left = rng.integers(0, width - occlusion_size + 1)
        image[top : top + occlusion_size, left : left + occlusion_size] = 0.0
    image += rng.normal(0.0, noise_std, image.shape)
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def _holdout_list(holdout_speakers) -> list[str]:
    if holdout_speakers is None:
        return []
    if isinstance(holdout_speakers, str):
        holdout_speakers = [s for s in holdout_speakers.split(",") if s.strip()]
    chosen = sorted({str(s).strip() for s in holdout_speakers})
    valid = speakers()
    unknown = [s for s in chosen if s not in valid]
    if unknown:
        raise ValueError(f"holdout_speakers: unknown speaker(s) {unknown}; valid speakers: {', '.join(valid)}")
    if len(chosen) == len(valid):
        raise ValueError(f"holdout_speakers: holding out all speakers {chosen} leaves nothing to train on")
    return chosen


def _hard_settings(hard, snr_db, image_noise_std, occlusion_size) -> dict | None:
    given = {"snr_db": snr_db, "image_noise_std": image_noise_std, "occlusion_size": occlusion_size}
    if not isinstance(hard, bool):
        raise ValueError(f"hard must be True or False, received {hard!r}")
    if not hard:
        extra = sorted(key for key, value in given.items() if value is not None)
        if extra:
            raise ValueError(f"option(s) {', '.join(extra)} only apply with hard=True (received hard=False)")
        return None
    settings = {key: HARD_DEFAULTS[key] if value is None else value for key, value in given.items()}
    settings["snr_db"] = float(settings["snr_db"])
    settings["image_noise_std"] = float(settings["image_noise_std"])
    if settings["image_noise_std"] < 0:
        raise ValueError(f"image_noise_std must be >= 0, received {image_noise_std!r}")
    occlusion = settings["occlusion_size"]
    if isinstance(occlusion, bool) or not isinstance(occlusion, numbers.Integral) or not 0 <= occlusion <= 28:
        raise ValueError(f"occlusion_size must be an integer number of pixels in 0..28, received {occlusion!r}")
    return settings


def _split_of(row: dict, holdout: list[str]) -> str:
    index = int(row["index"])
    if holdout:
        if row["speaker"] in holdout:
            return "test"
        return "validation" if index in TEST_INDICES else "train"
    if index in TEST_INDICES:
        return "test"
    return "validation" if index in VALIDATION_INDICES else "train"


def build(
    out: Path,
    *,
    seed: int,
    hard: bool = False,
    holdout_speakers=None,
    snr_db: float | None = None,
    image_noise_std: float | None = None,
    occlusion_size: int | None = None,
) -> Built:
    """Writes ``images/`` and ``audio/`` into ``out`` and returns the rows of each split.

    Args:
        out: folder to write into.
        seed: seeds the image pools, the pairing and the degradation noise.
        hard: degrade both modalities (see the module docstring).
        holdout_speakers: speaker names (list, or comma-separated string) whose recordings form the
            test split; see ``speakers()``.
        snr_db: hard only: audio signal-to-noise ratio in dB (default 0).
        image_noise_std: hard only: std of the pixel noise, 1.0 = full intensity (default 0.4).
        occlusion_size: hard only: side in pixels of the blanked square (default 14).
    """
    holdout = _holdout_list(holdout_speakers)
    degrade = _hard_settings(hard, snr_db, image_noise_std, occlusion_size)
    recordings = read_csv(source_dir("fsdd") / "manifest.csv")
    images, labels = load_mnist()
    pairing_rng = np.random.default_rng([seed, 0])
    noise_rng = np.random.default_rng([seed, 1])

    by_split_digit: dict[tuple[str, str], list[dict]] = {}
    for row in recordings:
        by_split_digit.setdefault((_split_of(row, holdout), row["label"]), []).append(row)
    image_of: dict[str, int] = {}
    for digit in sorted({row["label"] for row in recordings}):
        pool = np.flatnonzero(labels == int(digit))
        pool = pool[pairing_rng.permutation(len(pool))]
        start = 0
        for split in SPLITS:
            members = by_split_digit.get((split, digit), [])
            if start + len(members) > len(pool):
                raise ValueError(f"MNIST has only {len(pool)} images of digit {digit}, too few to pair")
            for row, image_index in zip(members, pool[start : start + len(members)]):
                image_of[row["audio"]] = int(image_index)
            start += len(members)

    (out / "images").mkdir()
    (out / "audio").mkdir()
    source = source_dir("fsdd")
    rows = {split: [] for split in SPLITS}
    for recording in recordings:
        image_index = image_of[recording["audio"]]
        image_path = f"images/mnist_{image_index:05d}.png"
        audio_path = f"audio/{Path(recording['audio']).name}"
        if degrade is None:
            write_png(out / image_path, images[image_index])
            shutil.copyfile(source / recording["audio"], out / audio_path)
        else:
            pixels = degrade_image(
                images[image_index], degrade["image_noise_std"], degrade["occlusion_size"], noise_rng
            )
            write_png(out / image_path, pixels)
            samples, rate = read_wav(source / recording["audio"])
            write_wav(out / audio_path, add_noise_at_snr(samples, degrade["snr_db"], noise_rng), rate)
        rows[_split_of(recording, holdout)].append(
            {
                "image": image_path,
                "audio": audio_path,
                "label": recording["label"],
                "speaker": recording["speaker"],
                "fsdd_index": recording["index"],
                "mnist_index": image_index,
            }
        )
    return Built(columns=dict(COLUMNS), rows=rows, about=_about(holdout, degrade), sources=("fsdd", "mnist"))


def _about(holdout: list[str], degrade: dict | None) -> str:
    lines = [
        "Each recording of the Free Spoken Digit Dataset (FSDD: 3000 recordings, 6 speakers, 50 per digit",
        "per speaker) is paired with a distinct image of the same digit from the MNIST test set (the",
        "AV-MNIST recipe). The pairing is random (seeded): image and recording share only the label.",
        "",
    ]
    if holdout:
        lines += [
            f"Split by speaker: the recordings of {', '.join(holdout)} form the test split (unseen speakers);",
            "of the other speakers, recording index 0-4 is validation and 5-49 is train.",
        ]
    else:
        lines += [
            "Split by FSDD's official rule: recording index 0-4 of every speaker is test; index 5-9 is",
            "validation and 10-49 train. Every speaker appears in every split.",
        ]
    lines += [
        "MNIST images are dealt per digit (seeded) into disjoint train/validation/test pools, so no image",
        "is shared between splits, and every recording gets its own image.",
    ]
    if degrade is None:
        lines += ["", "Audio files are the original FSDD bytes; images are the original MNIST pixels."]
    else:
        lines += [
            "",
            "**Hard variant** (as MultiBench degrades AV-MNIST, so that neither modality alone suffices):",
            f"every image has a random {degrade['occlusion_size']}x{degrade['occlusion_size']} square blanked, "
            f"then Gaussian pixel noise of std {degrade['image_noise_std']} (1.0 = full intensity) added;",
            f"every recording has white noise mixed in at {degrade['snr_db']} dB SNR (a mixture that would",
            "clip is scaled down as a whole, which keeps the SNR).",
        ]
    return "\n".join(lines)
