"""``export_run(..., quantize="int8")``: Keras's int8 weights behind the float32 export's signatures,
with its calibration, answering within a stated tolerance of the float32 export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.config import load_config
from mmkeras.export.quantize import QUANTIZE_CHOICES, check_quantize, quantize_model
from mmkeras.export.serving import METADATA_FILE, SERVE_TENSORS, SERVING_DEFAULT, WARMUP_FILE, export_run
from mmkeras.training.run import Run
from tests.export.conftest import keras_predictions, raw_rows

NAMES = {"text": "text", "image_bytes": "image", "audio_bytes": "audio"}
# Measured on the conftest's 40 raw-bytes rows (train + validation + test) of the one-epoch run3: max |int8 - float32|
# of the probabilities 1.5e-3, argmax agreeing on 40 of 40; the tiny KerasHub run 1.2e-4 (its 8 test rows, 8 of 8).
TOLERANCE = 0.01
AGREEMENT = 0.95


@pytest.fixture(scope="module")
def int8_export3(run3, tmp_path_factory):
    return export_run(run3, tmp_path_factory.mktemp("int8") / "digits", quantize="int8")


def _all_rows(run_dir):
    config = load_config(Run(run_dir).config_file)
    rows = {name: [] for name in NAMES}
    for split in ("train", "validation", "test"):
        for name, values in raw_rows(config, split, NAMES)[1].items():
            rows[name] += values
    return {name: tf.constant(values) for name, values in rows.items()}


def _served(path, inputs, signature=SERVING_DEFAULT):
    return {name: value.numpy() for name, value in tf.saved_model.load(str(path)).signatures[signature](**inputs).items()}


def _assert_parity(int8_probabilities, float_probabilities):
    """Within ``TOLERANCE`` everywhere; the argmax agrees on >= ``AGREEMENT`` of the rows, and flips only where
    the float32 model's top two are within ``2 * TOLERANCE`` (a near tie)."""
    diff = np.abs(int8_probabilities - float_probabilities).max()
    assert 0 < diff <= TOLERANCE, diff  # > 0: the int8 weights are really used
    agree = int8_probabilities.argmax(1) == float_probabilities.argmax(1)
    assert agree.mean() >= AGREEMENT, agree.mean()
    top2 = -np.sort(-float_probabilities, axis=1)[:, :2]
    assert np.all(top2[~agree, 0] - top2[~agree, 1] <= 2 * TOLERANCE)


def _variables_bytes(path) -> int:
    return sum(f.stat().st_size for f in (path / "variables").rglob("*") if f.is_file())


def test_quantize_values_other_than_none_and_int8_are_refused_naming_the_valid_ones(run2, tmp_path):
    assert check_quantize(None) is None and check_quantize("none") is None and check_quantize("int8") == "int8"
    assert QUANTIZE_CHOICES == ("none", "int8")
    with pytest.raises(ValueError, match=r"quantize must be one of none, int8 \(or None\), got 'int4'"):
        export_run(run2, tmp_path / "exports", quantize="int4")
    assert not (tmp_path / "exports").exists()  # refused before anything is reserved


def test_a_model_with_no_layer_keras_can_quantize_is_refused_in_one_sentence():
    import keras

    inputs = keras.Input((6, 6, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="only_conv")(inputs), name="convs")
    with pytest.raises(ValueError) as error:
        quantize_model(model, "int8")
    assert str(error.value) == ("model 'convs' has no layer Keras can quantize to int8 (Dense, EinsumDense, Embedding); "
                                "export it without --quantize")


def test_int8_export_has_the_float_exports_signatures_inputs_and_outputs(export3, int8_export3):
    float_meta = json.loads((export3 / METADATA_FILE).read_text())
    int8_meta = json.loads((int8_export3 / METADATA_FILE).read_text())
    assert int8_meta["signatures"] == float_meta["signatures"]
    assert set(int8_meta["signatures"]) == {SERVING_DEFAULT, SERVE_TENSORS}
    assert int8_meta["input_columns"] == float_meta["input_columns"] and (int8_export3 / WARMUP_FILE).exists()
    loaded = tf.saved_model.load(str(int8_export3))
    assert set(loaded.signatures) == {SERVING_DEFAULT, SERVE_TENSORS}
    assert loaded.signatures[SERVING_DEFAULT].structured_input_signature == \
        tf.saved_model.load(str(export3)).signatures[SERVING_DEFAULT].structured_input_signature


def test_int8_answers_match_the_float_export_within_the_stated_tolerance(run3, export3, int8_export3):
    inputs = _all_rows(run3)
    float_out, int8_out = _served(export3, inputs), _served(int8_export3, inputs)
    assert sorted(int8_out) == sorted(float_out) and len(int8_out["class_ids"]) == 40
    for name, value in float_out.items():
        assert int8_out[name].dtype == value.dtype and int8_out[name].shape == value.shape, name
    _assert_parity(int8_out["probabilities"], float_out["probabilities"])
    np.testing.assert_array_equal(int8_out["class_ids"], int8_out["probabilities"].argmax(1))
    np.testing.assert_allclose(int8_out["probabilities"].sum(1), 1.0, atol=1e-5)


def test_int8_export_applies_the_runs_calibration_to_the_quantized_model(run3, int8_export3):
    from mmkeras.data.pipeline import build_dataset
    from mmkeras.data.preprocessor import Preprocessor
    from mmkeras.evaluation.calibration import apply_temperature, run_temperature
    from mmkeras.evaluation.predictions import load_run_model

    run = Run(run3)
    temperature = run_temperature(run)
    assert abs(np.log(temperature)) > 0.01  # a fitted temperature, so the test tells T from 1
    metadata = json.loads((int8_export3 / METADATA_FILE).read_text())
    assert metadata["calibration"]["temperature"] == temperature
    model = load_run_model(run)
    quantize_model(model, "int8")
    dataset = build_dataset(load_config(run.config_file), "test", Preprocessor.load(str(run.preprocessor_dir)),
                            training=False, batch_size=8, drop_remainder=False)
    for features, _ in dataset:
        expected = apply_temperature(np.asarray(model(features, training=False)), temperature)
        served = _served(int8_export3, features, SERVE_TENSORS)["probabilities"]
        assert np.abs(served - expected).max() <= 1e-5


def test_metadata_records_int8_and_the_layers_it_quantized(export3, int8_export3):
    metadata = json.loads((int8_export3 / METADATA_FILE).read_text())
    assert metadata["quantization"] == "int8"
    # Embedding, the image Dense, the fusion's projection and the head; the convolutions and the LSTM stay float32.
    assert metadata["int8_layers"] == ["text_embedding", "image_dense", "concat_fusion/projection", "head_logits"]
    assert metadata["int8_layer_count"] == 4
    assert metadata["float32_layers"] == ["image_conv1", "image_conv2", "audio_1_lstm/lstm_cell"]
    float_meta = json.loads((export3 / METADATA_FILE).read_text())
    assert float_meta["quantization"] is None and float_meta["int8_layers"] == [] and float_meta["int8_layer_count"] == 0
    assert len(float_meta["float32_layers"]) == 7


def test_int8_variables_are_smaller_than_the_float_ones(export3, int8_export3):
    float_bytes, int8_bytes = _variables_bytes(export3), _variables_bytes(int8_export3)
    # Measured 954,873 -> 487,490 bytes (0.51x): the quantized kernels are 4x smaller; the convolutions,
    # the LSTM, the biases and the per-channel scales stay float32.
    assert int8_bytes <= 0.6 * float_bytes, (int8_bytes, float_bytes)


def test_keras_hub_backbones_export_as_int8_and_serve(tiny_presets, tmp_path_factory):
    from mmkeras.training.trainer import train
    from tests.keras_hub_runs import hub_config

    folder = tmp_path_factory.mktemp("hub_int8")
    config = hub_config(folder, tiny_presets)
    run = train(config, run_dir=folder / "run")
    path = export_run(run.run_dir, folder / "exports" / "hub", quantize="int8")
    metadata = json.loads((path / METADATA_FILE).read_text())
    assert metadata["quantization"] == "int8" and metadata["int8_layer_count"] >= 20
    int8 = metadata["int8_layers"]
    # The attention projections (EinsumDense) of BERT, ViT and Whisper, BERT's token embedding, the fusion and the head.
    assert sum(name.endswith("/query") for name in int8) == 4 and any(name.endswith("/token_embedding") for name in int8)
    assert any(name.endswith("concat_fusion/projection") for name in int8) and int8[-1].endswith("head_logits")
    labels, inputs = raw_rows(config, "test", NAMES)
    served = _served(path, {name: tf.constant(values) for name, values in inputs.items()})
    _, expected = keras_predictions(run.run_dir)
    _assert_parity(served["probabilities"], expected)
    assert len(served["top_k_class_names"][0]) == 2
