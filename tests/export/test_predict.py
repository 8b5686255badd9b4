"""predict_files / predict_example: top-k from raw files, latest version by default."""

from __future__ import annotations

import pytest

from mmkeras.config import load_config
from mmkeras.export.predict import predict_example, predict_files, resolve_version
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
