"""``export_run(run_dir, base)``: a trained run as a TF Serving SavedModel that takes raw bytes.

TF Serving watches a model base folder and serves its highest integer version, so an export
writes ``BASE/<N>/`` (the next free integer by default, reserved atomically: see ``versions.py``;
while it is written, the hidden ``BASE/.N-staging/``, which TF Serving ignores):

```
BASE/N/
  saved_model.pb, variables/         signatures serving_default and serve_tensors
  assets.extra/tf_serving_warmup_requests   PredictionLog records replayed by TF Serving at load
  mmkeras_export.json                inputs, outputs, class names, top_k, quantization, versions, backend
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
  modality. Inputs are checked first by their column's ``problems`` (``mmkeras.data.columns``), the
  check validation and training use: a bad one fails with an
  InvalidArgumentError that names it (``image_bytes[2] is not a PNG/JPEG/GIF/BMP image``).
- ``serve_tensors``: the model's own inputs (``<column>``, ``<column>_present``), preprocessed.

Both return the run's calibrated distribution (its temperature, ``mmkeras.evaluation.calibration``):
``probabilities`` ``[None, C]`` float32, ``class_ids`` ``[None]`` int64,
``class_names`` ``[None]`` string, ``top_k_class_names`` and ``top_k_probabilities`` ``[None, k]``
with ``k = min(export.top_k, C)``.

Example (not run here: it needs a trained run):
    path = export_run("runs/demo", "exports/digits")   # exports/digits/1
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    served(text=tf.constant(["seven"]), image_bytes=tf.constant([png]), audio_bytes=tf.constant([b""]))
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import tensorflow as tf

from mmkeras.data.columns.bytes import assert_no_problems
from mmkeras.export.quantize import check_quantize, quantize_model
from mmkeras.export.request_shape import answer_empty_batch, assert_rank_1
from mmkeras.export.versions import reserve_version, version_dirs  # noqa: F401  (version_dirs: public here too)

SERVING_DEFAULT = "serving_default"
SERVE_TENSORS = "serve_tensors"
METADATA_FILE = "mmkeras_export.json"
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
OUTPUTS = ("probabilities", "class_ids", "class_names", "top_k_class_names", "top_k_probabilities")
_TINY = 1e-30  # float32 probabilities below this are 0 for the calibrated softmax


def serving_input_names(columns) -> dict:
    """Signature input name -> feature column: ``text`` / ``image_bytes`` / ``audio_bytes`` by modality,
    or ``<column>`` / ``<column>_bytes`` for a modality that has more than one column.

    Args:
        columns: the preprocessor's columns (``Preprocessor.columns.values()``).

    Example:
        >>> from types import SimpleNamespace
        >>> from mmkeras.data.columns import build_column
        >>> serving_input_names([build_column("caption", SimpleNamespace(modality="text")),
        ...                      build_column("photo", SimpleNamespace(modality="image"))])
        {'text': 'caption', 'image_bytes': 'photo'}
    """
    columns = list(columns)
    counts = {}
    for column in columns:
        counts[column.modality] = counts.get(column.modality, 0) + 1
    names = {}
    for column in columns:
        base = column.modality if counts[column.modality] == 1 else column.name
        names[base + column.raw_input_suffix] = column.name
    return names


def assert_same_batch(inputs: dict):
    """An Assert that every tensor of ``inputs`` has the same length, listing them when not."""
    names = sorted(inputs)
    sizes = [tf.shape(inputs[name])[0] for name in names]
    parts = []
    for name, size in zip(names, sizes):
        parts += [f"{name} has ", tf.strings.as_string(size), ", "]
    message = tf.strings.join(["inputs have different batch lengths: ", *parts[:-1]])
    return tf.debugging.Assert(tf.reduce_all(tf.equal(tf.stack(sizes), sizes[0])), [message])


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
        temperature: the run's calibration temperature; every output comes from
            ``softmax(log(p) / temperature)`` (``sigmoid(logit(p) / temperature)`` for ``kind="sigmoid"``).
    """

    def __init__(self, preprocessor, model_endpoint, model_signature: dict, top_k: int,
                 temperature: float = 1.0, kind: str = "softmax"):
        super().__init__(name="mmkeras_serving")
        self.preprocessor_module = preprocessor.module
        self.model = model_endpoint
        self._preprocessor = preprocessor
        self._model_signature = dict(model_signature)
        self.class_names = list(preprocessor.class_names)
        self.top_k = max(1, min(int(top_k), len(self.class_names)))
        self.temperature, self.kind = float(temperature), kind
        self.input_names = serving_input_names(preprocessor.columns.values())
        self.modalities = {column.name: column.modality for column in preprocessor.columns.values()}
        self._raw_signature = {name: tf.TensorSpec([None], tf.string, name=name) for name in self.input_names}
        self.serve_raw = tf.function(self._serve_request, input_signature=[self._raw_signature])
        self.serve_tensors = tf.function(self._serve_tensors, input_signature=[self._model_signature])

    def _calibrated(self, probabilities):
        if self.temperature == 1.0:
            return probabilities
        log = tf.math.log(tf.maximum(probabilities, _TINY))
        if self.kind == "sigmoid":
            return tf.sigmoid((log - tf.math.log(tf.maximum(1.0 - probabilities, _TINY))) / self.temperature)
        return tf.nn.softmax(log / self.temperature, axis=-1)

    def _classify(self, probabilities) -> dict:
        probabilities = self._calibrated(tf.cast(probabilities, tf.float32))
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
        """``inputs`` behind Asserts of each column's own check (the one validation and training use)."""
        assertions = [assert_same_batch(inputs)] if len(inputs) > 1 else []
        for name, column in self.input_names.items():
            problems = self._preprocessor.columns[column].problems(inputs[name], serving=True)
            assertions.append(assert_no_problems(name, problems))
        with tf.control_dependencies(assertions):
            return {name: tf.identity(value) for name, value in inputs.items()}

    def _serve_request(self, inputs: dict) -> dict:
        empty = lambda: self._classify(tf.zeros([0, len(self.class_names)], tf.float32))  # noqa: E731
        return answer_empty_batch(assert_rank_1(inputs), self._serve_raw, empty)

    def _serve_raw(self, inputs: dict) -> dict:
        inputs = self._checked(inputs)
        raw = {column: inputs[name] for name, column in self.input_names.items()}
        columns = {column: name for name, column in self.input_names.items()}
        features = self._preprocessor.preprocess_batch(raw, input_names=columns)
        return self._serve_tensors({name: features[name] for name in self._model_signature})

    def _serve_tensors(self, features: dict) -> dict:
        return self._classify(self.model.serve(features))


def _describe(specs: dict) -> dict:
    return {name: {"dtype": spec.dtype.name, "shape": [-1 if d is None else d for d in spec.shape]}
            for name, spec in sorted(specs.items())}


def build_metadata(module: ServingModule, run_status: dict, config) -> dict:
    """The contents of ``mmkeras_export.json``."""
    import keras

    import mmkeras

    outputs = _describe(module.serve_raw.get_concrete_function().structured_outputs)
    columns = {name: {"column": column, "modality": module.modalities[column]}
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
        "calibration": {"temperature": module.temperature, "kind": module.kind,
                        "applies_to": list(OUTPUTS)},
        "warmup_requests": int(config.export.warmup_examples),
        "trained_backend": run_status.get("backend"),
        "export_backend": keras.backend.backend(),
        "versions": {"mmkeras": mmkeras.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
    }


def _disk_full(error) -> bool:
    if isinstance(error, OSError):
        return error.errno == errno.ENOSPC
    return isinstance(error, tf.errors.OpError) and "No space left on device" in (error.message or "")


def export_run(run_dir, base, version: int | None = None, *, overwrite: bool = False, quantize=None) -> Path:
    """Export the run's best model with its preprocessing as ``BASE/<version>/``; return that path.

    The version is reserved before anything is written (``mmkeras.export.versions``): exports
    running at once to one base get different versions, and a killed export's leftovers are
    removed by the next one. Nothing appears in ``BASE/<version>`` until the export is complete.

    Args:
        run_dir: a trained run (``mmkeras.training.run.Run`` layout).
        base: the model base folder TF Serving is pointed at (``--model_base_path``).
        version: the version folder; default: one above the highest existing or reserved version.
        overwrite: replace an existing version folder (refused otherwise).
        quantize: ``"int8"``: Keras's int8 weights for the layers it can quantize (``mmkeras.export.quantize``).

    Raises:
        FileExistsError: ``BASE/<version>`` exists and ``overwrite`` is false, or another export
            is writing that version.
        FileNotFoundError: ``run_dir`` is not a trained run.
        RunFailedError: the run's training failed (its model is not usable).
        OSError: the disk filled up (ENOSPC); the partial export is removed.
        ValueError: ``quantize`` is not ``"int8"``, ``"none"`` or None, or the model has nothing Keras can quantize.
    """
    from mmkeras.config import load_config
    from mmkeras.data.preprocessor import Preprocessor
    from mmkeras.evaluation.predictions import load_run_model
    from mmkeras.training.run import Run, read_run_backend

    quantize = check_quantize(quantize)
    run = Run(run_dir)
    read_run_backend(run.run_dir)
    model_path = run.model_path()
    base = Path(base)
    where = str(base)
    try:
        with reserve_version(base, version, overwrite=overwrite) as reservation:
            where = f"{reservation.target} (written in {reservation.staging})"
            config = load_config(run.config_file)
            preprocessor = Preprocessor.load(str(run.preprocessor_dir))
            out = reservation.staging / "model"
            _write_export(out, run, config, preprocessor, load_run_model(run), model_path, base.name, quantize)
            return reservation.publish(out, overwrite=overwrite)
    except (OSError, tf.errors.OpError) as error:
        if not _disk_full(error):
            raise
        raise OSError(errno.ENOSPC, f"no space left on device while exporting {run.run_dir} to {where}; "
                                    "the partial export was removed and no version folder was written") from None


def _write_export(out: Path, run, config, preprocessor, model, model_path: Path, model_name: str, quantize) -> None:
    """The SavedModel, warm-up file and metadata of one export, in the folder ``out``."""
    from mmkeras.evaluation.calibration import head_kind, run_temperature
    from mmkeras.export.warmup import write_warmup_requests

    quantization = quantize_model(model, quantize)
    stage1 = out.parent / "stage1"
    write_model_endpoint(model, stage1)
    module = ServingModule(preprocessor, tf.saved_model.load(str(stage1)), _model_signature(model),
                           top_k=config.export.top_k, temperature=run_temperature(run), kind=head_kind(config))
    signatures = {SERVING_DEFAULT: module.serve_raw.get_concrete_function(),
                  SERVE_TENSORS: module.serve_tensors.get_concrete_function()}
    tf.saved_model.save(module, str(out), signatures=signatures,
                        options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
    write_warmup_requests(out / WARMUP_FILE, config, module.input_names, model_name=model_name,
                          count=config.export.warmup_examples)
    metadata = build_metadata(module, run.status(), config) | quantization | {
        "run_dir": str(run.run_dir.resolve()), "model_file": model_path.name}
    (out / METADATA_FILE).write_text(json.dumps(metadata, indent=2, ensure_ascii=False))
