# %% [markdown]
# # Fusion methods compared: eleven ways to merge an image and a recording
#
# **Author:** the mmkeras developers<br>
# **Date created:** 2026/11/23<br>
# **Description:** train every registered fusion layer on the same task and compare accuracy, size
# and time.
#
# ## Introduction
#
# Once each modality has been encoded into a vector, a *fusion* layer merges them. The choice
# ranges from concatenation to attention and multiplicative interactions:
#
# | name | idea |
# |---|---|
# | `concat` | concatenate the vectors (and presence flags), then a Dense layer |
# | `mean`, `weighted_sum` | project each modality, average (learned weights for `weighted_sum`) |
# | `gated` | gated multimodal unit: sigmoid gates decide how much of each modality to use |
# | `self_attention` | a Transformer layer over the modality vectors |
# | `cross_attention` | each modality's tokens attend to the other's |
# | `tensor`, `low_rank` | outer-product interactions (Tensor Fusion; its low-rank factorisation) |
# | `late` | one classifier per modality, logits averaged |
# | `graph` | the modalities as nodes of a graph, a few rounds of attention-weighted messages (GAT) |
# | `hybrid` | an early-fusion classifier and one per modality, their logits mixed by learned weights |
#
# All of them obey one contract (pooled vectors, optional tokens, a presence mask), so a config swaps
# one for another with a single key. We compare them on `avdigits` (MNIST image + FSDD recording of
# the same digit) with one speaker, `theo`, **held out**: the test voices were never heard in
# training, which is where a fusion that leans on the image when the audio is unfamiliar shines.

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
import os
import time
from pathlib import Path

SMALL = os.environ.get("MMKERAS_NOTEBOOK_SMALL", "0") == "1"
WORKDIR = Path(os.environ.get("MMKERAS_NOTEBOOK_WORKDIR", "nb_work")).absolute()
WORKDIR.mkdir(parents=True, exist_ok=True)
# Keras fixes its backend on first import; these notebooks use TensorFlow unless told otherwise.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import mmkeras
import numpy as np
from IPython.display import Markdown, display
from mmkeras import configs

print("small settings:", SMALL, "| working folder:", WORKDIR)
print("mmkeras", mmkeras.__version__, "| keras", keras.__version__, "| backend", keras.backend.backend())

# %% [markdown]
# ## Data
#
# `holdout_speakers=["theo"]` puts all 500 of theo's recordings in the test split; the other five
# speakers make up train and validation.

# %%
folder = mmkeras.datasets.ensure_prepared("avdigits", WORKDIR / "data" / "avdigits_theo",
                                          holdout_speakers=["theo"])
for split in ("train", "validation", "test"):
    print(split, len((folder / f"{split}.csv").read_text().splitlines()) - 1, "rows")

# %% [markdown]
# The eleven experiments are configs bundled with mmkeras, `fusion/concat` ... `fusion/weighted_sum`.
# They are identical except for `model.fusion` (each fusion's own settings: heads, rank, projection
# size). Their data paths (`data/avdigits_theo/...`) are relative to the working directory; we point
# them at the folder prepared above, and with small settings at its first rows (every digit
# represented), written beside the full manifests.

# %%
print([name for name in configs.names() if name.startswith("fusion/")])
print(configs.path("fusion/concat").read_text())

# %%
import csv

EPOCHS = 1 if SMALL else 8
BATCH_SIZE = 16 if SMALL else 32
base_overrides = [f"train.epochs={EPOCHS}", f"train.batch_size={BATCH_SIZE}",
                  *mmkeras.datasets.split_overrides(folder, {"train": 48, "validation": 16, "test": 32}
                                                    if SMALL else None)]
if SMALL:
    base_overrides += [
        "data.features.image.height=16", "data.features.image.width=16",
        "data.features.audio.duration=0.5", "data.features.audio.num_mel_bins=16",
        "model.fusion.output_dim=32",
    ]
base_config = mmkeras.load_config("fusion/concat", base_overrides)

# %% [markdown]
# ## Model
#
# To compare fusions fairly, everything else stays fixed: one Preprocessor adapted on the train
# split and one set of `tf.data` pipelines, built once and reused by every model. Only
# `model.fusion` changes. The comparison is on the test split (the held-out speaker), so the
# validation split is not needed here. (`mmkeras train --config fusion/gated` runs one of these experiments
# through the full trainer, with checkpoints and logs.)

# %%
preprocessor = mmkeras.fit_preprocessor(base_config)
train_data = mmkeras.build_dataset(base_config, "train", preprocessor, training=True, batch_size=BATCH_SIZE)
test_data = mmkeras.build_dataset(base_config, "test", preprocessor, training=False,
                                  batch_size=BATCH_SIZE, drop_remainder=False)
features, labels = next(iter(train_data))
print({name: tuple(value.shape) for name, value in features.items()}, tuple(labels.shape))

# %% [markdown]
# The list of fusions comes from the registry, so a fusion you register yourself joins the
# comparison without touching this notebook: it gets `fusion/concat` with `model.fusion.type`
# changed, the others their own bundled config. (With small settings only three of them train,
# which is enough to check that the loop runs; the test suite checks every fusion on its own.)

# %%
names = mmkeras.registry.names("fusion")
if SMALL:
    names = [name for name in names if name in ("concat", "gated", "self_attention")]
print(names)


def build(name):
    if f"fusion/{name}" in configs.names():
        config = mmkeras.load_config(f"fusion/{name}", base_overrides)
    else:
        config = mmkeras.apply_overrides(base_config, [f"model.fusion.type={name}"])
    return config, mmkeras.build_model(config.model, preprocessor)

# %% [markdown]
# ## Training
#
# Each model gets the same seed, optimizer and number of epochs. The labels from `build_dataset`
# are class indices, hence the sparse cross-entropy.

# %%
results = []
for name in names:
    keras.utils.set_random_seed(0)
    config, model = build(name)
    model.compile(optimizer=keras.optimizers.AdamW(config.train.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(train_data, epochs=EPOCHS, verbose=0)
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(test_data, verbose=0)
    fusion_params = model.get_layer(f"{name}_fusion").count_params()
    results.append({"fusion": name, "accuracy": accuracy, "parameters": model.count_params(),
                    "fusion_parameters": fusion_params, "seconds": seconds})
    print(f"{name:16s} test accuracy {accuracy:.3f}  {model.count_params():8d} parameters  {seconds:5.1f} s")

# %% [markdown]
# ## Evaluation
#
# A table (sorted by accuracy on the held-out speaker) and the same numbers as bars. `parameters`
# counts the whole model; `fusion parameters` only the fusion layer, which is where the methods
# differ: `tensor` grows with the product of the projected sizes, `low_rank` keeps that in check.

# %%
rows = sorted(results, key=lambda r: -r["accuracy"])
table = ["| fusion | test accuracy | parameters | fusion parameters | train seconds |", "|---|---|---|---|---|"]
table += [f"| `{r['fusion']}` | {r['accuracy']:.3f} | {r['parameters']:,} | {r['fusion_parameters']:,} "
          f"| {r['seconds']:.1f} |" for r in rows]
display(Markdown("\n".join(table)))

# %%
import matplotlib.pyplot as plt

figure, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for axis, key, title in zip(axes, ("accuracy", "fusion_parameters", "seconds"),
                            ("test accuracy (held-out speaker)", "fusion parameters", "training seconds")):
    axis.bar([r["fusion"] for r in results], [r[key] for r in results], color="tab:blue")
    axis.set_title(title)
    axis.tick_params(axis="x", rotation=60)
figure.tight_layout()
plt.show()

# %% [markdown]
# With small settings the accuracies are noise (48 training rows, one epoch); the parameter counts
# and relative times are already meaningful. Run the notebook with the full settings on a GPU for
# accuracies worth comparing, and to make the comparison harder, prepare `avdigits` with
# `hard=True` (noisy audio, occluded images), where neither modality suffices alone and the way
# they are merged matters more.
#
# ## Inference
#
# A trained fusion model predicts like any Keras model on a batch of preprocessed features. It also
# answers when a modality is missing: zero its presence flag and the fusion masks it out.

# %%
probabilities = model.predict(features, verbose=0)
without_audio = dict(features, audio_present=np.zeros_like(features["audio_present"]))
print("true     :", labels.numpy()[:8].tolist())
print("both     :", probabilities.argmax(-1)[:8].tolist())
print("no audio :", model.predict(without_audio, verbose=0).argmax(-1)[:8].tolist())

# %% [markdown]
# ## Conclusion
#
# Every fusion in the registry trained on the same pipeline with one config key changed. To add
# your own, subclass `mmkeras.layers.Fusion`, register it with
# `@mmkeras.registry.register("fusion", "my_fusion")`, and it appears in `registry.names("fusion")`,
# in this comparison and in the test suite's fusion checks.
