# %% [markdown]
# # Pretrained encoders: KerasHub presets for text, images and speech
#
# **Author:** the mmkeras developers<br>
# **Date created:** 2026/12/01<br>
# **Description:** fine-tune BERT, ResNet and Whisper presets on emoji and Speech Commands, and
# export a SavedModel that holds their tokenizer and converters and answers raw bytes.
#
# ## Introduction
#
# The encoders of notebooks 01 to 04 start from random weights: fine on digits, weak on real text
# and real photos. Models people actually use start from *pretrained* encoders: a BERT for text, a
# ResNet or a ViT for images, Whisper for speech. [KerasHub](https://keras.io/keras_hub/) publishes
# them as *presets*: a backbone (the network and its weights) together with the preprocessing it was
# trained with (a tokenizer, an image converter, an audio converter).
#
# In mmkeras a preset is one more encoder type, `keras_hub`, and the column it reads takes its
# preprocessing from the **same preset**: no vocabulary to learn, no image size or mel settings to
# match by hand. The run directory keeps a copy of that preprocessing, and the exported SavedModel
# contains it, so TF Serving answers raw text, image bytes and WAV bytes with the pretrained model
# behind them. We will:
#
# 1. pick presets (real ones on Colab, tiny random ones in offline test runs),
# 2. write a config with `type: keras_hub` encoders and look at the preprocessing each column gets,
# 3. compare frozen, partly unfrozen and LoRA encoders by their trainable parameters,
# 4. fine-tune on the bundled `emoji` dataset (glyph + name), read the report, export and query the
#    SavedModel with raw bytes,
# 5. do the same for speech with Whisper's encoder on `speech_commands_mini`.

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
# dozen rows, one epoch and tiny random presets built on the spot, so the notebook runs offline in
# well under a minute on two CPU cores; without it the notebook downloads real presets and is meant
# for a Colab GPU runtime. Everything it writes goes under `MMKERAS_NOTEBOOK_WORKDIR`
# (default `./nb_work`).

# %%
import csv
import dataclasses
from pathlib import Path

SMALL = os.environ.get("MMKERAS_NOTEBOOK_SMALL", "0") == "1"
WORKDIR = Path(os.environ.get("MMKERAS_NOTEBOOK_WORKDIR", "nb_work")).absolute()
WORKDIR.mkdir(parents=True, exist_ok=True)
# Keras fixes its backend on first import; these notebooks use TensorFlow unless told otherwise.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import keras_hub
import mmkeras
import numpy as np
import tensorflow as tf
from IPython.display import Image, display

print("small settings:", SMALL, "| working folder:", WORKDIR)
print("mmkeras", mmkeras.__version__, "| keras", keras.__version__, "| keras_hub", keras_hub.__version__,
      "| backend", keras.backend.backend())

# %% [markdown]
# ## Data
#
# Two bundled datasets. `emoji`: 1601 Noto Color Emoji glyphs (72x72 RGBA PNGs), each with its
# Unicode name and keywords, labelled by emoji group (8 classes; the name often gives the group away,
# the image helps on the rest). `speech_commands_mini`: one-second 16 kHz recordings of 30 command
# words, audio only. Both are written as files plus `train.csv` / `validation.csv` / `test.csv`
# manifests, once.

# %%
emoji = mmkeras.datasets.ensure_prepared("emoji", WORKDIR / "data" / "emoji")
commands = mmkeras.datasets.ensure_prepared("speech_commands_mini", WORKDIR / "data" / "speech_commands_mini")
with open(emoji / "test.csv", newline="") as handle:
    example = next(csv.DictReader(handle))
print({key: example[key] for key in ("text", "image", "label")})
display(Image(filename=str(emoji / example["image"]), width=72))

# %% [markdown]
# With small settings `mmkeras.datasets.subset` cuts every split to its first few dozen rows, dealt
# round-robin over the labels so that every class appears; the cut manifests are written beside the
# full ones.

# %%
SUBSET = {"train": 64, "validation": 32, "test": 32} if SMALL else None
emoji_splits = mmkeras.datasets.subset(emoji, SUBSET)
command_splits = mmkeras.datasets.subset(commands, SUBSET)
with open(emoji_splits["test"], newline="") as handle:
    emoji_test = list(csv.DictReader(handle))
print(emoji_splits["train"].name, command_splits["train"].name, len(emoji_test), "emoji test rows")

# %% [markdown]
# ## Model
#
# ### The presets
#
# A preset *handle* is anything KerasHub accepts: a name from its catalogue (downloaded from Kaggle on
# first use and cached), `kaggle://...` or `hf://...` addresses, or a local preset directory. We use
# three small ones: `bert_tiny_en_uncased` (2-layer BERT, 4.4 M parameters), `resnet_18_imagenet`
# (11 M) and `whisper_tiny_en` (37 M, of which mmkeras keeps the encoder half: a classifier has
# no use for the decoder). `keras_hub.models.Backbone.presets` lists the catalogue.

# %%
PRESETS = {"text": "bert_tiny_en_uncased", "image": "resnet_18_imagenet", "audio": "whisper_tiny_en"}
print(len(keras_hub.models.Backbone.presets), "backbone presets, e.g.",
      [name for name in sorted(keras_hub.models.Backbone.presets) if name.startswith("resnet")][:4])

# %% [markdown]
# ### Tiny random presets for offline runs
#
# The test suite runs without network, so with small settings the next cell builds stand-ins of the
# same three families, with **random weights**, and saves them with `save_to_preset`: a local
# directory goes through exactly the loading path a downloaded preset does. The BERT's WordPiece
# vocabulary is the words of the emoji names; the ResNet has one block; the Whisper one layer and
# 16 mel bins. Random weights know nothing, so the accuracies below are **chance level** in this
# mode; only the real presets (run without `MMKERAS_NOTEBOOK_SMALL`) show what pretraining buys.

# %%
import re
import shutil

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def make_tiny_presets(folder, texts):
    """Random-weight BERT / ResNet / Whisper presets under ``folder``: ``{modality: directory}``."""
    shutil.rmtree(folder, ignore_errors=True)
    paths = {modality: str(folder / modality) for modality in ("text", "image", "audio")}
    words = sorted({word for text in texts for word in re.findall(r"[a-z]+", text.lower())})
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=16).save_to_preset(paths["text"])
    keras_hub.models.BertBackbone(vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=16,
                                  intermediate_dim=32, max_sequence_length=32).save_to_preset(paths["text"])
    converter = keras_hub.layers.ResNetImageConverter(  # ImageNet statistics, as resnet_18_imagenet's
        image_size=(32, 32), scale=[1 / (255 * s) for s in IMAGENET_STD],
        offset=[-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    keras_hub.models.ResNetImageClassifierPreprocessor(image_converter=converter).save_to_preset(paths["image"])
    keras_hub.models.ResNetBackbone(input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64],
                                    stackwise_num_blocks=[1], stackwise_num_strides=[1], block_type="basic_block",
                                    image_shape=(None, None, 3)).save_to_preset(paths["image"])
    keras_hub.layers.WhisperAudioConverter(num_mels=16, sampling_rate=16000).save_to_preset(paths["audio"])
    keras_hub.models.WhisperBackbone(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                                     num_mels=16, max_encoder_sequence_length=200,
                                     max_decoder_sequence_length=8).save_to_preset(paths["audio"])
    return paths


if SMALL:
    with open(emoji / "train.csv", newline="") as handle:
        PRESETS = make_tiny_presets(WORKDIR / "presets_07", [row["text"] for row in csv.DictReader(handle)])
print(PRESETS)

# %% [markdown]
# ### The config
#
# The encoders section names the presets. Text and image columns say only their modality: the
# sequence length, the image size, the channels and the pixel scaling all come from the preset
# (`height` / `width` / `sequence_length` may still be set to override them). Each `keras_hub`
# encoder takes these options:
#
# - `trainable` (default `false`): a frozen backbone keeps its pretrained weights, runs in inference
#   mode (no dropout) and only the fusion and head learn;
# - `trainable_layers: N`: fine-tune the last N blocks only;
# - `lora_rank: R`: add LoRA adapters of rank R (`backbone.enable_lora`), the only new trainable
#   weights: the cheap way to adapt a large backbone;
# - `pooling` (`auto`, `cls`, `mean`, `masked_mean`): how a token sequence becomes one vector
#   (`auto`: the backbone's own pooled output where it has one);
# - `output` (`both`, `sequence`, `pooled`): what the fusion gets; the attention fusions read the
#   token / patch sequence.
#
# Here BERT gets LoRA adapters and the ResNet stays frozen.

# %%
EPOCHS, BATCH = (1, 16) if SMALL else (6, 32)
emoji_yaml = f"""
data:
  train: {emoji_splits['train']}
  validation: {emoji_splits['validation']}
  test: {emoji_splits['test']}
  label: label
  features:
    text: {{modality: text}}
    image: {{modality: image}}
model:
  encoders:
    text: {{type: keras_hub, preset: {PRESETS['text']}, lora_rank: 4}}
    image: {{type: keras_hub, preset: {PRESETS['image']}}}
  fusion: {{type: gated, output_dim: 64}}
  head: {{type: softmax}}
train: {{epochs: {EPOCHS}, batch_size: {BATCH}, learning_rate: 0.001}}
export: {{top_k: 3}}
"""
config_path = WORKDIR / "emoji_keras_hub.yaml"
config_path.write_text(emoji_yaml)
config = mmkeras.load_config(config_path)
print(emoji_yaml)
print({column: feature.preset for column, feature in config.data.features.items()})

# %% [markdown]
# Loading the config already resolved both handles (an unknown name, or no network for a catalogue
# name, is a `ConfigError` at this point, naming the handle) and gave each column `preset`: the
# columns are now KerasHub columns.
#
# ### Preprocessing comes from the preset
#
# `fit_preprocessor` builds the columns from the config. Their `FeatureSpec` (what the model input
# looks like) is the preset's: token ids of the tokenizer's sequence length, with its padding id;
# images at the converter's size, in RGB.

# %%
preprocessor = mmkeras.fit_preprocessor(config)
for name, column in preprocessor.columns.items():
    print(f"{name}: {type(column).__name__} -> {column.spec}")
print("classes:", preprocessor.class_names)

# %% [markdown]
# The text column runs the preset's tokenizer and packer (`[CLS] ... [SEP]`, padded); the image
# column decodes the 72x72 RGBA PNG to RGB and resizes it with the converter; the converter's
# scaling (ImageNet mean and standard deviation for the ResNet) is applied on batches, after
# augmentation would run. Both are TensorFlow ops, inside `tf.data` here and inside the SavedModel
# later.

# %%
text_column, image_column = preprocessor.columns["text"], preprocessor.columns["image"]
ids = text_column.decode(tf.constant(example["text"])).numpy()
print(repr(example["text"]))
print(ids)
print([text_column.tokenizer.id_to_token(int(i)) for i in ids if i != text_column.spec.padding_id])
pixels = image_column.decode(tf.io.read_file(str(emoji / example["image"])))
scaled = image_column.featurize({"image": pixels[None], "image_present": tf.ones([1])})
print("decoded", pixels.shape, "in [0, 1] -> model input", scaled.shape,
      f"in [{float(tf.reduce_min(scaled)):.2f}, {float(tf.reduce_max(scaled)):.2f}]")

# %% [markdown]
# ### Frozen, partly unfrozen, or LoRA
#
# What the options change is what learns. `mmkeras.build_model` builds the Functional model; we
# build it four times with different settings for the text encoder (the ResNet frozen each time) and
# count trainable parameters. Frozen, only the fusion and head learn; `trainable_layers: 1` adds the
# last BERT block; `lora_rank: 4` adds small adapter matrices only; `trainable: true` trains all of
# BERT.

# %%
def trainable_parameters(model):
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


variants = {"frozen": {}, "trainable_layers: 1": {"trainable_layers": 1}, "lora_rank: 4": {"lora_rank": 4},
            "trainable: true": {"trainable": True}}
print(f"{'text encoder':22s} {'trainable':>10s} {'total':>10s}")
for label, options in variants.items():
    encoders = {**config.model.encoders, "text": {"type": "keras_hub", "preset": PRESETS["text"], **options}}
    variant = mmkeras.build_model(dataclasses.replace(config.model, encoders=encoders), preprocessor)
    print(f"{label:22s} {trainable_parameters(variant):10,d} {variant.count_params():10,d}")

# %% [markdown]
# ## Training
#
# `mmkeras.train` trains the config as written (BERT with LoRA adapters, ResNet frozen) into a run
# directory. Besides the usual files (resolved config, best and last `.keras` models, logs), the run
# keeps the preset's preprocessing layers under `preprocessor/assets/<column>/`: a tokenizer with
# its vocabulary, a converter with its settings, no weights. Evaluation, export and reloading the
# run read those, never the network.

# %%
run = mmkeras.train(config, run_dir=WORKDIR / "runs" / "emoji_keras_hub", overwrite=True)
status = run.status()
print({key: status.get(key) for key in ("status", "epochs_done", "parameters", "train_seconds",
                                         "accuracy", "val_accuracy")})
assets = run.run_dir / "preprocessor" / "assets"
for path in sorted(assets.rglob("*")):
    if path.is_file():
        print(path.relative_to(run.run_dir))

# %% [markdown]
# ## Evaluation
#
# `mmkeras.evaluate_run` scores the best checkpoint on the test split: accuracy, macro F1,
# calibration and the modality ablation (accuracy without each column), as for any run.

# %%
report = mmkeras.evaluate_run(run.run_dir)
chance = 1 / len(preprocessor.class_names)
print(f"accuracy {report['accuracy']:.3f}  macro F1 {report['macro_f1']:.3f}  ECE {report['ece']:.3f}"
      f"  on {report['num_examples']} test examples (chance: {chance:.3f})")
for column, row in report["modality_ablation"].items():
    print(f"without {column:5s}: accuracy {row['accuracy']:.3f} ({row['delta']:+.3f})")
display(Image(filename=str(run.run_dir / "confusion_matrix.png"), width=420))

# %% [markdown]
# With small settings these figures are chance level: the tiny presets have random weights and saw
# 64 examples once. With the real presets on a Colab GPU, the pretrained BERT reads the emoji names
# and the ResNet's ImageNet features the glyphs.
#
# ## Inference and serving
#
# `mmkeras.export_run` writes a SavedModel whose `serving_default` signature takes raw strings: the
# text itself and the PNG bytes. The preset's tokenizer and image converter are inside the graph, so
# a client needs neither KerasHub nor the preset.

# %%
from mmkeras.export.predict import load_signature, predict_files, read_metadata

export_path = mmkeras.export_run(run.run_dir, WORKDIR / "exports" / "emoji_keras_hub", version=1, overwrite=True)
print(export_path, sorted(path.name for path in export_path.iterdir()))
print(read_metadata(export_path)["input_columns"])

# %% [markdown]
# `predict_files` (what `mmkeras predict --model ... --text ... --image ...` runs) sends one example
# as a string and a file's bytes:

# %%
print("label:", example["label"])
for name, probability in predict_files(export_path, text=example["text"], image=str(emoji / example["image"])):
    print(f"  {name}: {probability:.3f}")

# %% [markdown]
# The same signature takes a whole batch of raw inputs at once. Sending the entire test split as
# strings and PNG bytes, the served accuracy is the report's: the SavedModel preprocesses exactly as
# the training pipeline did.

# %%
signature = load_signature(export_path)
outputs = signature(text=tf.constant([row["text"] for row in emoji_test]),
                    image_bytes=tf.constant([(emoji / row["image"]).read_bytes() for row in emoji_test]))
names = [name.decode() for name in outputs["class_names"].numpy()]
served = np.mean([name == row["label"] for name, row in zip(names, emoji_test)])
print(f"served accuracy {served:.3f} | report {report['accuracy']:.3f}")

# %% [markdown]
# ## Speech: Whisper's encoder on Speech Commands
#
# A Whisper preset is an encoder-decoder for transcription; as a classifier's encoder mmkeras keeps
# its encoder blocks, fed by the preset's own audio converter (log-mel frames at 16 kHz; a WAV at
# another rate is resampled first). The audio column sets only `duration`: how much of each clip to
# keep. Whisper's sequence of frames is averaged into one vector (`pooling: mean`), and the encoder
# stays frozen.

# %%
speech_yaml = f"""
data:
  train: {command_splits['train']}
  validation: {command_splits['validation']}
  test: {command_splits['test']}
  label: label
  features:
    audio: {{modality: audio, duration: 1.0}}
model:
  encoders:
    audio: {{type: keras_hub, preset: {PRESETS['audio']}, pooling: mean}}
  fusion: {{type: concat, output_dim: 64}}
train: {{epochs: {EPOCHS if SMALL else 20}, batch_size: 16, learning_rate: 0.002}}
"""
speech_path = WORKDIR / "speech_keras_hub.yaml"
speech_path.write_text(speech_yaml)
speech_config = mmkeras.load_config(speech_path)
print(speech_yaml)
speech_run = mmkeras.train(speech_config, run_dir=WORKDIR / "runs" / "speech_keras_hub", overwrite=True)
speech_preprocessor = mmkeras.Preprocessor.load(str(speech_run.run_dir / "preprocessor"))
print("audio input:", speech_preprocessor.columns["audio"].spec)

# %% [markdown]
# The report and a WAV sent to the exported model, as before (30 classes: chance is 0.033; with the
# tiny random Whisper the accuracy stays there).

# %%
speech_report = mmkeras.evaluate_run(speech_run.run_dir)
print(f"accuracy {speech_report['accuracy']:.3f} on {speech_report['num_examples']} test clips "
      f"(chance: {1 / len(speech_preprocessor.class_names):.3f})")
speech_export = mmkeras.export_run(speech_run.run_dir, WORKDIR / "exports" / "speech_keras_hub", version=1,
                                   overwrite=True)
with open(command_splits["test"], newline="") as handle:
    clip = next(csv.DictReader(handle))
print("label:", clip["label"], "| top 3:", predict_files(speech_export, audio=str(commands / clip["audio"]))[:3])

# %% [markdown]
# ## Conclusion
#
# A pretrained encoder is one line of config, `{type: keras_hub, preset: HANDLE}`, and its column
# follows the preset: tokenizer, image size and scaling, audio front end. Frozen (the default),
# partly unfrozen, LoRA or fully fine-tuned is one more option. The run keeps the preset's
# preprocessing, and the SavedModel serves raw text, image bytes and WAV bytes with it inside.
#
# Next: try `pooling: cls` or `output: sequence` with a `cross_attention` fusion (notebook 02 compares
# fusions), a bigger preset from `keras_hub.models.Backbone.presets`, or serve the export with TF
# Serving as in notebook 06.
