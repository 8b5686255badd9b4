"""The warm-up file TF Serving replays: PredictionLog records of real validation examples."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mmkeras.export.serving import WARMUP_FILE
from mmkeras.export.warmup import read_warmup_requests


def test_warmup_file_parses_as_prediction_logs_that_the_model_answers(export3, tiny_data):
    logs = read_warmup_requests(export3 / WARMUP_FILE)
    assert len(logs) == 3  # export.warmup_examples
    signature = tf.saved_model.load(str(export3)).signatures["serving_default"]
    first_wav = (tiny_data / "validation.csv").read_text().splitlines()[1].split(",")[2]
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "digits" and request.model_spec.signature_name == "serving_default"
        assert sorted(request.inputs) == ["audio_bytes", "image_bytes", "text"]
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        assert all(value.shape == (1,) for value in inputs.values())
        out = signature(**{k: tf.constant(v) for k, v in inputs.items()})
        np.testing.assert_allclose(out["probabilities"].numpy().sum(), 1.0, atol=1e-5)
    first = tf.make_ndarray(logs[0].predict_log.request.inputs["audio_bytes"])[0]
    assert first == (tiny_data / first_wav).read_bytes()
