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


def test_warmup_records_carry_non_wav_audio_as_wav(tiny_data, tmp_path):
    import csv
    import io
    import shutil

    import soundfile

    from mmkeras.config import load_config
    from mmkeras.export.warmup import write_warmup_requests
    from tests.export.conftest import write_config

    folder = tmp_path / "data"
    shutil.copytree(tiny_data, folder)
    with open(folder / "validation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    originals = []
    for row in rows[:3]:
        if row["audio"]:
            samples, rate = soundfile.read(folder / row["audio"], dtype="int16")
            row["audio"] = row["audio"].replace(".wav", ".flac")
            soundfile.write(folder / row["audio"], samples, rate)
            originals.append(samples)
    with open(folder / "validation.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    config = load_config(write_config(folder, ("text", "audio"), "flac"))
    path = tmp_path / WARMUP_FILE
    assert write_warmup_requests(path, config, {"text": "text", "audio_bytes": "audio"}, "m", count=3) == 3
    sent = [tf.make_ndarray(log.predict_log.request.inputs["audio_bytes"])[0] for log in read_warmup_requests(path)]
    sent = [value for value in sent if value]
    assert len(sent) == len(originals) == 2
    for value, samples in zip(sent, originals):
        assert value[:4] == b"RIFF" and value[8:12] == b"WAVE"
        decoded, _ = soundfile.read(io.BytesIO(value), dtype="int16")
        np.testing.assert_array_equal(decoded, samples)
