# %% [markdown]
# # GPUs, TPUs and scaling up
#
# **Author:** the mmkeras developers<br>
# **Date created:** 2026/11/23<br>
# **Description:** strategies, mixed precision, XLA, `steps_per_execution` and TFRecord shards; the
# JAX path for Colab TPUs and the TensorFlow `TPUStrategy` path.
#
# ## Introduction
#
# The model code of mmkeras uses only `keras.ops` and `keras.layers`, so the same model trains on
# the TensorFlow and the JAX backend. Where it runs is configuration, in the `train` section:
#
# | key | values | what it does |
# |---|---|---|
# | `backend` | `tensorflow`, `jax` | Keras backend (JAX is how Colab TPUs train today) |
# | `strategy` | `auto`, `cpu`, `gpu`, `mirrored`, `tpu`, `multi_worker` (TF); `data_parallel` (JAX) | devices and replicas |
# | `precision` | `float32`, `mixed_float16` (GPU), `mixed_bfloat16` (TPU, recent CPUs) | compute dtype |
# | `jit_compile` | `true` / `false` | compile the train step with XLA |
# | `steps_per_execution` | integer | run several steps per call, less Python overhead |
# | `batch_size` | integer | the **global** batch, split among replicas |
#
# This notebook runs on whatever it finds (a CPU here); the TPU cell runs only on a TPU.

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
from pathlib import Path

SMALL = os.environ.get("MMKERAS_NOTEBOOK_SMALL", "0") == "1"
WORKDIR = Path(os.environ.get("MMKERAS_NOTEBOOK_WORKDIR", "nb_work")).absolute()
WORKDIR.mkdir(parents=True, exist_ok=True)

# A TPU must be known before Keras is imported: on a Colab TPU runtime we train with JAX.
ON_TPU = bool(os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME")) or os.path.exists("/dev/accel0")
if ON_TPU:
    os.environ["KERAS_BACKEND"] = "jax"
# Keras fixes its backend on first import; these notebooks use TensorFlow unless told otherwise.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import mmkeras
import tensorflow as tf

print("small settings:", SMALL, "| working folder:", WORKDIR)
print("mmkeras", mmkeras.__version__, "| keras", keras.__version__, "| backend", keras.backend.backend())

# %% [markdown]
# ## Data
#
# The `digits` dataset and its bundled config, as in the quickstart: the config's splits pointed
# at the prepared folder (with small settings, at its first rows, every digit represented).

# %%
folder = mmkeras.datasets.ensure_prepared("digits", WORKDIR / "data" / "digits")

# %%
overrides = mmkeras.datasets.split_overrides(folder) if not SMALL else [
    *mmkeras.datasets.split_overrides(folder, {"train": 64, "validation": 32, "test": 32}),
    "train.epochs=1", "train.batch_size=16",
    "data.features.image.height=16", "data.features.image.width=16",
    "data.features.audio.duration=0.5", "data.features.audio.num_mel_bins=16",
]
config = mmkeras.load_config("digits", overrides)

# %% [markdown]
# ### TFRecord shards
#
# On a TPU the input pipeline must keep up with the accelerator, and on Cloud TPUs it must read from
# Cloud Storage (`gs://`), not from the local disk. Both argue for a few large files instead of
# thousands of small ones. `mmkeras.data.tfrecord.write_tfrecords` packs each split into shards
# holding the **encoded** files (PNG and WAV bytes, the text, the label): decoding still happens in
# the pipeline, with the same Preprocessor, so nothing changes but where the bytes come from.
# Pointing `data.train` at a glob of shards is all a config needs.

# %%
from mmkeras.data import tfrecord

shards = WORKDIR / "tfrecords" / "digits"
for split in ("train", "validation", "test"):
    paths = tfrecord.write_tfrecords(config, split, str(shards), num_shards=4)
    records = sum(1 for _ in tf.data.TFRecordDataset(paths))
    print(split, [Path(p).name for p in paths], records, "records")
tfrecord_overrides = [f"data.{split}={shards / (split + '-*.tfrecord')}" for split in ("train", "validation", "test")]
# On Google Cloud, copy the folder to a bucket and use gs://bucket/digits/train-*.tfrecord instead.

# %% [markdown]
# ## Model
#
# ### Strategies
#
# `train.strategy: auto` picks a TPU if one is attached, else `MirroredStrategy` over several GPUs,
# else one GPU or the CPU. `build_strategy` is what the trainer calls; it also checks the speed
# settings against the strategy and refuses the combinations that do not work.

# %%
from mmkeras.training.strategy import build_strategy

print("devices:", [d.name for d in tf.config.list_logical_devices()])
plan = build_strategy(config.train)
print(f"strategy {plan.name}: {plan.num_replicas} replica(s)")

# %% [markdown]
# ### Mixed precision
#
# With `precision: mixed_bfloat16` (TPUs, recent CPUs) or `mixed_float16` (NVIDIA GPUs) layers
# compute in 16 bits and keep float32 weights; the fusion and the softmax head still return float32.
# It halves activation memory and is much faster on hardware with 16-bit matrix units.

# %%
preprocessor = mmkeras.fit_preprocessor(config)
keras.config.set_dtype_policy("mixed_bfloat16")
try:
    mixed = mmkeras.build_model(config.model, preprocessor)
finally:
    keras.config.set_dtype_policy("float32")
for layer in mixed.layers:
    if layer.weights and "fusion" in layer.name:
        print(layer.name, "computes in", layer.compute_dtype, "| weights in", layer.variable_dtype)
print("model output dtype:", mixed.outputs[0].dtype)

# %% [markdown]
# ## Training
#
# One run with every speed setting on, reading the TFRecord shards: XLA (`jit_compile`), several
# steps per execution and bfloat16 compute. (Under `mirrored` and `multi_worker` Keras 3 on TF cannot
# use `jit_compile` or `steps_per_execution > 1`; `build_strategy` says so instead of failing
# obscurely.) XLA compiles the train step before the first one runs, which pays off over many steps
# on an accelerator; with small settings (four steps on a CPU) the run leaves it out.

# %%
fast = mmkeras.apply_overrides(config, [
    *tfrecord_overrides, "train.strategy=auto", f"train.jit_compile={not SMALL}",
    "train.steps_per_execution=2", "train.precision=mixed_bfloat16",
])
run = mmkeras.train(fast, run_dir=WORKDIR / "runs" / "scaling", overwrite=True)
status = run.status()
print({key: status.get(key) for key in ("backend", "strategy", "replicas", "precision", "jit_compile",
                                         "epochs_done", "train_seconds", "val_accuracy")})

# %% [markdown]
# ## Evaluation
#
# The report reads the run's own config, so it evaluates from the TFRecord shards too.

# %%
report = mmkeras.evaluate_run(run.run_dir)
print(f"test accuracy {report['accuracy']:.3f} on {report['num_examples']} examples")

# %% [markdown]
# ## On a Colab TPU: the JAX path
#
# Colab's TPU runtimes come with JAX. Keras picks its backend at import, so the Setup cell above set
# `KERAS_BACKEND=jax` **before** importing Keras when it found a TPU. The config then asks for:
#
# ```yaml
# train:
#   backend: jax
#   strategy: data_parallel      # keras.distribution.DataParallel over the 8 TPU cores
#   precision: mixed_bfloat16    # the TPU's native matrix dtype
#   jit_compile: true
#   batch_size: 256              # global: 32 per core
# ```
#
# The `tf.data` pipeline still runs on the host CPU (TensorFlow is only the input pipeline there),
# and the exported SavedModel is produced with `jax2tf`, so TF Serving serves it the same way. The
# cell below runs only on a TPU.

# %%
if ON_TPU:
    tpu_config = mmkeras.apply_overrides(config, [
        "train.backend=jax", "train.strategy=data_parallel", "train.precision=mixed_bfloat16",
        "train.jit_compile=true", "train.batch_size=256", "train.epochs=10",
    ])
    tpu_run = mmkeras.train(tpu_config, run_dir=WORKDIR / "runs" / "tpu_jax", overwrite=True)
    print(tpu_run.status())
else:
    print("no TPU attached: skipping the JAX TPU run")

# %% [markdown]
# ### TensorFlow runtimes with a TPU: `TPUStrategy`
#
# On a runtime whose TensorFlow has TPU support (Cloud TPU VMs with `tensorflow-tpu`), keep the
# TensorFlow backend and set `train.strategy: tpu`: mmkeras connects a `TPUClusterResolver`
# (`tpu="local"` on TPU VMs), initialises the TPU system and builds the model under
# `tf.distribute.TPUStrategy`. TPUs need static shapes, so the trainer drops the last partial batch
# of every split. From the command line:
#
# ```bash
# mmkeras train --config digits --run-dir runs/tpu \
#     --set train.strategy=tpu --set train.precision=mixed_bfloat16 \
#     --set train.batch_size=1024 --set train.steps_per_execution=32 \
#     --set data.train='gs://BUCKET/digits/train-*.tfrecord' \
#     --set data.validation='gs://BUCKET/digits/validation-*.tfrecord'
# ```
#
# With several GPUs, `train.strategy: mirrored` (one machine) or `multi_worker` (several machines,
# described by `TF_CONFIG`) are the TensorFlow choices; `data_parallel` the JAX one.
#
# ## Inference
#
# Whatever trained it, a run is evaluated and exported the same way; the speed settings do not
# change the model, only how it was trained.

# %%
best = keras.models.load_model(run.best_model)
print(best.name, "| inputs:", sorted(best.input.keys()) if isinstance(best.input, dict) else best.input_names)

# %% [markdown]
# ## Conclusion
#
# Scaling is four keys of the `train` section plus, for TPUs, TFRecord shards. Start with
# `strategy: auto` and `precision: float32`; turn on `mixed_*` precision and a larger
# `steps_per_execution` when the accelerator is idle waiting for Python, and shards when it waits
# for the disk.
