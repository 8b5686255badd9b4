"""Run an exported model on raw inputs: files, a TF Serving REST body, or the first test example.

``model_base`` is either the base folder (the latest version is used unless ``version`` is given)
or a version folder itself. Loaded SavedModels are cached per path for the life of the process.

A request the model refuses raises ``RequestRefusedError`` (a ``ValueError``) whose message is the
signature's own sentence (``image_bytes[0] is not a PNG/JPEG/GIF/BMP/WebP image``), never TensorFlow's
multi-line error text. Audio files that are not WAV (FLAC, OGG, MP3, AIFF, ...) are converted to
16-bit PCM WAV here, on the client (``wav_bytes.audio_as_wav``): the exported graph decodes WAV only.

Example:
    >>> refusal_message("Graph execution error:\\n\\nDetected at node Assert_2/Assert defined at ...\\n"
    ...                 "assertion failed: [image_bytes[0] is not a PNG/JPEG/GIF/BMP image]\\n\\t [[{{node Assert}}]]")
    'image_bytes[0] is not a PNG/JPEG/GIF/BMP image'

Not run here (it needs an export):
    predict_files("exports/digits", text="seven", audio="seven.flac")   # [("7", 0.91), ("1", 0.04), ...]
    predict_request("exports/digits", "request.json")                  # {"predictions": [...]}
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from mmkeras.export import rest
from mmkeras.export.serving import METADATA_FILE, SERVING_DEFAULT
from mmkeras.export.versions import version_dirs
from mmkeras.export.wav_bytes import audio_as_wav

_TF_NOISE = ("Graph execution error:", "Detected at node", "<stack traces unavailable>", "[[")


class RequestRefusedError(ValueError):
    """The exported model refused a request; ``input_name`` is the input its message names (or None)."""

    def __init__(self, message: str, input_name: str | None = None):
        super().__init__(message)
        self.input_name = input_name


def refusal_message(error) -> str:
    """The one sentence of a signature's error (a ``tf.errors.OpError`` or its text): the mmkeras
    check's message when an input check failed, else TensorFlow's first meaningful line."""
    text = getattr(error, "message", None) or str(error)
    lines = [re.sub(r"\s*\[Op:[^\]]*\]$", "", line.strip()) for line in text.splitlines()]
    for line in lines:
        found = re.fullmatch(r"assertion failed: \[(.*)\]", line)
        if found:
            return found.group(1)
    meaningful = [line for line in lines if line and not line.startswith(_TF_NOISE)]
    return f"the model refused the request: {meaningful[0] if meaningful else text.strip()}"


def resolve_version(model_base, version: int | None = None) -> Path:
    """The version folder to use: ``model_base`` itself if it holds a SavedModel, else its latest
    (or the given) integer version."""
    base = Path(model_base)
    if (base / "saved_model.pb").exists() and version is None:
        return base
    versions = version_dirs(base)
    if not versions:
        raise FileNotFoundError(f"{base} holds no SavedModel version folder (BASE/1/saved_model.pb); "
                                "export one with `mmkeras export`")
    if version is None:
        return versions[max(versions)]
    if version not in versions:
        raise FileNotFoundError(f"{base} has no version {version}; versions: {', '.join(map(str, sorted(versions)))}")
    return versions[version]


@functools.lru_cache(maxsize=8)
def _load(path: str):
    import tensorflow as tf

    return tf.saved_model.load(path)


def load_signature(path, name: str = SERVING_DEFAULT):
    """A signature of the SavedModel at ``path`` (loaded once per process)."""
    loaded = _load(str(Path(path).resolve()))
    if name not in loaded.signatures:
        raise ValueError(f"{path} has no signature {name!r}; signatures: {', '.join(loaded.signatures)}")
    return loaded.signatures[name]


def read_metadata(path) -> dict:
    """``mmkeras_export.json`` of a version folder."""
    file = Path(path) / METADATA_FILE
    if not file.exists():
        raise FileNotFoundError(f"{file} does not exist: {path} was not exported by mmkeras")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{file} is not valid JSON ({error}); export the run again") from None


def _run(path, inputs: dict, signature_name: str = SERVING_DEFAULT) -> dict:
    """Call a signature on ``{input: list of bytes}``; numpy outputs.

    Raises:
        RequestRefusedError: the inputs are not the signature's, or the model refused them.
    """
    import tensorflow as tf

    signature = load_signature(path, signature_name)
    expected = sorted(signature.structured_input_signature[1])
    if sorted(inputs) != expected:
        raise RequestRefusedError(f"the request's inputs ({', '.join(sorted(inputs)) or 'none'}) are not those of "
                                  f"{path}'s signature {signature_name!r} ({', '.join(expected)})")
    try:
        outputs = signature(**rest.to_tensors(inputs))
    except tf.errors.OpError as error:  # InvalidArgumentError from the checks; any other is a refusal too
        message = refusal_message(error)
        named = next((name for name in expected if re.match(rf"{re.escape(name)}\b", message)), None)
        raise RequestRefusedError(message, named) from None
    return {name: value.numpy() for name, value in outputs.items()}


def _top_k(outputs: dict, row: int = 0) -> list:
    names = [n.decode("utf-8") for n in outputs["top_k_class_names"][row]]
    return list(zip(names, [float(p) for p in outputs["top_k_probabilities"][row]]))


def _inputs_by_modality(metadata: dict) -> dict:
    by_modality = {}
    for name, info in metadata["input_columns"].items():
        by_modality.setdefault(info["modality"], []).append(name)
    return by_modality


def _require_file(file: Path, what: str) -> None:
    if file.is_dir():
        raise IsADirectoryError(f"{what} {file} is a directory, not a file")
    if not file.is_file():
        raise FileNotFoundError(f"{what} {file} does not exist")


def _read_input_file(modality: str, value) -> bytes:
    file = Path(value)
    _require_file(file, f"{modality} file")
    data = file.read_bytes()
    if not data:
        # An empty value is how a request says "this modality is missing"; an empty file is a mistake.
        raise ValueError(f"{modality} file {file} is empty")
    return audio_as_wav(data) if modality == "audio" else data


def predict_files(model_base, text=None, image=None, audio=None, version=None) -> list:
    """Top-k ``[(class name, probability)]`` for one example given as a text and/or files.

    Args:
        model_base: model base folder or version folder.
        text: the text (a string).
        image: path of an image file (PNG/JPEG/GIF/BMP/WebP).
        audio: path of an audio file: WAV is sent as it is; FLAC, OGG, MP3 and the other formats
            soundfile reads are converted to 16-bit PCM WAV first.
        version: version to use (default: the latest).

    Raises:
        ValueError: nothing given, a modality the model does not take, or an empty file.
        RequestRefusedError: the model refused an input; the message names it and its file.
    """
    path = resolve_version(model_base, version)
    by_modality = _inputs_by_modality(read_metadata(path))
    given = {"text": text, "image": image, "audio": audio}
    if all(value is None for value in given.values()):
        raise ValueError("give at least one of text, image, audio (--text / --image / --audio)")
    inputs = {name: [b""] for names in by_modality.values() for name in names}
    sources = {}
    for modality, value in given.items():
        if value is None:
            continue
        names = by_modality.get(modality, [])
        if not names:
            raise ValueError(f"the model at {path} takes no {modality} input (inputs: {', '.join(inputs)})")
        if len(names) > 1:
            raise ValueError(f"the model at {path} has {len(names)} {modality} inputs ({', '.join(names)}); "
                             "send a request body (--request) that names each")
        if modality == "text":
            inputs[names[0]] = [value.encode("utf-8")]
        else:
            inputs[names[0]] = [_read_input_file(modality, value)]
            sources[names[0]] = f"{modality} file {value}"
    try:
        return _top_k(_run(path, inputs))
    except RequestRefusedError as error:
        if error.input_name not in sources:
            raise
        raise RequestRefusedError(f"{error} ({sources[error.input_name]})", error.input_name) from None


def _read_request(request_json_path):
    file = Path(request_json_path)
    _require_file(file, "request file")
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"request file {file} is not UTF-8 text (byte {error.start}); "
                         "a TF Serving REST body is JSON, with binary inputs as {\"b64\": ...}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"request file {file} is not valid JSON ({error.msg} at line {error.lineno}, "
                         f"column {error.colno})") from None


def predict_request(model_base, request_json_path, version=None) -> dict:
    """Answer a TF Serving ``:predict`` REST body (row or columnar form) as TF Serving would."""
    path = resolve_version(model_base, version)
    body = _read_request(request_json_path)
    loaded = _load(str(Path(path).resolve()))
    signature_name = body.get("signature_name", SERVING_DEFAULT) if isinstance(body, dict) else SERVING_DEFAULT
    if signature_name not in loaded.signatures:
        raise ValueError(f"{path} has no signature {signature_name!r}; signatures: {', '.join(loaded.signatures)}")
    specs = loaded.signatures[signature_name].structured_input_signature[1]
    if any(spec.dtype != "string" for spec in specs.values()):
        raise ValueError(f"signature {signature_name!r} takes numeric tensors; predict_request answers "
                         f"string-input signatures such as {SERVING_DEFAULT!r}")
    input_names = list(specs)
    form, signature_name, inputs = rest.parse_request(body, input_names)
    return rest.format_response(_run(path, inputs, signature_name), form)


def predict_example(saved_model_path, config) -> tuple:
    """``(description, top-k)`` for the first row of the config's test manifest (the demo's last step)."""
    from mmkeras.export.warmup import example_rows, raw_request_values

    path = resolve_version(saved_model_path)
    metadata = read_metadata(path)
    manifest, rows = example_rows(config, 1, splits=("test", "validation", "train"))
    if not rows:
        raise ValueError(f"{manifest.path} has no rows to predict on")
    row = rows[0]
    names = {name: info["column"] for name, info in metadata["input_columns"].items()}
    audio = {info["column"] for info in metadata["input_columns"].values() if info["modality"] == "audio"}
    values = raw_request_values(manifest, row, names, audio_columns=audio)
    cells = ", ".join(f"{column}={row.get(column) or '(empty)'!s}" for column in names.values())
    label = row.get(config.data.label, "?")
    description = f"row 1 of {Path(manifest.path).name} (label {label}: {cells})"
    return description, _top_k(_run(path, {name: [value] for name, value in values.items()}))
