# %% [markdown]
# # Quickstart: one model for text, images and speech
#
# **Author:** the mmkeras developers<br>
# **Date created:** 2026/11/23<br>
# **Description:** train, evaluate, export and query a three-branch multimodal classifier.
#
# ## Introduction
#
# Many real examples come with more than one kind of input: a product photo and its title, a
# voice note and its transcript. A *multimodal* classifier reads all of them, with one encoder per
# modality and a *fusion* layer that merges what the encoders found.
#
# This notebook walks the whole mmkeras path on the bundled `digits` dataset, where each example is
# a digit given three ways: a short written word (`seven`, `sieben`, `7`), an MNIST image and a
# spoken recording from the Free Spoken Digit Dataset. We will:
#
# 1. prepare the data as files plus CSV manifests,
# 2. build the three-branch Functional model (Embedding text, Conv2D image, Conv1D speech),
# 3. train it into a run directory,
# 4. read the evaluation report (accuracy, calibration, what each modality contributes),
# 5. export a SavedModel that TF Serving answers with raw text, PNG bytes and WAV bytes,
# 6. predict on a test example.

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
# `mmkeras.datasets.ensure_prepared` writes the bundled dataset as plain files (PNG images, WAV
# recordings) and `train.csv` / `validation.csv` / `test.csv` manifests, once; later calls reuse
# it. A manifest is the format every other part of mmkeras reads, so your own data only needs one.

# %%
folder = mmkeras.datasets.ensure_prepared("digits", WORKDIR / "data" / "digits")
print((folder / "train.csv").read_text().splitlines()[:4])

# %% [markdown]
# Each row names a text, an image file and an audio file, plus the label. The text column is
# **synthetic** (generated from the label, with typos and other languages), and 15% of its cells
# are blank: a missing modality, which the model must handle without reading it as data.

# %%
import csv

with open(folder / "test.csv", newline="") as handle:
    example = next(csv.DictReader(handle))
print({key: example[key] for key in ("text", "image", "audio", "label")})
display(Image(filename=str(folder / example["image"]), width=84))

# %% [markdown]
# The experiment is described by a YAML config with four sections (`data`, `model`, `train`,
# `export`). mmkeras ships a few, loadable by name: this is `digits`, the one `mmkeras train` uses
# when given no `--config`.

# %%
print(configs.names())
print(configs.path("digits").read_text())

# %% [markdown]
# A bundled config's data paths (`data/digits/...`) are relative to the working directory, and any
# key can be overridden without editing the file, exactly like `--set` on the command line. We point
# the three splits at the folder prepared above with `mmkeras.datasets.split_overrides`; with small
# settings, at its first few dozen rows (every digit represented), written beside the full manifests.

# %%
overrides = mmkeras.datasets.split_overrides(folder) if not SMALL else [
    *mmkeras.datasets.split_overrides(folder, {"train": 64, "validation": 32, "test": 32}),
    "train.epochs=1", "train.batch_size=16",
    "data.features.image.height=16", "data.features.image.width=16",
    "data.features.audio.duration=0.5", "data.features.audio.num_mel_bins=16",
]
config = mmkeras.load_config("digits", overrides)
print(config.model)
print(config.train.epochs, "epochs, batch size", config.train.batch_size)

# %% [markdown]
# ## Model
#
# The `Preprocessor` turns raw cells into tensors: it learns the text vocabulary, the class names
# and the audio feature statistics from the **train** split only, and the same object later runs
# inside the exported SavedModel. `mmkeras.build_model` then sizes the encoders from it.
#
# Each column has a companion `<column>_present` input (1 or 0): that is how a blank cell reaches
# the fusion layer, which masks the modality instead of reading zeros as a real example.

# %%
preprocessor = mmkeras.fit_preprocessor(config)
print("classes:", preprocessor.class_names)
model = mmkeras.build_model(config.model, preprocessor)
model.summary()

# %% [markdown]
# ## Training
#
# `mmkeras.train` does what the previous cell did and then trains: it writes the run directory
# (resolved config, adapted preprocessor, best and last `.keras` models, a CSV and TensorBoard log)
# and resumes by itself if the same run is started again after a crash. `overwrite=True` starts
# afresh each time the notebook runs.

# %%
run = mmkeras.train(config, run_dir=WORKDIR / "runs" / "quickstart", overwrite=True)
status = run.status()
print({key: status.get(key) for key in ("status", "epochs_done", "parameters", "train_seconds",
                                         "accuracy", "val_accuracy")})
print(sorted(path.name for path in run.run_dir.iterdir()))

# %% [markdown]
# ## Evaluation
#
# `mmkeras.evaluate_run` scores the best checkpoint on the test split and writes `report.json`,
# `report.md` and two pictures. Besides accuracy and macro F1 it reports the expected calibration
# error (are 90%-confident answers right 90% of the time?) and a *modality ablation*: the accuracy
# when one modality is removed through its presence flag, which shows what each branch contributes.

# %%
report = mmkeras.evaluate_run(run.run_dir)
print(f"accuracy {report['accuracy']:.3f}  macro F1 {report['macro_f1']:.3f}  ECE {report['ece']:.3f}"
      f"  on {report['num_examples']} test examples")
for column, row in report["modality_ablation"].items():
    print(f"without {column:5s}: accuracy {row['accuracy']:.3f} ({row['delta']:+.3f})")
display(Image(filename=str(run.run_dir / "confusion_matrix.png"), width=420))
display(Image(filename=str(run.run_dir / "reliability_diagram.png"), width=320))

# %% [markdown]
# With small settings (64 training rows, one epoch) the numbers are close to chance; run the
# notebook with the default settings (or `make demo`) to see what the model learns, and which
# branch it leans on: a large drop in the ablation means the model depends on that modality.
#
# ## Can we trust it?
#
# The same report answers three more questions.
#
# **Is the probability right?** After training, `train` fitted one *temperature* T on the
# validation split (temperature scaling, Guo et al. 2017): the probabilities become
# `softmax(logits / T)`, which lowers the negative log-likelihood without changing any predicted
# class. The report's ECE and NLL are the calibrated ones, and the exported model applies T too.

# %%
calibration = report["calibration"]
print(f"T = {calibration['temperature']:.3f} ({calibration['fitted_on']})")
print(f"ECE {calibration['ece_before']:.4f} -> {calibration['ece_after']:.4f}, "
      f"NLL {calibration['nll_before']:.4f} -> {calibration['nll_after']:.4f} on the test split")

# %% [markdown]
# **Which modality drove the decisions?** Integrated gradients follow a straight path from the
# input where every modality is *missing* to the real example and add up how much each input
# moved the predicted class's probability; summed per modality and normalised, they give each
# modality's share. **What if a modality is missing or noisy?** The robustness section gives the
# accuracy for every subset of present modalities and a noise curve per modality.

# %%
print("attribution shares:", {c: round(s, 3) for c, s in report["attribution"]["shares"].items()})
print("accuracy by modalities present:", report["robustness"]["subsets"])
display(Image(filename=str(run.run_dir / "robustness.png"), width=900))

# %% [markdown]
# `explain_example` (or `mmkeras explain --run-dir ... --index 0 --out explain.png`) does the
# attribution for one example and draws it: the image with its attribution, the spectrogram, the
# tokens coloured by theirs, and the modality shares. A JSON file with the numbers goes beside it.

# %%
from mmkeras.evaluation.explain import explain_example

explained = explain_example(run.run_dir, split="test", index=0, out=WORKDIR / "explain.png")
print("prediction:", explained["prediction"], "| shares:", {c: round(s, 3) for c, s in explained["shares"].items()})
display(Image(filename=str(WORKDIR / "explain.png"), width=900))

# %% [markdown]
# ## Export
#
# `mmkeras.export_run` writes `BASE/<version>/`, the layout TF Serving watches. The SavedModel's
# `serving_default` signature takes **raw** inputs, one string tensor per column: the text itself,
# the PNG bytes and the WAV bytes. Decoding, resampling, log-mel features and normalisation all
# happen inside the graph, with the same Preprocessor state as in training.

# %%
export_path = mmkeras.export_run(run.run_dir, WORKDIR / "exports" / "digits", version=1, overwrite=True)
print(export_path)
print(sorted(path.name for path in export_path.iterdir()))

# %% [markdown]
# ## Inference
#
# `predict_files` (what `mmkeras predict --model ... --text ... --image ... --audio ...` runs) loads
# the SavedModel and returns the top-k classes for one example given as a text and files. We ask
# it about the first test example; any modality can be left out.

# %%
from mmkeras.export.predict import predict_files

files = {key: str(folder / example[key]) for key in ("image", "audio") if example[key]}
print("label:", example["label"], "| text:", repr(example["text"]))
for name, probability in predict_files(export_path, text=example["text"], **files):
    print(f"  {name}: {probability:.3f}")
print("image only:", predict_files(export_path, image=files["image"])[0])

# %% [markdown]
# ## Conclusion
#
# From a manifest to a served model took five calls: `load_config`, `train`, `evaluate_run`,
# `export_run` and a prediction. The same steps exist on the command line (`mmkeras train --config
# digits`, `evaluate`, `export`, `predict`). Next:
#
# - `02_fusion_methods.ipynb` compares every fusion layer on one task,
# - `03_your_own_data.ipynb` starts from your own folder of files,
# - `04_speech.ipynb` looks inside the audio front ends,
# - `05_tpu_gpu_and_scaling.ipynb` trains on GPUs and TPUs,
# - `06_tf_serving.ipynb` serves the export with TF Serving.
