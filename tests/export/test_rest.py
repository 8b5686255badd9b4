"""TF Serving REST bodies: parsing both forms, formatting as json_tensor.cc does, and the round trip."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from mmkeras.export import rest
from mmkeras.export.predict import RequestRefusedError, predict_request


def test_row_and_columnar_requests_parse_to_the_same_tensors():
    row = {"instances": [{"text": "seven", "audio_bytes": {"b64": "UklGRg=="}}, {"text": "", "audio_bytes": ""}]}
    columnar = {"inputs": {"text": ["seven", ""], "audio_bytes": [{"b64": "UklGRg=="}, ""]}}
    form_row, name, tensors_row = rest.parse_request(json.dumps(row), ["text", "audio_bytes"])
    form_col, _, tensors_col = rest.parse_request(columnar, ["text", "audio_bytes"])
    assert (form_row, form_col, name) == ("row", "columnar", "serving_default")
    for key in ("text", "audio_bytes"):
        assert tensors_row[key].tolist() == tensors_col[key].tolist()
    assert tensors_row["audio_bytes"].tolist() == [b"RIFF", b""]


@pytest.mark.parametrize("body, message", [
    ({"instances": [{"text": "a"}]}, r"instances\[0\]: missing input\(s\) audio_bytes"),
    ({"inputs": {"text": ["a"], "audio_bytes": [""], "video": [""]}}, "does not have named input: 'video'"),
    ({"instances": [{"text": "a", "audio_bytes": {"b64": "%%%"}}]}, "unable to base64 decode"),
    ({"instances": [{"text": 3, "audio_bytes": ""}]}, "is not of expected type: string"),
    ({"instances": [], "inputs": {}}, "exactly one of 'instances'"),
])
def test_bad_requests_name_the_problem(body, message):
    with pytest.raises(ValueError, match=message):
        rest.parse_request(body, ["text", "audio_bytes"])


def test_response_format_follows_tf_serving():
    outputs = {"class_ids": np.array([3, 1], np.int64), "class_names": np.array([b"3", b"1"], object),
               "thumb_bytes": np.array([b"\x00\x01", b""], object),
               "probabilities": np.array([[0.1, 0.9], [1.0, 1e-5]], np.float32)}
    row = rest.format_response(outputs, "row")
    assert row["predictions"][0] == {"class_ids": 3, "class_names": "3", "thumb_bytes": {"b64": "AAE="},
                                     "probabilities": [0.1, 0.9]}
    assert row["predictions"][1]["probabilities"] == [1.0, 1e-05]
    columnar = rest.format_response(outputs, "columnar")
    assert columnar["outputs"]["class_names"] == ["3", "1"]
    assert columnar["outputs"]["thumb_bytes"] == [{"b64": "AAE="}, {"b64": ""}]
    assert rest.format_response({"probabilities": outputs["probabilities"]}, "row") == {
        "predictions": [[0.1, 0.9], [1.0, 1e-05]]}
    assert rest._json_float(np.float32(0.123456789)) == 0.123456791  # %.9g when %g does not round-trip


@pytest.mark.parametrize("form", ["row", "columnar"])
def test_rest_round_trip_through_the_export(export3, tiny_data, tmp_path, form):
    png = next((tiny_data / "image").glob("*.png")).read_bytes()
    wav = next((tiny_data / "audio").glob("3_*.wav")).read_bytes()
    b64 = lambda data: {"b64": base64.b64encode(data).decode()}  # noqa: E731
    if form == "row":
        body = {"instances": [{"text": "three", "image_bytes": b64(png), "audio_bytes": b64(wav)},
                              {"text": "", "image_bytes": "", "audio_bytes": b64(wav)}]}
    else:
        body = {"inputs": {"text": ["three", ""], "image_bytes": [b64(png), ""], "audio_bytes": [b64(wav), b64(wav)]}}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(body))
    response = predict_request(export3.parent, path)
    if form == "row":
        predictions = response["predictions"]
        assert len(predictions) == 2 and sorted(predictions[0]) == sorted(rest_outputs())
        assert predictions[0]["class_names"] in {"0", "1", "2", "3"}
        assert len(predictions[1]["top_k_class_names"]) == 3
        assert abs(sum(predictions[0]["probabilities"]) - 1.0) < 1e-4
    else:
        outputs = response["outputs"]
        assert sorted(outputs) == sorted(rest_outputs()) and len(outputs["class_ids"]) == 2
        assert isinstance(outputs["class_ids"][0], int) and isinstance(outputs["class_names"][0], str)


def rest_outputs():
    return ["class_ids", "class_names", "probabilities", "top_k_class_names", "top_k_probabilities"]


def _request(tmp_path, body) -> Path:
    path = tmp_path / "request.json"
    path.write_bytes(body if isinstance(body, bytes) else json.dumps(body).encode())
    return path


def test_ragged_and_empty_columnar_bodies(export3, tmp_path):
    ragged = {"inputs": {"text": ["one", "two"], "image_bytes": [""], "audio_bytes": [""]}}
    with pytest.raises(RequestRefusedError) as caught:
        predict_request(export3.parent, _request(tmp_path, ragged))
    assert str(caught.value) == "inputs have different batch lengths: audio_bytes has 1, image_bytes has 1, text has 2"
    empty = {"inputs": {"text": [], "image_bytes": [], "audio_bytes": []}}
    response = predict_request(export3.parent, _request(tmp_path, empty))
    assert response == {"outputs": {name: [] for name in rest_outputs()}}


def test_non_wav_audio_in_a_body_gets_the_serving_message(export3, tiny_data, tmp_path):
    import io

    import soundfile

    samples, rate = soundfile.read(next((tiny_data / "audio").glob("3_*.wav")), dtype="int16")
    flac = io.BytesIO()
    soundfile.write(flac, samples, rate, format="FLAC")
    body = {"instances": [{"text": "", "image_bytes": "",
                           "audio_bytes": {"b64": base64.b64encode(flac.getvalue()).decode()}}]}
    with pytest.raises(RequestRefusedError, match=r"^audio_bytes\[0\] .*WAV") as caught:
        predict_request(export3.parent, _request(tmp_path, body))
    assert caught.value.input_name == "audio_bytes"


@pytest.mark.parametrize("content, error, message", [
    (b"\xff\xfe{}", ValueError, "is not UTF-8 text (byte 0)"),
    (b'{"instances": [', ValueError, "is not valid JSON (Expecting value at line 1, column 16)"),
    (None, FileNotFoundError, "does not exist"),
])
def test_unreadable_request_files_are_named(export3, tmp_path, content, error, message):
    path = tmp_path / "missing.json" if content is None else _request(tmp_path, content)
    with pytest.raises(error, match=re.escape(f"request file {path} {message}")):
        predict_request(export3.parent, path)
