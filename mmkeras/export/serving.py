"""``export_run(run_dir, base)``: a trained run as a TF Serving SavedModel that takes raw bytes.

TF Serving watches a model base folder and serves its highest integer version, so an export
writes ``BASE/<N>/`` (the next free integer by default) and nothing else there:

```
BASE/N/
  saved_model.pb, variables/         signatures serving_default and serve_tensors
  assets.extra/tf_serving_warmup_requests   PredictionLog records replayed by TF Serving at load
  mmkeras_export.json                inputs, outputs, class names, top_k, versions, backend
```

The export has two stages, so that the same code serves runs trained on either Keras backend:

1. ``keras.export.ExportArchive`` tracks the model and writes a tensor-in, probabilities-out
   SavedModel (on JAX it converts the model with jax2tf; Keras cannot be called inside a
   ``tf.function`` there).
2. A pure TensorFlow ``tf.Module`` holds the ``Preprocessor.module`` (lookup tables, audio
   statistics) and the reloaded stage-1 SavedModel, and defines the signatures:

- ``serving_default``: one ``tf.string [None]`` input per feature column, named by modality
  (``text``, ``image_bytes`` for encoded PNG/JPEG/GIF/BMP, ``audio_bytes`` for WAV files; with two
  columns of one modality, ``<column>`` for text and ``<column>_bytes`` otherwise); "" is a missing
  modality. Inputs are checked first (``mmkeras.export.checks``): a bad one fails with an
  InvalidArgumentError that names it (``image_bytes[2] is not a PNG/JPEG/GIF/BMP image``).
- ``serve_tensors``: the model's own inputs (``<column>``, ``<column>_present``), preprocessed.

Both return ``probabilities`` ``[None, C]`` float32, ``class_ids`` ``[None]`` int64,
``class_names`` ``[None]`` string, ``top_k_class_names`` and ``top_k_probabilities`` ``[None, k]``
with ``k = min(export.top_k, C)``.

Example (not run here: it needs a trained run):
    path = export_run("runs/demo", "exports/digits")   # exports/digits/1
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    served(text=tf.constant(["seven"]), image_bytes=tf.constant([png]), audio_bytes=tf.constant([b""]))
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from mmkeras.export import checks

SERVING_DEFAULT = "serving_default"
SERVE_TENSORS = "serve_tensors"
METADATA_FILE = "mmkeras_export.json"
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
OUTPUTS = ("probabilities", "class_ids", "class_names", "top_k_class_names", "top_k_probabilities")
_RAW_SUFFIX = {"text": "", "image": "_bytes", "audio": "_bytes"}


def serving_input_names(input_specs) -> dict:
    """Signature input name -> feature column: ``text`` / ``image_bytes`` / ``audio_bytes`` by modality,
    or ``<column>`` / ``<column>_bytes`` for a modality that has more than one column.

    Example:
        >>> from mmkeras.data.schema import FeatureSpec
        >>> serving_input_names([FeatureSpec("caption", "text", (8,), "int32"),
        ...                      FeatureSpec("photo", "image", (8, 8, 1), "float32")])
        {'text': 'caption', 'image_bytes': 'photo'}
    """
    counts = {}
    for spec in input_specs:
        counts[spec.modality] = counts.get(spec.modality, 0) + 1
    names = {}
    for spec in input_specs:
        base = spec.modality if counts[spec.modality] == 1 else spec.column
        names[base + _RAW_SUFFIX[spec.modality]] = spec.column
    return names


def version_dirs(base) -> dict:
    """``{version: path}`` of the integer-named folders of a model base folder."""
    base = Path(base)
    if not base.is_dir():
        return {}
    return {int(p.name): p for p in base.iterdir() if p.is_dir() and p.name.isdigit()}


def _probabilities(output):
    if isinstance(output, dict):
        return output["probabilities"]
    if isinstance(output, (list, tuple)):
        return output[0]
    return output


def _model_signature(model) -> dict:
    """``{input name: tf.TensorSpec}`` of a Functional model's inputs, batch dimension unknown."""
    return {t.name: tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=t.name) for t in model.inputs}


def write_model_endpoint(model, path) -> None:
    """Stage 1: the Keras model as a SavedModel whose ``serve`` endpoint maps inputs to probabilities."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda inputs: _probabilities(model(inputs, training=False)),
                         input_signature=[_model_signature(model)])
    archive.write_out(str(path), verbose=False)


class ServingModule(tf.Module):
    """Stage 2: preprocessing, input checks and the stage-1 model behind two signatures.

    Args:
        preprocessor: the run's adapted ``Preprocessor``.
        model_endpoint: the reloaded stage-1 SavedModel (``tf.saved_model.load``).
        model_signature: ``{input name: tf.TensorSpec}`` of the model.
        top_k: number of classes in the ``top_k_*`` outputs (clipped to the number of classes).
    """

    def __init__(self, preprocessor, model_endpoint, model_signature: dict, top_k: int):
        super().__init__(name="mmkeras_serving")
        self.preprocessor_module = preprocessor.module
        self.model = model_endpoint
        self._preprocessor = preprocessor
        self._model_signature = dict(model_signature)
        self.class_names = list(preprocessor.class_names)
        self.top_k = max(1, min(int(top_k), len(self.class_names)))
        self.input_names = serving_input_names(preprocessor.input_specs)
        self._features = {spec.column: preprocessor.features[spec.column] for spec in preprocessor.input_specs}
        self._modalities = {spec.column: spec.modality for spec in preprocessor.input_specs}
        self._raw_signature = {name: tf.TensorSpec([None], tf.string, name=name) for name in self.input_names}
        self.serve_raw = tf.function(self._serve_raw, input_signature=[self._raw_signature])
        self.serve_tensors = tf.function(self._serve_tensors, input_signature=[self._model_signature])

    def _classify(self, probabilities) -> dict:
        probabilities = tf.cast(probabilities, tf.float32)
        names = tf.constant(self.class_names, tf.string)
        top = tf.math.top_k(probabilities, k=self.top_k)
        class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {
            "probabilities": probabilities,
            "class_ids": class_ids,
            "class_names": tf.gather(names, class_ids),
            "top_k_class_names": tf.gather(names, top.indices),
            "top_k_probabilities": top.values,
        }

    def _checked(self, inputs: dict) -> dict:
        assertions = [checks.assert_same_batch(inputs)] if len(inputs) > 1 else []
        for name, column in self.input_names.items():
            modality = self._modalities[column]
            if modality == "image":
                problems = checks.image_problems(inputs[name], self._features[column])
            elif modality == "audio":
                problems = checks.wav_problems(inputs[name], self._features[column])
            else:
                problems = checks.text_problems(inputs[name])
            assertions.append(checks.assert_no_problems(name, problems))
        with tf.control_dependencies(assertions):
            return {name: tf.identity(value) for name, value in inputs.items()}

    def _serve_raw(self, inputs: dict) -> dict:
        inputs = self._checked(inputs)
        raw = {column: inputs[name] for name, column in self.input_names.items()}
        features = self._preprocessor.preprocess_batch(raw)
        return self._serve_tensors({name: features[name] for name in self._model_signature})

    def _serve_tensors(self, features: dict) -> dict:
        return self._classify(self.model.serve(features))


def _next_version(base: Path, version) -> int:
    existing = version_dirs(base)
    if version is None:
        return max(existing, default=0) + 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be an integer >= 1 (TF Serving's folder names), got {version!r}")
    return version


def _describe(specs: dict) -> dict:
    return {name: {"dtype": spec.dtype.name, "shape": [-1 if d is None else d for d in spec.shape]}
            for name, spec in sorted(specs.items())}


def build_metadata(module: ServingModule, run_status: dict, config) -> dict:
    """The contents of ``mmkeras_export.json``."""
    import keras

    import mmkeras

    outputs = _describe(module.serve_raw.get_concrete_function().structured_outputs)
    columns = {name: {"column": column, "modality": module._modalities[column]}
               for name, column in module.input_names.items()}
    return {
        "format": "tf_saved_model",
        "signatures": {
            SERVING_DEFAULT: {"inputs": _describe(module._raw_signature), "outputs": outputs},
            SERVE_TENSORS: {"inputs": _describe(module._model_signature), "outputs": outputs},
        },
        "input_columns": columns,
        "class_names": module.class_names,
        "top_k": module.top_k,
        "warmup_requests": int(config.export.warmup_examples),
        "trained_backend": run_status.get("backend"),
        "export_backend": keras.backend.backend(),
        "versions": {"mmkeras": mmkeras.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
    }


def export_run(run_dir, base, version: int | None = None, *, overwrite: bool = False) -> Path:
    """Export the run's best model with its preprocessing as ``BASE/<version>/``; return that path.

    Args:
        run_dir: a trained run (``mmkeras.training.run.Run`` layout).
        base: the model base folder TF Serving is pointed at (``--model_base_path``).
        version: the version folder; default: one above the highest existing version (1 if none).
        overwrite: replace an existing version folder (refused otherwise).

    Raises:
        FileExistsError: ``BASE/<version>`` exists and ``overwrite`` is false.
        FileNotFoundError: ``run_dir`` is not a trained run.
    """
    from mmkeras.config import load_config
    from mmkeras.data.preprocessor import Preprocessor
    from mmkeras.evaluation.report import load_run_model
    from mmkeras.export.warmup import write_warmup_requests
    from mmkeras.training.run import Run, read_run_backend

    run = Run(run_dir)
    read_run_backend(run.run_dir)
    model_path = run.model_path()
    base = Path(base)
    number = _next_version(base, version)
    target = base / str(number)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass another version (--version) or overwrite=True")
    config = load_config(run.config_file)
    preprocessor = Preprocessor.load(str(run.preprocessor_dir))
    model = load_run_model(run)
    base.mkdir(parents=True, exist_ok=True)
    # TF Serving polls BASE and ignores non-integer names: build in a hidden folder, then rename.
    staging = Path(tempfile.mkdtemp(prefix=f".{number}-", dir=base))
    try:
        stage1 = staging / "stage1"
        write_model_endpoint(model, stage1)
        module = ServingModule(preprocessor, tf.saved_model.load(str(stage1)), _model_signature(model),
                               top_k=config.export.top_k)
        out = staging / "model"
        tf.saved_model.save(
            module, str(out),
            signatures={SERVING_DEFAULT: module.serve_raw.get_concrete_function(),
                        SERVE_TENSORS: module.serve_tensors.get_concrete_function()},
            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
        )
        write_warmup_requests(out / WARMUP_FILE, config, module.input_names, model_name=base.name,
                              count=config.export.warmup_examples)
        metadata = build_metadata(module, run.status(), config) | {"run_dir": str(run.run_dir.resolve()),
                                                                    "model_file": model_path.name}
        (out / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False))
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
