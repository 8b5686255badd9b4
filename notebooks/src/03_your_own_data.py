# %% [markdown]
# # Your own data: from a folder of files to a trained model
#
# **Author:** the mmkeras developers<br>
# **Date created:** 2026/11/23<br>
# **Description:** write a manifest for a folder of images and texts, find the broken files before
# training does, then train.
#
# ## Introduction
#
# Real datasets arrive as folders, not as tidy tensors. mmkeras reads a **manifest**: a CSV (or
# JSONL) with one row per example, one column per modality naming a file or holding the text, and
# a label column. Paths are relative to the manifest. This notebook:
#
# 1. builds a typical "own data" folder (images sorted into one folder per class, a `.txt` beside
#    each image) from the bundled Noto Emoji set,
# 2. writes the manifest and the train / validation / test split,
# 3. breaks a few rows on purpose and lets `mmkeras.validate` find them,
# 4. trains an image + text model on the clean data.

# %% [markdown]
# ## Setup
#
# mmkeras is not on PyPI. On Colab, the first cell installs a wheel built from the repository; anywhere
# else it does nothing (in a checkout, `pip install -e .` has already installed mmkeras). To get the
# wheel to Colab:
#
# 1. in a checkout of the repository, run `make wheel`: it writes `dist/mmkeras-0.1.0-py3-none-any.whl`
#    (the package with its bundled configs and datasets, about 30 MB);
# 2. in Colab, open the *Files* pane (the folder icon on the left) and upload that file into the
#    session's working folder, `/content` (or into `/content/dist`);
# 3. run the cell. Instead of uploading, you may set `MMKERAS_WHEEL` to the wheel's path (on a mounted
#    Drive, say) or an https URL, in a cell above this one:
#    `%env MMKERAS_WHEEL=/content/drive/MyDrive/mmkeras-0.1.0-py3-none-any.whl`.
#
# pip installs mmkeras's dependencies (TensorFlow 2.21, Keras 3, KerasHub, ...) from PyPI with it. If
# Colab then asks to restart the session (pip replaced a package it had loaded), restart and run the
# notebook from the top: the cell finds mmkeras installed.

# %%
import glob
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    wheels = ([os.environ["MMKERAS_WHEEL"]] if os.environ.get("MMKERAS_WHEEL")
              else sorted(glob.glob("dist/mmkeras-*.whl") + glob.glob("mmkeras-*.whl"), key=os.path.getmtime))
    if not wheels:
        raise FileNotFoundError(f"no mmkeras wheel in {os.getcwd()} or {os.getcwd()}/dist: build one with "
                                "`make wheel` in the repository and upload dist/mmkeras-*.whl here, or set "
                                "MMKERAS_WHEEL to its path or URL")
    print("pip install", wheels[-1])
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", wheels[-1]], check=True)

# %% [markdown]
# One switch sizes everything. `MMKERAS_NOTEBOOK_SMALL=1` (what the test suite sets) keeps a few
# dozen rows, one epoch, 16x16 images and half a second of audio, so the notebook runs in under a
# minute on two CPU cores; without it the defaults are meant for a Colab GPU or TPU runtime.
# Everything the notebook writes goes under `MMKERAS_NOTEBOOK_WORKDIR` (default `./nb_work`).

# %%
import csv
import os
import random
import shutil
from pathlib import Path

SMALL = os.environ.get("MMKERAS_NOTEBOOK_SMALL", "0") == "1"
WORKDIR = Path(os.environ.get("MMKERAS_NOTEBOOK_WORKDIR", "nb_work")).absolute()
WORKDIR.mkdir(parents=True, exist_ok=True)
# Keras fixes its backend on first import; these notebooks use TensorFlow unless told otherwise.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import mmkeras
from IPython.display import Image, display
from mmkeras import configs

print("small settings:", SMALL, "| working folder:", WORKDIR)
print("mmkeras", mmkeras.__version__, "| keras", keras.__version__, "| backend", keras.backend.backend())

# %% [markdown]
# ## Data
#
# The bundled `emoji` set gives us real files: Noto Color Emoji PNGs, each with its Unicode name and
# keywords, in 8 groups. We rearrange them into the layout people usually have:
# `my_emoji/<class>/<name>.png` plus `my_emoji/<class>/<name>.txt`.

# %%
source = mmkeras.datasets.ensure_prepared("emoji", WORKDIR / "data" / "emoji")
PER_CLASS = 12 if SMALL else None  # None keeps every image

own = WORKDIR / "my_emoji"
shutil.rmtree(own, ignore_errors=True)
with open(source / "train.csv", newline="") as handle:
    rows = list(csv.DictReader(handle))
for split in ("validation", "test"):
    with open(source / f"{split}.csv", newline="") as handle:
        rows += list(csv.DictReader(handle))
taken = {}
for row in rows:
    if PER_CLASS and taken.get(row["label"], 0) >= PER_CLASS:
        continue
    taken[row["label"]] = taken.get(row["label"], 0) + 1
    target = own / row["label"] / Path(row["image"]).name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / row["image"], target)
    target.with_suffix(".txt").write_text(row["text"])
print({label: count for label, count in sorted(taken.items())})
print(sorted(p.name for p in (own / "Smileys & Emotion").iterdir())[:4])

# %% [markdown]
# ### Writing the manifest
#
# Walk the folder: the class is the folder name, the image is the PNG's path relative to the
# manifest, the text is the `.txt` file's content. Then split each class 70 / 15 / 15 with a fixed
# seed, so that every class is in every split and the split never changes between runs.

# %%
def write_manifests(folder, seed=0):
    by_class = {}
    for image in sorted(folder.glob("*/*.png")):
        text_file = image.with_suffix(".txt")
        text = text_file.read_text().strip() if text_file.exists() else ""
        by_class.setdefault(image.parent.name, []).append(
            {"image": image.relative_to(folder).as_posix(), "text": text, "label": image.parent.name})
    splits = {"train": [], "validation": [], "test": []}
    rng = random.Random(seed)
    for label, examples in sorted(by_class.items()):
        rng.shuffle(examples)
        held = max(1, round(0.15 * len(examples)))
        splits["validation"] += examples[:held]
        splits["test"] += examples[held : 2 * held]
        splits["train"] += examples[2 * held :]
    for split, examples in splits.items():
        with open(folder / f"{split}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["image", "text", "label"])
            writer.writeheader()
            writer.writerows(examples)
    return {split: len(examples) for split, examples in splits.items()}


print(write_manifests(own))
print((own / "train.csv").read_text().splitlines()[:3])

# %% [markdown]
# The config is `emoji`, bundled with mmkeras, with its three splits pointed at our manifests. It
# reads the `image` column as a 48x48 RGB image (the RGBA glyphs are converted) and `text` as up to
# 16 tokens. Its `data.prepare` key names the bundled dataset to prepare when the manifests are
# missing; ours are not that dataset, so we switch it off.

# %%
print(configs.path("emoji").read_text())

# %%
small = ["train.epochs=1", "train.batch_size=16",
         "data.features.image.height=16", "data.features.image.width=16"] if SMALL else []
manifests = [f"data.{split}={own / (split + '.csv')}" for split in ("train", "validation", "test")]
config = mmkeras.load_config("emoji", ["data.prepare=null", *manifests, *small])
print(config.data.train)

# %% [markdown]
# ### Finding broken rows before training does
#
# Real folders contain surprises: a file that was moved, an upload cut short, an empty cell. A
# training job that meets one of them hours in is expensive, so `mmkeras.validate` decodes **every**
# file the manifests name, in parallel, with the same decoders the pipeline uses, and returns the
# bad rows (`mmkeras.data.validate.validate`, which `mmkeras data validate` prints). To see it
# work we copy the train manifest and append four rows:
#
# - an image that does not exist,
# - a PNG truncated to its first bytes,
# - an empty (0-byte) PNG,
# - a row whose image cell is blank.
#
# The blank cell is **not** an error: a blank cell is a missing modality, and the model handles it
# through the presence flag. The other three are.

# %%
broken = WORKDIR / "my_emoji_broken"
shutil.rmtree(broken, ignore_errors=True)
broken.mkdir()
good_png = own / next(csv.DictReader(open(own / "train.csv", newline="")))["image"]
(broken / "truncated.png").write_bytes(good_png.read_bytes()[:40])
(broken / "empty.png").write_bytes(b"")
with open(own / "train.csv", newline="") as handle:
    rows = list(csv.DictReader(handle))
rows += [
    {"image": "missing/not_here.png", "text": "a lost file", "label": "Objects"},
    {"image": str(broken / "truncated.png"), "text": "an upload cut short", "label": "Objects"},
    {"image": str(broken / "empty.png"), "text": "an empty file", "label": "Symbols"},
    {"image": "", "text": "no picture for this one", "label": "Symbols"},
]
with open(own / "train_broken.csv", "w", newline="") as handle:
    writer = csv.DictWriter(handle, fieldnames=["image", "text", "label"])
    writer.writeheader()
    writer.writerows(rows)
print(len(rows), "rows; the last four were added")

# %%
from mmkeras.data.validate import format_bad_rows, validate

broken_config = mmkeras.apply_overrides(config, [f"data.train={own / 'train_broken.csv'}"])
bad_rows = validate(broken_config)
print(format_bad_rows(bad_rows))

# %% [markdown]
# Each bad row names the split, the row number in the manifest (the header is not counted), the
# column, the reason and the path as written. The command line does the same and exits with status
# 1 when anything is wrong, so it can gate a training job in CI. `mmkeras.cli.main` is what the
# `mmkeras` command runs; called here with the same arguments, it prints what the terminal would:

# %%
from mmkeras.cli import main as mmkeras_command

arguments = ["data", "validate", "--config", "emoji", "--set", "data.prepare=null",
             "--set", f"data.train={own / 'train_broken.csv'}",
             "--set", f"data.validation={own / 'validation.csv'}",
             "--set", f"data.test={own / 'test.csv'}"]
print("$ mmkeras data validate --config emoji --set data.train=.../train_broken.csv ...")
print("exit status:", mmkeras_command(arguments))

# %% [markdown]
# Two ways forward: fix the files (the usual answer), or set `data.on_error: skip`, which drops a
# bad row when the pipeline meets it and logs the row, column and reason with a running count. Here
# the skipping pipeline reads the broken manifest without stopping; the rows it keeps are the
# original ones plus the blank-image row.

# %%
skipping = mmkeras.apply_overrides(broken_config, ["data.on_error=skip"])
preprocessor = mmkeras.fit_preprocessor(config)
dataset = mmkeras.build_dataset(skipping, "train", preprocessor, training=False, batch_size=64,
                                drop_remainder=False)
kept = sum(int(labels.shape[0]) for _, labels in dataset)
print(f"{kept} of {len(rows)} rows kept")

# %% [markdown]
# ## Model
#
# Text and image each get an encoder (a bag of embeddings, a small CNN), merged by a `gated` fusion,
# which learns per example how much to trust each modality: useful here, since an emoji's name
# often gives its group away while the picture helps when the name is ambiguous.

# %%
model = mmkeras.build_model(config.model, preprocessor)
print(model.count_params(), "parameters;", preprocessor.num_classes, "classes:", preprocessor.class_names)

# %% [markdown]
# ## Training
#
# On the clean manifests.

# %%
run = mmkeras.train(config, run_dir=WORKDIR / "runs" / "my_emoji", overwrite=True)
print({key: run.status().get(key) for key in ("epochs_done", "accuracy", "val_accuracy", "train_seconds")})

# %% [markdown]
# ## Evaluation

# %%
report = mmkeras.evaluate_run(run.run_dir)
print(f"test accuracy {report['accuracy']:.3f}, macro F1 {report['macro_f1']:.3f}")
for column, row in report["modality_ablation"].items():
    print(f"without {column}: {row['accuracy']:.3f} ({row['delta']:+.3f})")

# %% [markdown]
# ## Inference
#
# The trained run's preprocessor turns raw cells (a text, the bytes of an image, "" for a missing
# one) into model inputs, exactly as the exported model will.

# %%
import numpy as np
import tensorflow as tf

from mmkeras.data.preprocessor import Preprocessor

trained = Preprocessor.load(str(run.preprocessor_dir))
best = keras.models.load_model(run.best_model)
test_row = next(csv.DictReader(open(own / "test.csv", newline="")))
raw = {"text": tf.constant([test_row["text"]]),
       "image": tf.constant([(own / test_row["image"]).read_bytes()])}
probabilities = best.predict(trained.preprocess_batch(raw), verbose=0)[0]
display(Image(filename=str(own / test_row["image"]), width=48))
print(repr(test_row["text"]), "| true:", test_row["label"],
      "| predicted:", trained.class_names[int(np.argmax(probabilities))])

# %% [markdown]
# ## Conclusion
#
# Bringing your own data means writing a manifest: one row per example, one column per modality,
# paths relative to the file. Run `mmkeras data validate` on it before the first long training job;
# it reads every file once and tells you exactly which rows to fix.
