"""TF Serving REST bodies: parse a ``:predict`` request into tensors, format the response as TF Serving does.

Mirrors ``tensorflow_serving/util/json_tensor.cc``:

- row form ``{"instances": [{"text": "seven", "image_bytes": {"b64": "..."}}, ...]}``: one object per
  example with every named input (a bare value per example when the signature has one input);
  the answer is ``{"predictions": [...]}``, one object per example (a bare value for one output).
- columnar form ``{"inputs": {"text": [...], "image_bytes": [{"b64": "..."}]}}`` (a bare list for one
  input); the answer is ``{"outputs": {...}}`` (the bare value for one output).
- binary strings travel as ``{"b64": "<base64>"}``; string outputs whose name ends in ``_bytes``
  are written that way, other string outputs as plain JSON strings.
- floats are written as TF Serving writes them: ``%g`` (6 significant digits) when that reads
  back to the same float32, else ``%.9g``.
- every signature input must be present (TF Serving refuses a request whose inputs differ from the
  signature's): send ``""`` for a missing modality.

Example:
    >>> form, name, tensors = parse_request({"instances": [{"text": "seven", "audio_bytes": {"b64": "UklGRg=="}}]},
    ...                                     ["text", "audio_bytes"])
    >>> form, name, tensors["audio_bytes"].tolist()
    ('row', 'serving_default', [b'RIFF'])
    >>> format_response({"class_names": np.array([b"7"]), "top_k_probabilities": np.array([[0.25, 0.125]],
    ...                  np.float32)}, "row")
    {'predictions': [{'class_names': '7', 'top_k_probabilities': [0.25, 0.125]}]}
"""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np

ROW = "row"
COLUMNAR = "columnar"


def _decode_value(value, name: str):
    """A JSON leaf for a string input -> bytes (``{"b64": ...}`` is decoded)."""
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise ValueError(f"input {name!r}: JSON value {json.dumps(value)} not formatted correctly for base64 data")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"input {name!r}: unable to base64 decode") from None
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueError(f"input {name!r}: JSON value {json.dumps(value)} is not of expected type: string")


def _column(values, name: str) -> np.ndarray:
    if not isinstance(values, list):
        raise ValueError(f"input {name!r}: expected a list of values (one per example), got {json.dumps(values)}")
    return np.array([_decode_value(v, name) for v in values], dtype=object)


def _check_names(given, expected: list, where: str) -> None:
    missing = [name for name in expected if name not in given]
    unknown = [name for name in given if name not in expected]
    if unknown:
        raise ValueError(f"{where}: does not have named input: {unknown[0]!r}; the signature's inputs are "
                         + ", ".join(expected))
    if missing:
        raise ValueError(f"{where}: missing input(s) {', '.join(missing)} (send \"\" for a missing modality); "
                         "the signature's inputs are " + ", ".join(expected))


def parse_request(body, input_names: list) -> tuple:
    """``(form, signature_name, {input: object ndarray of bytes [B]})`` from a ``:predict`` body.

    Args:
        body: the JSON body (a ``str``/``bytes`` or an already parsed ``dict``).
        input_names: the signature's input names (all ``tf.string [None]``).

    Raises:
        ValueError: the body is not a TF Serving predict request for these inputs; the message
            says which key or input is wrong.
    """
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as error:
            raise ValueError(f"request body is not valid JSON ({error.msg})") from None
    if not isinstance(body, dict):
        raise ValueError("request body must be a JSON object with 'instances' or 'inputs'")
    signature_name = body.get("signature_name", "serving_default")
    if not isinstance(signature_name, str):
        raise ValueError("'signature_name' key must be a string value")
    if ("instances" in body) == ("inputs" in body):
        raise ValueError("request body must have exactly one of 'instances' (row form) or 'inputs' (columnar form)")
    input_names = list(input_names)
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise ValueError("'instances' must be a non-empty list")
        if len(input_names) == 1 and not all(isinstance(i, dict) and set(i) == set(input_names) for i in instances):
            return ROW, signature_name, {input_names[0]: _column(instances, input_names[0])}
        columns = {name: [] for name in input_names}
        for number, instance in enumerate(instances):
            if not isinstance(instance, dict):
                raise ValueError(f"instances[{number}] must be a JSON object with the named inputs "
                                 + ", ".join(input_names))
            _check_names(instance, input_names, f"instances[{number}]")
            for name in input_names:
                columns[name].append(instance[name])
        return ROW, signature_name, {name: _column(values, name) for name, values in columns.items()}
    inputs = body["inputs"]
    if not isinstance(inputs, dict):
        if len(input_names) != 1:
            raise ValueError("'inputs' must be an object mapping each input name to its list of values")
        inputs = {input_names[0]: inputs}
    _check_names(inputs, input_names, "inputs")
    return COLUMNAR, signature_name, {name: _column(inputs[name], name) for name in input_names}


def _json_float(value) -> float:
    value = np.float32(value)
    if not np.isfinite(value):
        return float(value)
    text = "%g" % value
    if np.float32(text) != value:
        text = "%.9g" % value
    return float(text)


def _json_value(value, as_bytes: bool):
    if isinstance(value, np.ndarray):
        return [_json_value(v, as_bytes) for v in value]
    if isinstance(value, bytes):
        if as_bytes:
            return {"b64": base64.b64encode(value).decode("ascii")}
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (np.floating, float)):
        return _json_float(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    raise ValueError(f"cannot write {type(value).__name__} as JSON")


def format_response(outputs: dict, form: str) -> dict:
    """The JSON body TF Serving answers with, for ``outputs`` (``{name: ndarray with batch first}``)."""
    names = sorted(outputs)
    arrays = {name: np.asarray(outputs[name]) for name in names}
    as_bytes = {name: name.endswith("_bytes") and arrays[name].dtype.kind in "OS" for name in names}
    if form == COLUMNAR:
        values = {name: _json_value(arrays[name], as_bytes[name]) for name in names}
        return {"outputs": values if len(names) > 1 else values[names[0]]}
    if form != ROW:
        raise ValueError(f"form must be {ROW!r} or {COLUMNAR!r}, got {form!r}")
    sizes = {arrays[name].shape[0] if arrays[name].ndim else None for name in names}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"outputs have inconsistent batch sizes: { {n: arrays[n].shape for n in names} }")
    predictions = []
    for row in range(sizes.pop()):
        values = {name: _json_value(arrays[name][row], as_bytes[name]) for name in names}
        predictions.append(values if len(names) > 1 else values[names[0]])
    return {"predictions": predictions}


def to_tensors(parsed: dict) -> dict:
    """``{input: tf.string [B]}`` from ``parse_request``'s arrays."""
    import tensorflow as tf

    return {name: tf.constant(list(values), dtype=tf.string) for name, values in parsed.items()}
