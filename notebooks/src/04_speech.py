# %% [markdown]
# # Speech front ends: from WAV bytes to what the model sees
#
# **Author:** the mmkeras developers<br>
# **Date created:** 2026/11/23<br>
# **Description:** waveform, STFT, log-mel, MFCC and SpecAugment, drawn, on Speech Commands and
# the Free Spoken Digit Dataset.
#
# ## Introduction
#
# A speech encoder rarely reads raw samples. The audio *front end* turns a recording into a
# sequence of frames first: short overlapping windows, their spectrum (STFT), the spectrum on the
# mel scale that mimics the ear (log-mel), or a compact decorrelated summary of it (MFCC).
# Training adds SpecAugment, which hides random time and frequency bands so the model cannot rely
# on any single one.
#
# mmkeras computes all of this with `tf.signal` (see `mmkeras/data/columns/audio_ops.py`), so the
# **same ops** run in the `tf.data` pipeline and inside the exported SavedModel: TF Serving receives
# WAV bytes and computes the same features the model was trained on.

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
import dataclasses
import os
from pathlib import Path

SMALL = os.environ.get("MMKERAS_NOTEBOOK_SMALL", "0") == "1"
WORKDIR = Path(os.environ.get("MMKERAS_NOTEBOOK_WORKDIR", "nb_work")).absolute()
WORKDIR.mkdir(parents=True, exist_ok=True)
# Keras fixes its backend on first import; these notebooks use TensorFlow unless told otherwise.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import matplotlib.pyplot as plt
import mmkeras
import numpy as np
import tensorflow as tf
from mmkeras import configs
from mmkeras.config import AudioFeature
from mmkeras.data.columns import audio_ops, build_column

print("small settings:", SMALL, "| working folder:", WORKDIR)
print("mmkeras", mmkeras.__version__, "| keras", keras.__version__, "| backend", keras.backend.backend())

# %% [markdown]
# ## Data
#
# Two bundled sets: `speech_commands_mini` (one-second 16 kHz clips of 30 command words) and
# `digits`, whose audio column is the Free Spoken Digit Dataset (8 kHz recordings of digits).

# %%
commands = mmkeras.datasets.ensure_prepared("speech_commands_mini", WORKDIR / "data" / "speech_commands_mini")
digits = mmkeras.datasets.ensure_prepared("digits", WORKDIR / "data" / "digits")
with open(commands / "train.csv", newline="") as handle:
    command_row = next(row for row in csv.DictReader(handle) if row["label"] == "yes")
with open(digits / "train.csv", newline="") as handle:
    digit_row = next(csv.DictReader(handle))
print(command_row["audio"], "|", digit_row["audio"])

# %% [markdown]
# ### Decoding and resampling
#
# An audio column (`build_column`, the same object the training pipeline and the exported model
# use) decodes a file: it reads the WAV with pure TensorFlow ops, averages the channels to mono and
# resamples to the configured `sample_rate` in the FFT domain (band-limited, so a tone keeps its
# pitch). Both files are brought to 16 kHz here; `audio_ops.fix_length` then cuts or pads to
# `duration`.

# %%
DURATION = 0.5 if SMALL else 1.0
base = AudioFeature(sample_rate=16000, duration=DURATION, frame_length=400, frame_step=160,
                    fft_length=512, num_mel_bins=40, num_mfcc=13)
clips = {}
for name, path in (("speech commands: 'yes'", commands / command_row["audio"]),
                   (f"FSDD: '{digit_row['label']}' (8 kHz file)", digits / digit_row["audio"])):
    waveform = build_column("audio", base).decode(tf.io.read_file(str(path)))
    clips[name] = audio_ops.fix_length(waveform, base)
    print(f"{name}: {waveform.shape[0]} samples at 16 kHz -> {clips[name].shape[0]} after fix_length")

figure, axes = plt.subplots(1, 2, figsize=(12, 2.5))
for axis, (name, clip) in zip(axes, clips.items()):
    axis.plot(np.arange(clip.shape[0]) / base.sample_rate, clip.numpy(), linewidth=0.5)
    axis.set_title(name)
    axis.set_xlabel("seconds")
figure.tight_layout()
plt.show()

# %% [markdown]
# ## The four front ends
#
# `audio_ops.frontend` computes one of `waveform` (the samples as a `[samples, 1]` sequence),
# `stft` (magnitudes, `fft_length // 2 + 1` bins per frame), `logmel` (`num_mel_bins` mel bands, log
# scale) or `mfcc` (the first `num_mfcc` cepstral coefficients). `audio_ops.feature_shape` gives the
# shape without computing anything, which is how the model is sized before it sees data.

# %%
frontends = ["waveform", "stft", "logmel", "mfcc"]
for name in frontends:
    print(f"{name:9s}", audio_ops.feature_shape(dataclasses.replace(base, frontend=name)))

figure, axes = plt.subplots(len(clips), 4, figsize=(15, 5.5))
for row, (clip_name, clip) in enumerate(clips.items()):
    for column, name in enumerate(frontends):
        values = audio_ops.frontend(clip, dataclasses.replace(base, frontend=name)).numpy()
        axis = axes[row, column]
        if name == "waveform":
            axis.plot(values[:, 0], linewidth=0.5)
        else:
            shown = np.log1p(values) if name == "stft" else values
            axis.imshow(shown.T, origin="lower", aspect="auto", cmap="magma")
            axis.set_xlabel("frame")
        axis.set_title(f"{name}: {clip_name}", fontsize=9)
figure.tight_layout()
plt.show()

# %% [markdown]
# Log-mel keeps the time-frequency picture at a fraction of the STFT's size and is the usual input
# for CNN / CRNN speech encoders; MFCCs compress it further (good for small recurrent models).
# The waveform front end hands the raw samples to a 1-D convolutional encoder that learns its own
# filters, and needs more data to do so.
#
# ## SpecAugment
#
# `audio_ops.spec_augment(features, settings, seed)` zeroes `time_masks` bands of up to
# `time_mask_width` frames and `freq_masks` bands of up to `freq_mask_width` bins (Park et al.,
# 2019). It is stateless: the same seed gives the same masks, so runs are reproducible; the pipeline
# draws a fresh seed per example and epoch, and applies it only when training.

# %%
logmel = audio_ops.frontend(clips["speech commands: 'yes'"], base)
settings = {"time_masks": 2, "time_mask_width": 10, "freq_masks": 2, "freq_mask_width": 6}
figure, axes = plt.subplots(1, 4, figsize=(15, 2.8))
axes[0].imshow(logmel.numpy().T, origin="lower", aspect="auto", cmap="magma")
axes[0].set_title("log-mel")
for axis, seed in zip(axes[1:], (1, 2, 3)):
    masked = audio_ops.spec_augment(logmel, settings, tf.constant([seed, 0]))
    axis.imshow(masked.numpy().T, origin="lower", aspect="auto", cmap="magma")
    axis.set_title(f"SpecAugment, seed {seed}")
figure.tight_layout()
plt.show()

# %% [markdown]
# ## Model
#
# In a config, all of this is a few keys of an audio feature. The `speech_commands` config bundled
# with mmkeras asks for 16 kHz log-mel frames with SpecAugment and a CRNN encoder:

# %%
print(configs.path("speech_commands").read_text())

# %% [markdown]
# Its data paths (`data/speech_commands_mini/...`) are relative to the working directory; we point
# them at the folder prepared above, and with small settings at its first rows (every word
# represented), written beside the full manifests.

# %%
overrides = [f"data.features.audio.duration={DURATION}",
             *mmkeras.datasets.split_overrides(commands, {"train": 60, "validation": 30, "test": 30}
                                               if SMALL else None)]
if SMALL:
    overrides += ["train.epochs=1", "train.batch_size=16", "train.warmup_epochs=0"]
config = mmkeras.load_config("speech_commands", overrides)
print(config.data.features["audio"])

# %% [markdown]
# The `Preprocessor` adds one more step the plain functions above do not: after the front end it
# normalises each mel band with the mean and standard deviation measured on the **train** split
# (stored with the run, reused at serving time). `preprocess(..., training=True)` adds the random
# crop and SpecAugment; at inference the same clip always gives the same features.

# %%
preprocessor = mmkeras.fit_preprocessor(config)
raw = {"audio": tf.io.read_file(str(commands / command_row["audio"]))}
plain = preprocessor.preprocess(raw)["audio"].numpy()
augmented = preprocessor.preprocess(raw, training=True, seed=tf.constant([7, 0], tf.int64))["audio"].numpy()
print("features", plain.shape, "| normalised mean", round(float(plain.mean()), 3),
      "| std", round(float(plain.std()), 3))

figure, axes = plt.subplots(1, 2, figsize=(11, 2.8))
for axis, values, title in zip(axes, (plain, augmented), ("inference", "training (crop + SpecAugment)")):
    axis.imshow(values.T, origin="lower", aspect="auto", cmap="magma")
    axis.set_title(title)
figure.tight_layout()
plt.show()

model = mmkeras.build_model(config.model, preprocessor)
model.summary()

# %% [markdown]
# ## Training
#
# 205 clips for 30 words is very little data, which is exactly where augmentation matters. The full
# settings train 40 epochs; with small ones, one.

# %%
run = mmkeras.train(config, run_dir=WORKDIR / "runs" / "speech_commands", overwrite=True)
print({key: run.status().get(key) for key in ("epochs_done", "accuracy", "val_accuracy", "train_seconds")})

# %% [markdown]
# ## Evaluation

# %%
report = mmkeras.evaluate_run(run.run_dir)
print(f"test accuracy {report['accuracy']:.3f} on {report['num_examples']} clips "
      f"({preprocessor.num_classes} words, chance {1 / preprocessor.num_classes:.3f})")

# %% [markdown]
# ## Inference
#
# The run's model and preprocessor label a clip given as WAV bytes.

# %%
best = keras.models.load_model(run.best_model)
batch = preprocessor.preprocess_batch({"audio": tf.stack([raw["audio"]])})
probabilities = best.predict(batch, verbose=0)[0]
top = np.argsort(probabilities)[::-1][:3]
print("true: yes | top 3:", [(preprocessor.class_names[i], round(float(probabilities[i]), 3)) for i in top])

# %% [markdown]
# ## Conclusion
#
# Front end, normalisation and augmentation are configuration, not code: change `frontend`,
# `num_mel_bins` or `spec_augment` in the config and the pipeline, the model's input shape and the
# exported serving graph all follow.
