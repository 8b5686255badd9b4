"""Write the tutorial notebooks in ``notebooks/`` from the cells below (the source of truth).

Notebooks are kept as Python lists of markdown / code cells so that they diff well and carry no
outputs; ``tests/notebooks/test_notebooks.py`` checks that the committed ``.ipynb`` files equal what
this script generates and executes each of them with small settings.

Usage:
    python tools/build_notebooks.py           # (re)write notebooks/*.ipynb
    python tools/build_notebooks.py --check   # exit 1 if a notebook differs from its source here

Every notebook reads two environment variables:
    MMKERAS_NOTEBOOK_SMALL=1     tiny subsets, one epoch, 16x16 images, 0.5 s audio (what the tests use)
    MMKERAS_NOTEBOOK_WORKDIR     folder for data, runs and exports (default ./nb_work)
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
CONFIG_DIR = ROOT / "configs"
# What the Colab cell installs; a checkout installs itself with `pip install -e .` instead.
PIP_TARGET = "mmkeras"


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(textwrap.dedent(text).strip())


def config_text(relative: str) -> str:
    return (CONFIG_DIR / relative).read_text()


def write_config_cell(relative: str, variable: str = "config_file") -> nbformat.NotebookNode:
    """A cell that writes ``configs/<relative>`` (embedded verbatim) under WORKDIR/configs/."""
    text = config_text(relative)
    if '"""' in text:
        raise ValueError(f"configs/{relative} contains triple quotes; it cannot be embedded")
    return code(
        f'CONFIG_YAML = """\\\n{text}"""\n\n'
        f'{variable} = WORKDIR / "configs" / "{relative}"\n'
        f"{variable}.parent.mkdir(parents=True, exist_ok=True)\n"
        f"{variable}.write_text(CONFIG_YAML)\n"
        f"print({variable})"
    )


# ----------------------------------------------------------------------------- shared cells
def setup_cells(extra_imports: str = "", before_keras: str = "") -> list:
    return [
        md("""
        ## Setup

        On Colab, mmkeras is not installed yet: the first cell installs it there (and only there).
        In a checkout, `pip install -e .` has already done it.
        """),
        code(f"""
        import subprocess
        import sys

        if "google.colab" in sys.modules:
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "{PIP_TARGET}"], check=True)
        """),
        md("""
        One switch sizes everything. `MMKERAS_NOTEBOOK_SMALL=1` (what the test suite sets) keeps a few
        dozen rows, one epoch, 16x16 images and half a second of audio, so the notebook runs in about a
        minute on two CPU cores; without it the defaults are meant for a Colab GPU or TPU runtime.
        Everything the notebook writes goes under `MMKERAS_NOTEBOOK_WORKDIR` (default `./nb_work`).
        """),
        code("\n".join([
            "import os",
            "from pathlib import Path",
            "",
            'SMALL = os.environ.get("MMKERAS_NOTEBOOK_SMALL", "0") == "1"',
            'WORKDIR = Path(os.environ.get("MMKERAS_NOTEBOOK_WORKDIR", "nb_work")).absolute()',
            "WORKDIR.mkdir(parents=True, exist_ok=True)",
            *([""] + textwrap.dedent(before_keras).strip().splitlines() if before_keras else []),
            "# Keras fixes its backend on first import; these notebooks use TensorFlow unless told otherwise.",
            'os.environ.setdefault("KERAS_BACKEND", "tensorflow")',
            "",
            "import keras",
            "import mmkeras",
            *(textwrap.dedent(extra_imports).strip().splitlines() if extra_imports else []),
            "",
            'print("small settings:", SMALL, "| working folder:", WORKDIR)',
            'print("mmkeras", mmkeras.__version__, "| keras", keras.__version__, "| backend", keras.backend.backend())',
        ])),
    ]


SMALL_COPY = '''
import csv
import itertools


def small_copy(folder, counts, columns=("image", "audio")):
    """The first rows of each split, dealt round-robin over the labels so that every class appears,
    written to ``<folder>_small/``; file cells become absolute paths so the copies need no files."""
    out = folder.parent / f"{folder.name}_small"
    out.mkdir(exist_ok=True)
    for split, count in counts.items():
        with open(folder / f"{split}.csv", newline="") as handle:
            reader = csv.DictReader(handle)
            fields, rows = reader.fieldnames, list(reader)
        by_label = {}
        for row in rows:
            by_label.setdefault(row["label"], []).append(row)
        dealt = [row for group in itertools.zip_longest(*by_label.values()) for row in group if row]
        with open(out / f"{split}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            for row in dealt[:count]:
                writer.writerow({k: str(folder / v) if k in columns and v else v for k, v in row.items()})
    return out


def split_overrides(folder):
    """``--set`` overrides that point a config's three splits at the manifests in ``folder``."""
    return [f"data.{split}={folder / (split + '.csv')}" for split in ("train", "validation", "test")]
'''


def small_copy_cell() -> nbformat.NotebookNode:
    return code(SMALL_COPY)


def notebook(cells: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "accelerator": "GPU",
        "colab": {"provenance": []},
    }
    for number, cell in enumerate(cells):
        cell["id"] = f"cell-{number:02d}"  # stable ids, so regenerating does not churn the diff
    nb.cells = cells
    return nb


# ----------------------------------------------------------------------------- 01 quickstart
def quickstart() -> list:
    return [
        md("""
        # Quickstart: one model for text, images and speech

        **Author:** the mmkeras developers<br>
        **Description:** train, evaluate, export and query a three-branch multimodal classifier.

        ## Introduction

        Many real examples come with more than one kind of input: a product photo and its title, a
        voice note and its transcript. A *multimodal* classifier reads all of them, with one encoder per
        modality and a *fusion* layer that merges what the encoders found.

        This notebook walks the whole mmkeras path on the bundled `digits` dataset, where each example is
        a digit given three ways: a short written word (`seven`, `sieben`, `7`), an MNIST image and a
        spoken recording from the Free Spoken Digit Dataset. We will:

        1. prepare the data as files plus CSV manifests,
        2. build the three-branch Functional model (Embedding text, Conv2D image, LSTM speech),
        3. train it into a run directory,
        4. read the evaluation report (accuracy, calibration, what each modality contributes),
        5. export a SavedModel that TF Serving answers with raw text, PNG bytes and WAV bytes,
        6. predict on a test example.
        """),
        *setup_cells(extra_imports="from IPython.display import Image, Markdown, display"),
        md("""
        ## Data

        `mmkeras.datasets.ensure_prepared` writes the bundled dataset as plain files (PNG images, WAV
        recordings) and `train.csv` / `validation.csv` / `test.csv` manifests, once; later calls reuse
        it. A manifest is the format every other part of mmkeras reads, so your own data only needs one.
        """),
        code("""
        folder = mmkeras.datasets.ensure_prepared("digits", WORKDIR / "data" / "digits")
        print((folder / "train.csv").read_text().splitlines()[:4])
        """),
        md("""
        Each row names a text, an image file and an audio file, plus the label. The text column is
        **synthetic** (generated from the label, with typos and other languages), and 15% of its cells
        are blank: a missing modality, which the model must handle without reading it as data.
        """),
        code("""
        import csv

        with open(folder / "test.csv", newline="") as handle:
            example = next(csv.DictReader(handle))
        print({key: example[key] for key in ("text", "image", "audio", "label")})
        display(Image(filename=str(folder / example["image"]), width=84))
        """),
        md("""
        The experiment is described by a YAML config with four sections (`data`, `model`, `train`,
        `export`). This is `configs/digits.yaml` from the repository, written into the working folder so
        that its relative manifest paths (`../data/digits/...`) point at the data we just prepared.
        """),
        write_config_cell("digits.yaml"),
        md("""
        Any key can be overridden without editing the file, exactly like `--set` on the command line.
        With small settings we also point the splits at a few dozen rows (every digit represented).
        """),
        small_copy_cell(),
        code("""
        overrides = [] if not SMALL else [
            *split_overrides(small_copy(folder, {"train": 64, "validation": 32, "test": 32})),
            "train.epochs=1", "train.batch_size=16",
            "data.features.image.height=16", "data.features.image.width=16",
            "data.features.audio.duration=0.5", "data.features.audio.num_mel_bins=16",
        ]
        config = mmkeras.load_config(config_file, overrides)
        print(config.model)
        print(config.train.epochs, "epochs, batch size", config.train.batch_size)
        """),
        md("""
        ## Model

        The `Preprocessor` turns raw cells into tensors: it learns the text vocabulary, the class names
        and the audio feature statistics from the **train** split only, and the same object later runs
        inside the exported SavedModel. `mmkeras.build_model` then sizes the encoders from it.

        Each column has a companion `<column>_present` input (1 or 0): that is how a blank cell reaches
        the fusion layer, which masks the modality instead of reading zeros as a real example.
        """),
        code("""
        preprocessor = mmkeras.fit_preprocessor(config)
        print("classes:", preprocessor.class_names)
        model = mmkeras.build_model(config.model, preprocessor)
        model.summary()
        """),
        md("""
        ## Training

        `mmkeras.train` does what the previous cell did and then trains: it writes the run directory
        (resolved config, adapted preprocessor, best and last `.keras` models, a CSV and TensorBoard log)
        and resumes by itself if the same run is started again after a crash. `overwrite=True` starts
        afresh each time the notebook runs.
        """),
        code("""
        run = mmkeras.train(config, run_dir=WORKDIR / "runs" / "quickstart", overwrite=True)
        status = run.status()
        print({key: status.get(key) for key in ("status", "epochs_done", "parameters", "train_seconds",
                                                 "accuracy", "val_accuracy")})
        print(sorted(path.name for path in run.run_dir.iterdir()))
        """),
        md("""
        ## Evaluation

        `mmkeras.evaluate_run` scores the best checkpoint on the test split and writes `report.json`,
        `report.md` and two pictures. Besides accuracy and macro F1 it reports the expected calibration
        error (are 90%-confident answers right 90% of the time?) and a *modality ablation*: the accuracy
        when one modality is removed through its presence flag, which shows what each branch contributes.
        """),
        code("""
        report = mmkeras.evaluate_run(run.run_dir)
        print(f"accuracy {report['accuracy']:.3f}  macro F1 {report['macro_f1']:.3f}  ECE {report['ece']:.3f}"
              f"  on {report['num_examples']} test examples")
        for column, row in report["modality_ablation"].items():
            print(f"without {column:5s}: accuracy {row['accuracy']:.3f} ({row['delta']:+.3f})")
        display(Image(filename=str(run.run_dir / "confusion_matrix.png"), width=420))
        display(Image(filename=str(run.run_dir / "reliability_diagram.png"), width=320))
        """),
        md("""
        With small settings (64 training rows, one epoch) the numbers are close to chance; run the
        notebook with the default settings (or `make demo`) to see what the model learns, and which
        branch it leans on: a large drop in the ablation means the model depends on that modality.

        ## Export

        `mmkeras.export_run` writes `BASE/<version>/`, the layout TF Serving watches. The SavedModel's
        `serving_default` signature takes **raw** inputs, one string tensor per column: the text itself,
        the PNG bytes and the WAV bytes. Decoding, resampling, log-mel features and normalisation all
        happen inside the graph, with the same Preprocessor state as in training.
        """),
        code("""
        export_path = mmkeras.export_run(run.run_dir, WORKDIR / "exports" / "digits", version=1, overwrite=True)
        print(export_path)
        print(sorted(path.name for path in export_path.iterdir()))
        """),
        md("""
        ## Inference

        `predict_files` (what `mmkeras predict --model ... --text ... --image ... --audio ...` runs) loads
        the SavedModel and returns the top-k classes for one example given as a text and files. We ask
        it about the first test example; any modality can be left out.
        """),
        code("""
        from mmkeras.export.predict import predict_files

        files = {key: str(folder / example[key]) for key in ("image", "audio") if example[key]}
        print("label:", example["label"], "| text:", repr(example["text"]))
        for name, probability in predict_files(export_path, text=example["text"], **files):
            print(f"  {name}: {probability:.3f}")
        print("image only:", predict_files(export_path, image=files["image"])[0])
        """),
        md("""
        ## Conclusion

        From a manifest to a served model took five calls: `load_config`, `train`, `evaluate_run`,
        `export_run` and a prediction. The same steps exist on the command line (`mmkeras train`,
        `evaluate`, `export`, `predict`). Next:

        - `02_fusion_methods.ipynb` compares every fusion layer on one task,
        - `03_your_own_data.ipynb` starts from your own folder of files,
        - `04_speech.ipynb` looks inside the audio front ends,
        - `05_tpu_gpu_and_scaling.ipynb` trains on GPUs and TPUs,
        - `06_tf_serving.ipynb` serves the export with TF Serving.
        """),
    ]


# ----------------------------------------------------------------------------- 02 fusion methods
def fusion_settings() -> dict:
    """``{name: model.fusion}`` from configs/fusion/*.yaml, checked to differ only in model.fusion."""
    settings, rest = {}, {}
    for path in sorted((CONFIG_DIR / "fusion").glob("*.yaml")):
        values = yaml.safe_load(path.read_text())
        settings[path.stem] = values["model"].pop("fusion")
        rest[path.stem] = values
    reference = rest["concat"]
    for name, values in rest.items():
        if values != reference:
            raise ValueError(f"configs/fusion/{name}.yaml differs from concat.yaml outside model.fusion")
    return settings


def fusion_methods() -> list:
    settings = fusion_settings()
    overrides = "\n".join(
        ["FUSION_OVERRIDES = {"]
        + [f"    {name!r}: {[f'model.fusion.{key}={value}' for key, value in values.items() if key != 'output_dim']!r},"
           for name, values in settings.items()]
        + ["}"]
    )
    return [
        md("""
        # Fusion methods compared: nine ways to merge an image and a recording

        **Author:** the mmkeras developers<br>
        **Description:** train every registered fusion layer on the same task and compare accuracy, size
        and time.

        ## Introduction

        Once each modality has been encoded into a vector, a *fusion* layer merges them. The choice
        ranges from concatenation to attention and multiplicative interactions:

        | name | idea |
        |---|---|
        | `concat` | concatenate the vectors (and presence flags), then a Dense layer |
        | `mean`, `weighted_sum` | project each modality, average (learned weights for `weighted_sum`) |
        | `gated` | gated multimodal unit: sigmoid gates decide how much of each modality to use |
        | `self_attention` | a Transformer layer over the modality vectors |
        | `cross_attention` | each modality's tokens attend to the other's |
        | `tensor`, `low_rank` | outer-product interactions (Tensor Fusion; its low-rank factorisation) |
        | `late` | one classifier per modality, logits averaged |

        All of them obey one contract (pooled vectors, optional tokens, a presence mask), so a config swaps
        one for another with a single key. We compare them on `avdigits` (MNIST image + FSDD recording of
        the same digit) with one speaker, `theo`, **held out**: the test voices were never heard in
        training, which is where a fusion that leans on the image when the audio is unfamiliar shines.
        """),
        *setup_cells(extra_imports="import time\n\nimport numpy as np\nfrom IPython.display import Markdown, display"),
        md("""
        ## Data

        `holdout_speakers=["theo"]` puts all 500 of theo's recordings in the test split; the other five
        speakers make up train and validation.
        """),
        code("""
        folder = mmkeras.datasets.ensure_prepared("avdigits", WORKDIR / "data" / "avdigits_theo",
                                                  holdout_speakers=["theo"])
        for split in ("train", "validation", "test"):
            print(split, len((folder / f"{split}.csv").read_text().splitlines()) - 1, "rows")
        """),
        md("""
        The nine experiments are the configs in `configs/fusion/`. They are identical except for
        `model.fusion`, so we write `concat.yaml` and express each of the others as `--set` overrides of
        it (the overrides below are read from those files when this notebook is generated).
        """),
        write_config_cell("fusion/concat.yaml"),
        nbformat.v4.new_code_cell(overrides),
        small_copy_cell(),
        code("""
        EPOCHS = 1 if SMALL else 8
        BATCH_SIZE = 16 if SMALL else 32
        base_overrides = [f"train.epochs={EPOCHS}", f"train.batch_size={BATCH_SIZE}"]
        if SMALL:
            base_overrides += [
                *split_overrides(small_copy(folder, {"train": 48, "validation": 16, "test": 32})),
                "data.features.image.height=16", "data.features.image.width=16",
                "data.features.audio.duration=0.5", "data.features.audio.num_mel_bins=16",
                "model.fusion.output_dim=32",
            ]
        base_config = mmkeras.load_config(config_file, base_overrides)
        """),
        md("""
        ## Model

        To compare fusions fairly, everything else stays fixed: one Preprocessor adapted on the train
        split and one set of `tf.data` pipelines, built once and reused by every model. Only
        `model.fusion` changes. The comparison is on the test split (the held-out speaker), so the
        validation split is not needed here. (`mmkeras train --config configs/fusion/gated.yaml` runs one of these
        experiments through the full trainer, with checkpoints and logs.)
        """),
        code("""
        preprocessor = mmkeras.fit_preprocessor(base_config)
        train_data = mmkeras.build_dataset(base_config, "train", preprocessor, training=True, batch_size=BATCH_SIZE)
        test_data = mmkeras.build_dataset(base_config, "test", preprocessor, training=False,
                                          batch_size=BATCH_SIZE, drop_remainder=False)
        features, labels = next(iter(train_data))
        print({name: tuple(value.shape) for name, value in features.items()}, tuple(labels.shape))
        """),
        md("""
        The list of fusions comes from the registry, so a fusion you register yourself joins the
        comparison without touching this notebook.
        """),
        code("""
        names = mmkeras.registry.names("fusion")
        print(names)


        def build(name):
            config = mmkeras.apply_overrides(base_config, FUSION_OVERRIDES.get(name, [f"model.fusion.type={name}"]))
            return config, mmkeras.build_model(config.model, preprocessor)
        """),
        md("""
        ## Training

        Each model gets the same seed, optimizer and number of epochs. The labels from `build_dataset`
        are class indices, hence the sparse cross-entropy.
        """),
        code("""
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
        """),
        md("""
        ## Evaluation

        A table (sorted by accuracy on the held-out speaker) and the same numbers as bars. `parameters`
        counts the whole model; `fusion parameters` only the fusion layer, which is where the methods
        differ: `tensor` grows with the product of the projected sizes, `low_rank` keeps that in check.
        """),
        code("""
        rows = sorted(results, key=lambda r: -r["accuracy"])
        table = ["| fusion | test accuracy | parameters | fusion parameters | train seconds |", "|---|---|---|---|---|"]
        table += [f"| `{r['fusion']}` | {r['accuracy']:.3f} | {r['parameters']:,} | {r['fusion_parameters']:,} "
                  f"| {r['seconds']:.1f} |" for r in rows]
        display(Markdown("\\n".join(table)))
        """),
        code("""
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(1, 3, figsize=(14, 3.8))
        for axis, key, title in zip(axes, ("accuracy", "fusion_parameters", "seconds"),
                                    ("test accuracy (held-out speaker)", "fusion parameters", "training seconds")):
            axis.bar([r["fusion"] for r in results], [r[key] for r in results], color="tab:blue")
            axis.set_title(title)
            axis.tick_params(axis="x", rotation=60)
        figure.tight_layout()
        plt.show()
        """),
        md("""
        With small settings the accuracies are noise (48 training rows, one epoch); the parameter counts
        and relative times are already meaningful. Run the notebook with the full settings on a GPU for
        accuracies worth comparing, and to make the comparison harder, prepare `avdigits` with
        `hard=True` (noisy audio, occluded images), where neither modality suffices alone and the way
        they are merged matters more.

        ## Inference

        A trained fusion model predicts like any Keras model on a batch of preprocessed features. It also
        answers when a modality is missing: zero its presence flag and the fusion masks it out.
        """),
        code("""
        probabilities = model.predict(features, verbose=0)
        without_audio = dict(features, audio_present=np.zeros_like(features["audio_present"]))
        print("true     :", labels.numpy()[:8].tolist())
        print("both     :", probabilities.argmax(-1)[:8].tolist())
        print("no audio :", model.predict(without_audio, verbose=0).argmax(-1)[:8].tolist())
        """),
        md("""
        ## Conclusion

        Every fusion in the registry trained on the same pipeline with one config key changed. To add
        your own, subclass `mmkeras.layers.Fusion`, register it with
        `@mmkeras.registry.register("fusion", "my_fusion")`, and it appears in `registry.names("fusion")`,
        in this comparison and in the test suite's fusion checks.
        """),
    ]


# ----------------------------------------------------------------------------- 03 your own data
def your_own_data() -> list:
    return [
        md("""
        # Your own data: from a folder of files to a trained model

        **Author:** the mmkeras developers<br>
        **Description:** write a manifest for a folder of images and texts, find the broken files before
        training does, then train.

        ## Introduction

        Real datasets arrive as folders, not as tidy tensors. mmkeras reads a **manifest**: a CSV (or
        JSONL) with one row per example, one column per modality naming a file or holding the text, and
        a label column. Paths are relative to the manifest. This notebook:

        1. builds a typical "own data" folder (images sorted into one folder per class, a `.txt` beside
           each image) from the bundled Noto Emoji set,
        2. writes the manifest and the train / validation / test split,
        3. breaks a few rows on purpose and lets `mmkeras.validate` find them,
        4. trains an image + text model on the clean data.
        """),
        *setup_cells(extra_imports="import csv\nimport random\nimport shutil\n\nfrom IPython.display import Image, display"),
        md("""
        ## Data

        The bundled `emoji` set gives us real files: Noto Color Emoji PNGs, each with its Unicode name and
        keywords, in 8 groups. We rearrange them into the layout people usually have:
        `my_emoji/<class>/<name>.png` plus `my_emoji/<class>/<name>.txt`.
        """),
        code("""
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
        """),
        md("""
        ### Writing the manifest

        Walk the folder: the class is the folder name, the image is the PNG's path relative to the
        manifest, the text is the `.txt` file's content. Then split each class 70 / 15 / 15 with a fixed
        seed, so that every class is in every split and the split never changes between runs.
        """),
        code("""
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
        """),
        md("""
        The config is `configs/emoji.yaml` with its three splits pointed at our manifests. It reads the
        `image` column as a 48x48 RGB image (the RGBA glyphs are converted) and `text` as up to 16 tokens.
        """),
        write_config_cell("emoji.yaml"),
        code("""
        small = ["train.epochs=1", "train.batch_size=16",
                 "data.features.image.height=16", "data.features.image.width=16"] if SMALL else []
        manifests = [f"data.{split}={own / (split + '.csv')}" for split in ("train", "validation", "test")]
        config = mmkeras.load_config(config_file, ["data.prepare=null", *manifests, *small])
        print(config.data.train)
        """),
        md("""
        ### Finding broken rows before training does

        Real folders contain surprises: a file that was moved, an upload cut short, an empty cell. A
        training job that meets one of them hours in is expensive, so `mmkeras.validate` decodes **every**
        file the manifests name, in parallel, with the same decoders the pipeline uses, and returns the
        bad rows (`mmkeras.data.validate.validate`, which `mmkeras data validate` prints). To see it work we copy the train manifest and append four rows:

        - an image that does not exist,
        - a PNG truncated to its first bytes,
        - an empty (0-byte) PNG,
        - a row whose image cell is blank.

        The blank cell is **not** an error: a blank cell is a missing modality, and the model handles it
        through the presence flag. The other three are.
        """),
        code("""
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
        """),
        code("""
        from mmkeras.data.validate import format_bad_rows, validate

        broken_config = mmkeras.apply_overrides(config, [f"data.train={own / 'train_broken.csv'}"])
        bad_rows = validate(broken_config)
        print(format_bad_rows(bad_rows))
        """),
        md("""
        Each bad row names the split, the row number in the manifest (the header is not counted), the
        column, the reason and the path as written. The command line does the same and exits with status
        1 when anything is wrong, so it can gate a training job in CI:
        """),
        code("""
        broken_config_file = WORKDIR / "configs" / "emoji_broken.yaml"
        broken_config_file.write_text(CONFIG_YAML)
        command = [sys.executable, "-m", "mmkeras.cli", "data", "validate", "--config", str(broken_config_file),
                   "--set", "data.prepare=null",
                   "--set", f"data.train={own / 'train_broken.csv'}",
                   "--set", f"data.validation={own / 'validation.csv'}",
                   "--set", f"data.test={own / 'test.csv'}"]
        print("$ mmkeras data validate --config emoji_broken.yaml --set data.train=.../train_broken.csv ...")
        result = subprocess.run(command, capture_output=True, text=True)
        print(result.stdout.strip())
        print("exit status:", result.returncode)
        """),
        md("""
        Two ways forward: fix the files (the usual answer), or set `data.on_error: skip`, which drops a
        bad row when the pipeline meets it and logs the row, column and reason with a running count. Here
        the skipping pipeline reads the broken manifest without stopping; the rows it keeps are the
        original ones plus the blank-image row.
        """),
        code("""
        skipping = mmkeras.apply_overrides(broken_config, ["data.on_error=skip"])
        preprocessor = mmkeras.fit_preprocessor(config)
        dataset = mmkeras.build_dataset(skipping, "train", preprocessor, training=False, batch_size=64,
                                        drop_remainder=False)
        kept = sum(int(labels.shape[0]) for _, labels in dataset)
        print(f"{kept} of {len(rows)} rows kept")
        """),
        md("""
        ## Model

        Text and image each get an encoder (a bag of embeddings, a small CNN), merged by a `gated` fusion,
        which learns per example how much to trust each modality: useful here, since an emoji's name
        often gives its group away while the picture helps when the name is ambiguous.
        """),
        code("""
        model = mmkeras.build_model(config.model, preprocessor)
        print(model.count_params(), "parameters;", preprocessor.num_classes, "classes:", preprocessor.class_names)
        """),
        md("""
        ## Training

        On the clean manifests.
        """),
        code("""
        run = mmkeras.train(config, run_dir=WORKDIR / "runs" / "my_emoji", overwrite=True)
        print({key: run.status().get(key) for key in ("epochs_done", "accuracy", "val_accuracy", "train_seconds")})
        """),
        md("""
        ## Evaluation
        """),
        code("""
        report = mmkeras.evaluate_run(run.run_dir)
        print(f"test accuracy {report['accuracy']:.3f}, macro F1 {report['macro_f1']:.3f}")
        for column, row in report["modality_ablation"].items():
            print(f"without {column}: {row['accuracy']:.3f} ({row['delta']:+.3f})")
        """),
        md("""
        ## Inference

        The trained run's preprocessor turns raw cells (a text, the bytes of an image, "" for a missing
        one) into model inputs, exactly as the exported model will.
        """),
        code("""
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
        """),
        md("""
        ## Conclusion

        Bringing your own data means writing a manifest: one row per example, one column per modality,
        paths relative to the file. Run `mmkeras data validate` on it before the first long training job;
        it reads every file once and tells you exactly which rows to fix.
        """),
    ]


# ----------------------------------------------------------------------------- 04 speech
def speech() -> list:
    return [
        md("""
        # Speech front ends: from WAV bytes to what the model sees

        **Author:** the mmkeras developers<br>
        **Description:** waveform, STFT, log-mel, MFCC and SpecAugment, drawn, on Speech Commands and
        the Free Spoken Digit Dataset.

        ## Introduction

        A speech encoder rarely reads raw samples. The audio *front end* turns a recording into a
        sequence of frames first: short overlapping windows, their spectrum (STFT), the spectrum on the
        mel scale that mimics the ear (log-mel), or a compact decorrelated summary of it (MFCC).
        Training adds SpecAugment, which hides random time and frequency bands so the model cannot rely
        on any single one.

        mmkeras computes all of this with `tf.signal` (see `mmkeras/data/audio.py`), so the **same ops**
        run in the `tf.data` pipeline and inside the exported SavedModel: TF Serving receives WAV bytes and
        computes the same features the model was trained on.
        """),
        *setup_cells(extra_imports=(
            "import csv\nimport dataclasses\n\nimport matplotlib.pyplot as plt\nimport numpy as np\nimport tensorflow as tf\n\n"
            "from mmkeras.config import AudioFeature\nfrom mmkeras.data import audio")),
        md("""
        ## Data

        Two bundled sets: `speech_commands_mini` (one-second 16 kHz clips of 30 command words) and
        `digits`, whose audio column is the Free Spoken Digit Dataset (8 kHz recordings of digits).
        """),
        code("""
        commands = mmkeras.datasets.ensure_prepared("speech_commands_mini", WORKDIR / "data" / "speech_commands_mini")
        digits = mmkeras.datasets.ensure_prepared("digits", WORKDIR / "data" / "digits")
        with open(commands / "train.csv", newline="") as handle:
            command_row = next(row for row in csv.DictReader(handle) if row["label"] == "yes")
        with open(digits / "train.csv", newline="") as handle:
            digit_row = next(csv.DictReader(handle))
        print(command_row["audio"], "|", digit_row["audio"])
        """),
        md("""
        ### Decoding and resampling

        `audio.decode` reads the WAV with `tf.audio.decode_wav`, mixes the channels to mono and resamples
        to the configured `sample_rate` in the FFT domain (band-limited, so a tone keeps its pitch). Both
        files are brought to 16 kHz here; `audio.fix_length` then cuts or pads to `duration`.
        """),
        code("""
        DURATION = 0.5 if SMALL else 1.0
        base = AudioFeature(sample_rate=16000, duration=DURATION, frame_length=400, frame_step=160,
                            fft_length=512, num_mel_bins=40, num_mfcc=13)
        clips = {}
        for name, path in (("speech commands: 'yes'", commands / command_row["audio"]),
                           (f"FSDD: '{digit_row['label']}' (8 kHz file)", digits / digit_row["audio"])):
            waveform = audio.decode(tf.io.read_file(str(path)), base)
            clips[name] = audio.fix_length(waveform, base)
            print(f"{name}: {waveform.shape[0]} samples at 16 kHz -> {clips[name].shape[0]} after fix_length")

        figure, axes = plt.subplots(1, 2, figsize=(12, 2.5))
        for axis, (name, clip) in zip(axes, clips.items()):
            axis.plot(np.arange(clip.shape[0]) / base.sample_rate, clip.numpy(), linewidth=0.5)
            axis.set_title(name)
            axis.set_xlabel("seconds")
        figure.tight_layout()
        plt.show()
        """),
        md("""
        ## The four front ends

        `audio.frontend` computes one of `waveform` (the samples as a `[samples, 1]` sequence), `stft`
        (magnitudes, `fft_length // 2 + 1` bins per frame), `logmel` (`num_mel_bins` mel bands, log scale)
        or `mfcc` (the first `num_mfcc` cepstral coefficients). `audio.feature_shape` gives the shape
        without computing anything, which is how the model is sized before it sees data.
        """),
        code("""
        frontends = ["waveform", "stft", "logmel", "mfcc"]
        for name in frontends:
            print(f"{name:9s}", audio.feature_shape(dataclasses.replace(base, frontend=name)))

        figure, axes = plt.subplots(len(clips), 4, figsize=(15, 5.5))
        for row, (clip_name, clip) in enumerate(clips.items()):
            for column, name in enumerate(frontends):
                values = audio.frontend(clip, dataclasses.replace(base, frontend=name)).numpy()
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
        """),
        md("""
        Log-mel keeps the time-frequency picture at a fraction of the STFT's size and is the usual input
        for CNN / CRNN speech encoders; MFCCs compress it further (good for small recurrent models).
        The waveform front end hands the raw samples to a 1-D convolutional encoder that learns its own
        filters, and needs more data to do so.

        ## SpecAugment

        `audio.spec_augment(features, settings, seed)` zeroes `time_masks` bands of up to
        `time_mask_width` frames and `freq_masks` bands of up to `freq_mask_width` bins (Park et al.,
        2019). It is stateless: the same seed gives the same masks, so runs are reproducible; the pipeline
        draws a fresh seed per example and epoch, and applies it only when training.
        """),
        code("""
        logmel = audio.frontend(clips["speech commands: 'yes'"], base)
        settings = {"time_masks": 2, "time_mask_width": 10, "freq_masks": 2, "freq_mask_width": 6}
        figure, axes = plt.subplots(1, 4, figsize=(15, 2.8))
        axes[0].imshow(logmel.numpy().T, origin="lower", aspect="auto", cmap="magma")
        axes[0].set_title("log-mel")
        for axis, seed in zip(axes[1:], (1, 2, 3)):
            masked = audio.spec_augment(logmel, settings, tf.constant([seed, 0]))
            axis.imshow(masked.numpy().T, origin="lower", aspect="auto", cmap="magma")
            axis.set_title(f"SpecAugment, seed {seed}")
        figure.tight_layout()
        plt.show()
        """),
        md("""
        ## Model

        In a config, all of this is a few keys of an audio feature. `configs/speech_commands.yaml` asks for
        16 kHz log-mel frames with SpecAugment and a CRNN encoder:
        """),
        write_config_cell("speech_commands.yaml"),
        small_copy_cell(),
        code("""
        overrides = [f"data.features.audio.duration={DURATION}"]
        if SMALL:
            overrides += [*split_overrides(small_copy(commands, {"train": 60, "validation": 30, "test": 30})),
                          "train.epochs=1", "train.batch_size=16", "train.warmup_epochs=0"]
        config = mmkeras.load_config(config_file, overrides)
        print(config.data.features["audio"])
        """),
        md("""
        The `Preprocessor` adds one more step the plain functions above do not: after the front end it
        normalises each mel band with the mean and standard deviation measured on the **train** split
        (stored with the run, reused at serving time). `preprocess(..., training=True)` adds the random
        crop and SpecAugment; at inference the same clip always gives the same features.
        """),
        code("""
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
        """),
        md("""
        ## Training

        205 clips for 30 words is very little data, which is exactly where augmentation matters. The full
        settings train 40 epochs; with small ones, one.
        """),
        code("""
        run = mmkeras.train(config, run_dir=WORKDIR / "runs" / "speech_commands", overwrite=True)
        print({key: run.status().get(key) for key in ("epochs_done", "accuracy", "val_accuracy", "train_seconds")})
        """),
        md("""
        ## Evaluation
        """),
        code("""
        report = mmkeras.evaluate_run(run.run_dir)
        print(f"test accuracy {report['accuracy']:.3f} on {report['num_examples']} clips "
              f"({preprocessor.num_classes} words, chance {1 / preprocessor.num_classes:.3f})")
        """),
        md("""
        ## Inference

        The run's model and preprocessor label a clip given as WAV bytes.
        """),
        code("""
        best = keras.models.load_model(run.best_model)
        batch = preprocessor.preprocess_batch({"audio": tf.stack([raw["audio"]])})
        probabilities = best.predict(batch, verbose=0)[0]
        top = np.argsort(probabilities)[::-1][:3]
        print("true: yes | top 3:", [(preprocessor.class_names[i], round(float(probabilities[i]), 3)) for i in top])
        """),
        md("""
        ## Conclusion

        Front end, normalisation and augmentation are configuration, not code: change `frontend`,
        `num_mel_bins` or `spec_augment` in the config and the pipeline, the model's input shape and the
        exported serving graph all follow.
        """),
    ]


# ----------------------------------------------------------------------------- 05 scaling
def scaling() -> list:
    tpu_detect = textwrap.dedent("""
        # A TPU must be known before Keras is imported: on a Colab TPU runtime we train with JAX.
        ON_TPU = bool(os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME")) or os.path.exists("/dev/accel0")
        if ON_TPU:
            os.environ["KERAS_BACKEND"] = "jax"
    """)
    return [
        md("""
        # GPUs, TPUs and scaling up

        **Author:** the mmkeras developers<br>
        **Description:** strategies, mixed precision, XLA, `steps_per_execution` and TFRecord shards; the
        JAX path for Colab TPUs and the TensorFlow `TPUStrategy` path.

        ## Introduction

        The model code of mmkeras uses only `keras.ops` and `keras.layers`, so the same model trains on
        the TensorFlow and the JAX backend. Where it runs is configuration, in the `train` section:

        | key | values | what it does |
        |---|---|---|
        | `backend` | `tensorflow`, `jax` | Keras backend (JAX is how Colab TPUs train today) |
        | `strategy` | `auto`, `cpu`, `gpu`, `mirrored`, `tpu`, `multi_worker` (TF); `data_parallel` (JAX) | devices and replicas |
        | `precision` | `float32`, `mixed_float16` (GPU), `mixed_bfloat16` (TPU, recent CPUs) | compute dtype |
        | `jit_compile` | `true` / `false` | compile the train step with XLA |
        | `steps_per_execution` | integer | run several steps per call, less Python overhead |
        | `batch_size` | integer | the **global** batch, split among replicas |

        This notebook runs on whatever it finds (a CPU here); the TPU cell runs only on a TPU.
        """),
        *setup_cells(extra_imports="import time\n\nimport tensorflow as tf", before_keras=tpu_detect),
        md("""
        ## Data

        The `digits` dataset, as in the quickstart.
        """),
        code("""
        folder = mmkeras.datasets.ensure_prepared("digits", WORKDIR / "data" / "digits")
        """),
        write_config_cell("digits.yaml"),
        small_copy_cell(),
        code("""
        small = [] if not SMALL else [
            *split_overrides(small_copy(folder, {"train": 64, "validation": 32, "test": 32})),
            "train.epochs=1", "train.batch_size=16",
            "data.features.image.height=16", "data.features.image.width=16",
            "data.features.audio.duration=0.5", "data.features.audio.num_mel_bins=16",
        ]
        config = mmkeras.load_config(config_file, small)
        """),
        md("""
        ### TFRecord shards

        On a TPU the input pipeline must keep up with the accelerator, and on Cloud TPUs it must read from
        Cloud Storage (`gs://`), not from the local disk. Both argue for a few large files instead of
        thousands of small ones. `mmkeras.data.tfrecord.write_tfrecords` packs each split into shards
        holding the **encoded** files (PNG and WAV bytes, the text, the label): decoding still happens in
        the pipeline, with the same Preprocessor, so nothing changes but where the bytes come from.
        Pointing `data.train` at a glob of shards is all a config needs.
        """),
        code("""
        from mmkeras.data import tfrecord

        shards = WORKDIR / "tfrecords" / "digits"
        for split in ("train", "validation", "test"):
            paths = tfrecord.write_tfrecords(config, split, str(shards), num_shards=4)
            print(split, [Path(p).name for p in paths], tfrecord.count_records(str(shards / f"{split}-*.tfrecord")), "records")
        tfrecord_overrides = [f"data.{split}={shards / (split + '-*.tfrecord')}" for split in ("train", "validation", "test")]
        # On Google Cloud, copy the folder to a bucket and use gs://bucket/digits/train-*.tfrecord instead.
        """),
        md("""
        ## Model

        ### Strategies

        `train.strategy: auto` picks a TPU if one is attached, else `MirroredStrategy` over several GPUs,
        else one GPU or the CPU. `build_strategy` is what the trainer calls; it also checks the speed
        settings against the strategy and refuses the combinations that do not work.
        """),
        code("""
        from mmkeras.training.strategy import build_strategy

        print("devices:", [d.name for d in tf.config.list_logical_devices()])
        plan = build_strategy(config.train)
        print(f"strategy {plan.name}: {plan.num_replicas} replica(s)")
        """),
        md("""
        ### Mixed precision

        With `precision: mixed_bfloat16` (TPUs, recent CPUs) or `mixed_float16` (NVIDIA GPUs) layers
        compute in 16 bits and keep float32 weights; the fusion and the softmax head still return float32.
        It halves activation memory and is much faster on hardware with 16-bit matrix units.
        """),
        code("""
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
        """),
        md("""
        ## Training

        One run with every speed setting on, reading the TFRecord shards: XLA (`jit_compile`), several
        steps per execution and bfloat16 compute. (Under `mirrored` and `multi_worker` Keras 3 on TF cannot
        use `jit_compile` or `steps_per_execution > 1`; `build_strategy` says so instead of failing
        obscurely.)
        """),
        code("""
        fast = mmkeras.apply_overrides(config, [
            *tfrecord_overrides, "train.strategy=auto", "train.jit_compile=true",
            "train.steps_per_execution=2", "train.precision=mixed_bfloat16",
        ])
        run = mmkeras.train(fast, run_dir=WORKDIR / "runs" / "scaling", overwrite=True)
        status = run.status()
        print({key: status.get(key) for key in ("backend", "strategy", "replicas", "precision",
                                                 "epochs_done", "train_seconds", "val_accuracy")})
        """),
        md("""
        ## Evaluation

        The report reads the run's own config, so it evaluates from the TFRecord shards too.
        """),
        code("""
        report = mmkeras.evaluate_run(run.run_dir)
        print(f"test accuracy {report['accuracy']:.3f} on {report['num_examples']} examples")
        """),
        md("""
        ## On a Colab TPU: the JAX path

        Colab's TPU runtimes come with JAX. Keras picks its backend at import, so the Setup cell above set
        `KERAS_BACKEND=jax` **before** importing Keras when it found a TPU. The config then asks for:

        ```yaml
        train:
          backend: jax
          strategy: data_parallel      # keras.distribution.DataParallel over the 8 TPU cores
          precision: mixed_bfloat16    # the TPU's native matrix dtype
          jit_compile: true
          batch_size: 256              # global: 32 per core
        ```

        The `tf.data` pipeline still runs on the host CPU (TensorFlow is only the input pipeline there),
        and the exported SavedModel is produced with `jax2tf`, so TF Serving serves it the same way. The
        cell below runs only on a TPU.
        """),
        code("""
        if ON_TPU:
            tpu_config = mmkeras.apply_overrides(config, [
                "train.backend=jax", "train.strategy=data_parallel", "train.precision=mixed_bfloat16",
                "train.jit_compile=true", "train.batch_size=256", "train.epochs=10",
            ])
            tpu_run = mmkeras.train(tpu_config, run_dir=WORKDIR / "runs" / "tpu_jax", overwrite=True)
            print(tpu_run.status())
        else:
            print("no TPU attached: skipping the JAX TPU run")
        """),
        md("""
        ### TensorFlow runtimes with a TPU: `TPUStrategy`

        On a runtime whose TensorFlow has TPU support (Cloud TPU VMs with `tensorflow-tpu`), keep the
        TensorFlow backend and set `train.strategy: tpu`: mmkeras connects a `TPUClusterResolver`
        (`tpu="local"` on TPU VMs), initialises the TPU system and builds the model under
        `tf.distribute.TPUStrategy`. TPUs need static shapes, so the trainer drops the last partial batch
        of every split. From the command line:

        ```bash
        mmkeras train --config configs/digits.yaml --run-dir runs/tpu \\
            --set train.strategy=tpu --set train.precision=mixed_bfloat16 \\
            --set train.batch_size=1024 --set train.steps_per_execution=32 \\
            --set data.train='gs://BUCKET/digits/train-*.tfrecord' \\
            --set data.validation='gs://BUCKET/digits/validation-*.tfrecord'
        ```

        With several GPUs, `train.strategy: mirrored` (one machine) or `multi_worker` (several machines,
        described by `TF_CONFIG`) are the TensorFlow choices; `data_parallel` the JAX one.

        ## Inference

        Whatever trained it, a run is evaluated and exported the same way; the speed settings do not
        change the model, only how it was trained.
        """),
        code("""
        best = keras.models.load_model(run.best_model)
        print(best.name, "| inputs:", sorted(best.input.keys()) if isinstance(best.input, dict) else best.input_names)
        """),
        md("""
        ## Conclusion

        Scaling is four keys of the `train` section plus, for TPUs, TFRecord shards. Start with
        `strategy: auto` and `precision: float32`; turn on `mixed_*` precision and a larger
        `steps_per_execution` when the accelerator is idle waiting for Python, and shards when it waits
        for the disk.
        """),
    ]


# ----------------------------------------------------------------------------- 06 serving
def serving() -> list:
    return [
        md("""
        # Serving with TF Serving: raw text, image bytes and WAV bytes in

        **Author:** the mmkeras developers<br>
        **Description:** export a run, inspect its signatures and warm-up file, build REST requests and
        serve it with the stock `tensorflow/serving` image.

        ## Introduction

        A served model should take what clients have: a string, a JPEG from a phone, a WAV from a
        microphone. `mmkeras.export_run` writes a SavedModel whose `serving_default` signature does
        exactly that: decoding, resizing, resampling, log-mel features and normalisation are TensorFlow
        ops inside the graph, driven by the same Preprocessor state as training. Only core TensorFlow ops
        are used, so the stock TF Serving binary runs it.
        """),
        *setup_cells(extra_imports="import base64\nimport csv\nimport json\nimport shutil"),
        md("""
        ## Data

        The `digits` dataset (text, image, audio).
        """),
        code("""
        folder = mmkeras.datasets.ensure_prepared("digits", WORKDIR / "data" / "digits")
        """),
        write_config_cell("digits.yaml"),
        small_copy_cell(),
        md("""
        ## Model

        The default three-branch model of `configs/digits.yaml`; see the quickstart for a tour.
        """),
        code("""
        small = [] if not SMALL else [
            *split_overrides(small_copy(folder, {"train": 64, "validation": 32, "test": 32})),
            "train.epochs=1", "train.batch_size=16",
            "data.features.image.height=16", "data.features.image.width=16",
            "data.features.audio.duration=0.5", "data.features.audio.num_mel_bins=16",
        ]
        config = mmkeras.load_config(config_file, ["export.top_k=3", *small])
        """),
        md("""
        ## Training
        """),
        code("""
        run = mmkeras.train(config, run_dir=WORKDIR / "runs" / "serving", overwrite=True)
        print({key: run.status().get(key) for key in ("epochs_done", "val_accuracy")})
        """),
        md("""
        ## Evaluation

        Evaluate before exporting: the report is the record of what this version can do.
        """),
        code("""
        report = mmkeras.evaluate_run(run.run_dir)
        print(f"test accuracy {report['accuracy']:.3f}")
        """),
        md("""
        ## Export

        TF Serving watches a *model base* folder and serves its highest integer version. An export writes
        `BASE/<N>/` and nothing else there (it builds in a hidden folder and renames at the end, so TF
        Serving never sees half a model).
        """),
        code("""
        base = WORKDIR / "models" / "digits"
        export_path = mmkeras.export_run(run.run_dir, base, version=1, overwrite=True)
        for path in sorted(export_path.rglob("*")):
            print(path.relative_to(base))
        """),
        md("""
        ### The signatures

        `saved_model_cli show` (installed with TensorFlow) lists them. `serving_default` takes one
        `string [-1]` tensor per column, named by modality (`text`, `image_bytes`, `audio_bytes`); `""`
        means the modality is missing for that example. `serve_tensors` takes already preprocessed
        tensors, for clients that do their own preprocessing. Both return the probabilities, the class
        ids and names, and the top-k names and probabilities.
        """),
        code("""
        saved_model_cli = shutil.which("saved_model_cli") or str(Path(sys.executable).parent / "saved_model_cli")
        shown = subprocess.run([saved_model_cli, "show", "--dir", str(export_path), "--tag_set", "serve",
                                "--signature_def", "serving_default"], capture_output=True, text=True)
        print(shown.stdout or shown.stderr)
        print(json.dumps(json.loads((export_path / "mmkeras_export.json").read_text())["input_columns"], indent=1))
        """),
        md("""
        ### The warm-up file

        The first request to a freshly loaded model pays for graph initialisation. TF Serving replays the
        requests in `assets.extra/tf_serving_warmup_requests` (a TFRecord of `PredictionLog` protos)
        before it marks the version available; mmkeras writes real validation examples there, as raw
        bytes, exactly what a client sends.
        """),
        code("""
        from mmkeras.export.warmup import read_warmup_requests

        logs = read_warmup_requests(export_path / "assets.extra" / "tf_serving_warmup_requests")
        print(len(logs), "warm-up requests")
        request = logs[0].predict_log.request
        print("model:", request.model_spec.name, "| signature:", request.model_spec.signature_name)
        for name, tensor in sorted(request.inputs.items()):
            value = tensor.string_val[0]
            print(f"  {name}: {len(value)} bytes", repr(value[:12]))
        """),
        md("""
        ## Inference

        ### REST request bodies

        TF Serving's REST API takes JSON. Binary strings (image and WAV bytes) travel base64-encoded as
        `{"b64": "..."}`. The *row* form lists one object per example:

        ```json
        {"instances": [{"text": "seven", "image_bytes": {"b64": "iVBORw0..."}, "audio_bytes": {"b64": "UklGR..."}}]}
        ```

        Every input of the signature must be present; send `""` for a missing modality. We build a body
        for two test examples, the second without its recording. `mmkeras.export.rest.parse_request`
        checks a body the way TF Serving parses it.
        """),
        code("""
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
        """),
        md("""
        ### Answering it locally

        `mmkeras predict --request request.json` loads the SavedModel with TensorFlow and answers the body
        as TF Serving would (same JSON layout, same float formatting), which makes it a quick check of a
        request before a server is involved.
        """),
        code("""
        answer = subprocess.run([sys.executable, "-m", "mmkeras.cli", "predict", "--model", str(base),
                                 "--request", str(request_file)], capture_output=True, text=True)
        print("$ mmkeras predict --model models/digits --request request.json")
        response = json.loads(answer.stdout) if answer.returncode == 0 else None
        print(answer.stdout if response is None else json.dumps(
            [{k: p[k] for k in ("class_names", "top_k_class_names", "top_k_probabilities")}
             for p in response["predictions"]], indent=1))
        print(answer.stderr[-2000:] if answer.returncode else "")
        """),
        md("""
        ### Serving it with Docker

        On a machine with Docker, the stock image serves the base folder (it picks up new versions as
        they appear):

        ```bash
        docker run --rm -p 8501:8501 -p 8500:8500 \\
            -v "$PWD/nb_work/models/digits:/models/digits" \\
            -e MODEL_NAME=digits tensorflow/serving
        ```

        Check that the version is loaded, read its signatures, then send the body written above:

        ```bash
        curl http://localhost:8501/v1/models/digits
        curl http://localhost:8501/v1/models/digits/metadata
        curl -X POST http://localhost:8501/v1/models/digits:predict -d @nb_work/request.json
        ```

        The answer has the same layout as the `mmkeras predict` output above:
        `{"predictions": [{"class_names": "7", "top_k_class_names": [...], "top_k_probabilities": [...], ...}]}`.
        A bad input (a truncated PNG, a file that is not a WAV) gets an `{"error": "image_bytes[1] is not a
        PNG/JPEG/GIF/BMP image"}` answer naming the input and row, and the server keeps running. gRPC
        clients (port 8500) send the same inputs as `tf.make_tensor_proto(list_of_bytes)` in a
        `PredictRequest`, which is what the warm-up records above are.

        ## Conclusion

        An mmkeras export is a self-contained TF Serving model: raw bytes in, class names and probabilities
        out, warm-up requests included, no client-side preprocessing to keep in sync. To roll out a new
        model, export it as the next version into the same base folder; TF Serving switches when it has
        loaded and warmed it.
        """),
    ]


NOTEBOOKS = {
    "01_quickstart.ipynb": quickstart,
    "02_fusion_methods.ipynb": fusion_methods,
    "03_your_own_data.ipynb": your_own_data,
    "04_speech.ipynb": speech,
    "05_tpu_gpu_and_scaling.ipynb": scaling,
    "06_tf_serving.ipynb": serving,
}


def render(name: str) -> str:
    """The notebook file's text, as written to disk."""
    return nbformat.writes(notebook(NOTEBOOKS[name]())) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a notebook differs from this source")
    args = parser.parse_args(argv)
    NOTEBOOK_DIR.mkdir(exist_ok=True)
    stale = []
    for name in NOTEBOOKS:
        path = NOTEBOOK_DIR / name
        text = render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        elif not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("out of date (run python tools/build_notebooks.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
