"""A frozen backbone's epoch from the cache vs recomputing it, measured through ``mmkeras.train``.

The bundled ``emoji`` dataset (1,121 train / 240 validation Noto emoji PNGs with their names) is
classified from its images by a frozen KerasHub ViT (and optionally its names by a frozen BERT).
Both are random-weight backbones of a small real size (ViT: 96 x 96 images, 8 x 8 patches, 6 blocks
of width 192; BERT: 6 layers of width 192; a real ViT-B or BERT-base costs about 10x more per
example): the speed of a forward pass does not depend on the weights, and nothing here needs the
network. Each case trains 4 epochs; the run's history records
each epoch's seconds (training steps and validation pass): epoch 1 includes tracing and filling the
data cache, epochs 2-4 are the steady state (their median is reported). The one pass that computes
the cached encodings happens before epoch 1 and is reported separately (whole run minus its epochs).
``data.cache: none`` turns the cache off.

Usage:
    .venv/bin/python benchmarks/frozen_cache.py [--text] [--json out.json] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def make_presets(folder: Path) -> dict:
    import keras_hub

    vit = folder / "vit_small"
    converter = keras_hub.layers.ViTImageConverter(image_size=(96, 96), scale=1 / 127.5, offset=-1)
    keras_hub.models.ViTImageClassifierPreprocessor(image_converter=converter).save_to_preset(str(vit))
    keras_hub.models.ViTBackbone(image_shape=(96, 96, 3), patch_size=8, num_layers=6, num_heads=6, hidden_dim=192,
                                 mlp_dim=768).save_to_preset(str(vit))
    bert = folder / "bert_small"
    words = sorted({w for line in (folder.parent / "data" / "emoji" / "train.csv").read_text().lower().split("\n")[1:]
                    for w in line.replace(",", " ").split()})[:2000]
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words,
                                               lowercase=True)
    keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=16).save_to_preset(str(bert))
    keras_hub.models.BertBackbone(vocabulary_size=len(words) + 5, num_layers=6, num_heads=6, hidden_dim=192,
                                  intermediate_dim=768, max_sequence_length=16).save_to_preset(str(bert))
    return {"image": str(vit), "text": str(bert)}


def timed_train(columns: list, presets: dict, cache: str, epochs: int, run_dir: Path) -> dict:
    """``{"total_s", "epoch_s": [...]}`` of one ``mmkeras.train`` run."""
    import mmkeras

    overrides = [f"train.epochs={epochs}", "train.verbose=0", f"data.cache={cache}", "train.batch_size=64",
                 "model.fusion={type: concat, output_dim: 64}"]
    for column in ("text", "image"):
        if column in columns:
            overrides.append(f"model.encoders.{column}={{type: keras_hub, preset: {presets[column]}}}")
            overrides += ([f"data.features.{column}.augment={{}}", f"data.features.{column}.height=null",
                           f"data.features.{column}.width=null"] if column == "image"
                          else [f"data.features.{column}.sequence_length=16"])
        else:
            overrides.append(f"data.features.{column}=null")
    config = mmkeras.load_config("emoji", overrides)
    start = time.perf_counter()
    run = mmkeras.train(config, run_dir=run_dir, overwrite=True)
    return {"total_s": time.perf_counter() - start, "epoch_s": [row["epoch_seconds"] for row in run.epoch_rows()]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", action="store_true", help="also a frozen BERT on the emoji names")
    parser.add_argument("--json", default=None)
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    work = Path(args.work or tempfile.mkdtemp(prefix="frozen_cache_")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)  # the bundled config prepares data/emoji/ in the working folder
    import mmkeras

    mmkeras.datasets.ensure_prepared("emoji", work / "data" / "emoji")
    presets = make_presets(work / "presets")
    columns = ["image", "text"] if args.text else ["image"]
    rows = {}
    for cache in ("none", "memory"):
        timed = timed_train(columns, presets, cache, 4, work / f"run_{cache}")
        epochs = timed["epoch_s"]
        rows[cache] = {"first_epoch_s": round(epochs[0], 2), "steady_epoch_s": round(statistics.median(epochs[1:]), 3),
                       "outside_epochs_s": round(timed["total_s"] - sum(epochs), 1), "total_s": round(timed["total_s"], 1)}
    ratio = rows["none"]["steady_epoch_s"] / max(rows["memory"]["steady_epoch_s"], 1e-9)
    print(f"`{Path(sys.executable).name} benchmarks/frozen_cache.py {' '.join(argv or sys.argv[1:])}` "
          f"(emoji, frozen {' + '.join('ViT' if c == 'image' else 'BERT' for c in columns)}, batch 64, 4 epochs)\n")
    print("| backbone outputs | epoch 1 s | steady epoch s (median of 2-4) | outside the epochs s | whole run s |")
    print("|---|---:|---:|---:|---:|")
    for cache, label in (("none", "recomputed every epoch (data.cache: none)"), ("memory", "cached (data.cache: memory)")):
        row = rows[cache]
        print(f"| {label} | {row['first_epoch_s']} | {row['steady_epoch_s']} | {row['outside_epochs_s']} "
              f"| {row['total_s']} |")
    print(f"\nsteady epoch, recomputed / cached: {ratio:.1f}x (target >= 10x). 'Outside the epochs' is start-up, "
          "preprocessor fitting, model building, saving, and for the cached run the one encoding pass.")
    if args.json:
        Path(args.json).write_text(json.dumps({"columns": columns, "rows": rows, "ratio": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
