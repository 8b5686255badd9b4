"""predict_files / predict_example: top-k from raw files, latest version by default, refusals in one sentence."""

from __future__ import annotations

import io
import re
import wave

import numpy as np
import pytest
import soundfile

from mmkeras.config import load_config
from mmkeras.export.predict import RequestRefusedError, predict_example, predict_files, refusal_message, resolve_version
from mmkeras.export.wav_bytes import audio_as_wav
from mmkeras.training.run import Run


def test_predict_files_gives_top_k_from_the_latest_version(export3, tiny_data):
    wav = next((tiny_data / "audio").glob("1_*.wav"))
    result = predict_files(export3.parent, text="one", audio=str(wav))
    assert len(result) == 3 and {name for name, _ in result} <= {"0", "1", "2", "3"}
    probabilities = [p for _, p in result]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0 + 1e-6
    assert resolve_version(export3.parent) == export3 and resolve_version(export3) == export3
    assert predict_files(export3, text="one", audio=str(wav)) == result


def test_predict_files_refuses_what_the_model_cannot_take(export3, tmp_path):
    with pytest.raises(ValueError, match="give at least one of text, image, audio"):
        predict_files(export3.parent)
    with pytest.raises(FileNotFoundError, match="has no version 7"):
        predict_files(export3.parent, text="one", version=7)
    with pytest.raises(FileNotFoundError, match="holds no SavedModel version folder"):
        predict_files(tmp_path, text="one")


def test_predict_example_uses_the_first_test_row(export3, run3):
    description, result = predict_example(export3, load_config(Run(run3).config_file))
    assert description.startswith("row 1 of test.csv (label 0: text=") and len(result) == 3


def test_refusals_name_the_input_and_the_file(export3, tiny_data, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(RequestRefusedError) as caught:
        predict_files(export3, text="one", image=str(bad))
    assert re.fullmatch(rf"image_bytes\[0\] is not a PNG/JPEG/\S+ image \(image file {re.escape(str(bad))}\)",
                        str(caught.value)), caught.value
    assert caught.value.input_name == "image_bytes"
    cut = tmp_path / "cut.wav"
    cut.write_bytes(next((tiny_data / "audio").glob("1_*.wav")).read_bytes()[:30])  # ends inside the header
    with pytest.raises(RequestRefusedError, match=rf"^audio_bytes\[0\] .+ \(audio file {re.escape(str(cut))}\)$"):
        predict_files(export3, audio=str(cut))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"^audio file {re.escape(str(empty))} is empty$"):
        predict_files(export3, audio=str(empty))
    with pytest.raises(IsADirectoryError, match=rf"^image file {re.escape(str(tmp_path))} is a directory, not a file$"):
        predict_files(export3, image=str(tmp_path))


def test_audio_in_other_formats_is_sent_as_16_bit_wav(export3, tiny_data, tmp_path):
    wav = next((tiny_data / "audio").glob("1_*.wav"))
    samples, rate = soundfile.read(wav, dtype="int16")
    expected = predict_files(export3, audio=str(wav))
    for extension in ("flac", "ogg", "mp3"):
        path = tmp_path / f"one.{extension}"
        soundfile.write(path, samples, rate)
        assert path.read_bytes()[:4] != b"RIFF"
        with wave.open(io.BytesIO(audio_as_wav(path.read_bytes()))) as converted:
            assert (converted.getsampwidth(), converted.getframerate(), converted.getnchannels()) == (2, rate, 1)
            frames = np.frombuffer(converted.readframes(converted.getnframes()), np.int16)
        result = predict_files(export3, audio=str(path))
        if extension == "flac":  # lossless: the same samples, the same answer
            np.testing.assert_array_equal(frames, samples)
            assert result == expected
        else:
            assert abs(len(frames) - len(samples)) <= 1152  # lossy codecs pad by up to one frame
            assert len(result) == 3 and {name for name, _ in result} <= {"0", "1", "2", "3"}
    assert audio_as_wav(wav.read_bytes()) == wav.read_bytes()  # WAV is sent as it is
    garbage = tmp_path / "noise.mp3"
    garbage.write_bytes(b"\x01\x02" * 200)  # neither WAV nor anything soundfile reads: the model says what it is
    assert audio_as_wav(garbage.read_bytes()) == garbage.read_bytes()
    refused = rf"^audio_bytes\[0\] .*WAV.* \(audio file {re.escape(str(garbage))}\)$"
    with pytest.raises(RequestRefusedError, match=refused):
        predict_files(export3, audio=str(garbage))


def test_refusal_message_falls_back_to_tensorflows_first_line():
    text = ("Graph execution error:\n\nDetected at node DecodePng defined at (most recent call last):\n"
            "<stack traces unavailable>\nInvalid PNG data, size 57\n\t [[{{node DecodePng}}]] [Op:__inference_x_1]")
    assert refusal_message(text) == "the model refused the request: Invalid PNG data, size 57"
    assert refusal_message("assertion failed: [text[3] is not valid UTF-8 text] [Op:Assert]") == (
        "text[3] is not valid UTF-8 text")
