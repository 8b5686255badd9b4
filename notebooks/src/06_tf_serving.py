# %% [markdown]
# # Serving with TF Serving: raw text, image bytes and WAV bytes in
#
# **Author:** the mmkeras developers<br>
# **Date created:** 2026/11/23<br>
# **Description:** export a run, inspect its signatures and warm-up file, build REST requests and
# serve it with the stock `tensorflow/serving` image.
#
# ## Introduction
#
# A served model should take what clients have: a string, a JPEG from a phone, a WAV from a
# microphone. `mmkeras.export_run` writes a SavedModel whose `serving_default` signature does
# exactly that: decoding, resizing, resampling, log-mel features and normalisation are TensorFlow
# ops inside the graph, driven by the same Preprocessor state as training. Only core TensorFlow ops
# are used, so the stock TF Serving binary runs it.

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
import base64
import csv
import json
import os
from pathlib import Path

SMALL = os.environ.get("MMKERAS_NOTEBOOK_SMALL", "0") == "1"
WORKDIR = Path(os.environ.get("MMKERAS_NOTEBOOK_WORKDIR", "nb_work")).absolute()
WORKDIR.mkdir(parents=True, exist_ok=True)
# Keras fixes its backend on first import; these notebooks use TensorFlow unless told otherwise.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import mmkeras

print("small settings:", SMALL, "| working folder:", WORKDIR)
print("mmkeras", mmkeras.__version__, "| keras", keras.__version__, "| backend", keras.backend.backend())

# %% [markdown]
# ## Data
#
# The `digits` dataset (text, image, audio).

# %%
folder = mmkeras.datasets.ensure_prepared("digits", WORKDIR / "data" / "digits")

# %% [markdown]
# ## Model
#
# The default three-branch model of the bundled `digits` config; see the quickstart for a tour. Its
# splits are pointed at the prepared folder (with small settings, at its first rows).

# %%
overrides = mmkeras.datasets.split_overrides(folder) if not SMALL else [
    *mmkeras.datasets.split_overrides(folder, {"train": 64, "validation": 32, "test": 32}),
    "train.epochs=1", "train.batch_size=16",
    "data.features.image.height=16", "data.features.image.width=16",
    "data.features.audio.duration=0.5", "data.features.audio.num_mel_bins=16",
]
config = mmkeras.load_config("digits", ["export.top_k=3", *overrides])

# %% [markdown]
# ## Training

# %%
run = mmkeras.train(config, run_dir=WORKDIR / "runs" / "serving", overwrite=True)
print({key: run.status().get(key) for key in ("epochs_done", "val_accuracy")})

# %% [markdown]
# ## Evaluation
#
# Evaluate before exporting: the report is the record of what this version can do.

# %%
report = mmkeras.evaluate_run(run.run_dir)
print(f"test accuracy {report['accuracy']:.3f}")

# %% [markdown]
# ## Export
#
# TF Serving watches a *model base* folder and serves its highest integer version. An export writes
# `BASE/<N>/` and nothing else there (it builds in a hidden folder and renames at the end, so TF
# Serving never sees half a model).

# %%
base = WORKDIR / "models" / "digits"
export_path = mmkeras.export_run(run.run_dir, base, version=1, overwrite=True)
for path in sorted(export_path.rglob("*")):
    print(path.relative_to(base))

# %% [markdown]
# ### The signatures
#
# `saved_model_cli` (installed with TensorFlow) lists them from a terminal:
#
# ```bash
# saved_model_cli show --dir nb_work/models/digits/1 --tag_set serve --signature_def serving_default
# ```
#
# `serving_default` takes one `string [-1]` tensor per column, named by modality (`text`,
# `image_bytes`, `audio_bytes`); `""` means the modality is missing for that example.
# `serve_tensors` takes already preprocessed tensors, for clients that do their own preprocessing.
# Both return the probabilities, the class ids and names, and the top-k names and probabilities.
# Here we read the same from the SavedModel loaded in this process (once: the cells below reuse it),
# and the export's own description of its inputs, `mmkeras_export.json`.

# %%
from mmkeras.export.predict import load_signature, read_metadata

for name in ("serving_default", "serve_tensors"):
    signature = load_signature(export_path, name)
    print(f"signature {name!r}")
    inputs, outputs = signature.structured_input_signature[1], signature.structured_outputs
    for kind, specs in (("input", inputs), ("output", outputs)):
        for key, spec in sorted(specs.items()):
            print(f"  {kind} {key}: {spec.dtype.name} {spec.shape}")
print(json.dumps(read_metadata(export_path)["input_columns"], indent=1))

# %% [markdown]
# ### The warm-up file
#
# The first request to a freshly loaded model pays for graph initialisation. TF Serving replays the
# requests in `assets.extra/tf_serving_warmup_requests` (a TFRecord of `PredictionLog` protos)
# before it marks the version available; mmkeras writes real validation examples there, as raw
# bytes, exactly what a client sends.

# %%
from mmkeras.export.warmup import read_warmup_requests

logs = read_warmup_requests(export_path / "assets.extra" / "tf_serving_warmup_requests")
print(len(logs), "warm-up requests")
request = logs[0].predict_log.request
print("model:", request.model_spec.name, "| signature:", request.model_spec.signature_name)
for name, tensor in sorted(request.inputs.items()):
    value = tensor.string_val[0]
    print(f"  {name}: {len(value)} bytes", repr(value[:12]))

# %% [markdown]
# ## Inference
#
# ### REST request bodies
#
# TF Serving's REST API takes JSON. Binary strings (image and WAV bytes) travel base64-encoded as
# `{"b64": "..."}`. The *row* form lists one object per example:
#
# ```json
# {"instances": [{"text": "seven", "image_bytes": {"b64": "iVBORw0..."}, "audio_bytes": {"b64": "UklGR..."}}]}
# ```
#
# Every input of the signature must be present; send `""` for a missing modality. We build a body
# for two test examples, the second without its recording. `mmkeras.export.rest.parse_request`
# checks a body the way TF Serving parses it.

# %%
from mmkeras.export import rest

with open(folder / "test.csv", newline="") as handle:
    examples = list(csv.DictReader(handle))[:2]


def b64_file(cell):
    return {"b64": base64.b64encode((folder / cell).read_bytes()).decode("ascii")} if cell else ""


body = {"instances": [
    {"text": examples[0]["text"], "image_bytes": b64_file(examples[0]["image"]),
     "audio_bytes": b64_file(examples[0]["audio"])},
    {"text": examples[1]["text"], "image_bytes": b64_file(examples[1]["image"]), "audio_bytes": ""},
]}
request_file = WORKDIR / "request.json"
request_file.write_text(json.dumps(body))
form, signature, tensors = rest.parse_request(body, ["text", "image_bytes", "audio_bytes"])
print(form, signature, {name: [len(v) for v in values] for name, values in tensors.items()})
print("labels:", [e["label"] for e in examples])

# %% [markdown]
# ### Answering it locally
#
# `mmkeras predict --model nb_work/models/digits --request nb_work/request.json` loads the SavedModel
# with TensorFlow and answers the body as TF Serving would (same JSON layout, same float formatting),
# which makes it a quick check of a request before a server is involved. `predict_request` is what
# that command runs; we call it directly, on the model already loaded above.

# %%
from mmkeras.export.predict import predict_request

response = predict_request(base, request_file)
shown = ("class_names", "top_k_class_names", "top_k_probabilities")
print(json.dumps([{key: prediction[key] for key in shown} for prediction in response["predictions"]], indent=1))

# %% [markdown]
# ### Serving it with Docker
#
# On a machine with Docker, the stock image serves the base folder (it picks up new versions as
# they appear):
#
# ```bash
# docker run --rm -p 8501:8501 -p 8500:8500 \
#     -v "$PWD/nb_work/models/digits:/models/digits" \
#     -e MODEL_NAME=digits tensorflow/serving
# ```
#
# Check that the version is loaded, read its signatures, then send the body written above:
#
# ```bash
# curl http://localhost:8501/v1/models/digits
# curl http://localhost:8501/v1/models/digits/metadata
# curl -X POST http://localhost:8501/v1/models/digits:predict -d @nb_work/request.json
# ```
#
# The answer has the same layout as the `mmkeras predict` output above:
# `{"predictions": [{"class_names": "7", "top_k_class_names": [...], "top_k_probabilities": [...], ...}]}`.
# A bad input (a truncated PNG, a file that is not a WAV) gets an `{"error": "image_bytes[1] is not a
# PNG/JPEG/GIF/BMP image"}` answer naming the input and row, and the server keeps running. gRPC
# clients (port 8500) send the same inputs as `tf.make_tensor_proto(list_of_bytes)` in a
# `PredictRequest`, which is what the warm-up records above are.
#
# ## Conclusion
#
# An mmkeras export is a self-contained TF Serving model: raw bytes in, class names and probabilities
# out, warm-up requests included, no client-side preprocessing to keep in sync. To roll out a new
# model, export it as the next version into the same base folder; TF Serving switches when it has
# loaded and warmed it.
