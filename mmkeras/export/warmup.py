"""TF Serving warm-up records: real validation examples replayed when the model is loaded.

TF Serving reads ``<version>/assets.extra/tf_serving_warmup_requests``, a TFRecord file of
``PredictionLog`` protos, and runs each request once before it marks the version available, so the
first real request does not pay for graph initialisation. The requests are single examples taken
from the run's validation split (else its test, else its train split), as raw bytes, exactly what a
client sends to ``serving_default``.

Example (not run here: it needs a config whose manifests exist):
    write_warmup_requests(path, config, {"text": "text", "image_bytes": "image"}, "digits", count=4)
    [log.predict_log.request.inputs["text"] for log in read_warmup_requests(path)]
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from mmkeras.export.wav_bytes import audio_as_wav


def example_rows(config, count: int, splits=("validation", "test", "train")) -> tuple:
    """``(manifest, rows)``: the first ``count`` rows of the first split of ``splits`` that has a manifest."""
    from mmkeras.data.manifest import read_manifest

    for split in splits:
        path = config.resolve_path(getattr(config.data, split))
        if path:
            manifest = read_manifest(path)
            return manifest, manifest.rows[:count]
    raise ValueError("the config names no manifest (data.validation / data.test / data.train) to take examples from")


def raw_request_values(manifest, row: dict, input_names: dict, audio_columns=()) -> dict:
    """``{signature input: bytes}`` for one manifest row: text as UTF-8, files as their bytes, "" when empty.

    Files of ``audio_columns`` in another format than WAV (FLAC, OGG, MP3) are sent as WAV, as a
    client must: the exported graph decodes WAV only.
    """
    values = {}
    for name, column in input_names.items():
        cell = row.get(column) or ""
        if name.endswith("_bytes") and cell:
            with tf.io.gfile.GFile(manifest.resolve(cell), "rb") as handle:
                values[name] = handle.read()
            if column in audio_columns:
                values[name] = audio_as_wav(values[name])
        else:
            values[name] = cell.encode("utf-8")
    return values


def audio_columns(config) -> set:
    """The names of the config's audio columns."""
    return {column for column, feature in config.data.features.items()
            if getattr(feature, "modality", None) == "audio"}


def predict_request(values: dict, model_name: str, signature_name: str = "serving_default"):
    """A ``PredictRequest`` with one ``tf.string [len]`` tensor per input."""
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in values.items():
        batch = value if isinstance(value, list) else [value]
        request.inputs[name].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string, shape=[len(batch)]))
    return request


def write_warmup_requests(path, config, input_names: dict, model_name: str, count: int) -> int:
    """Write ``count`` single-example ``PredictionLog`` records to ``path``; return how many were written."""
    from tensorflow_serving.apis import prediction_log_pb2

    manifest, rows = example_rows(config, count)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in rows:
            values = raw_request_values(manifest, row, input_names, audio_columns(config))
            request = predict_request(values, model_name)
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return len(rows)


def read_warmup_requests(path) -> list:
    """The ``PredictionLog`` records of a warm-up file."""
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs
