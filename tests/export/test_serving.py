"""export_run: layout, signatures, parity with the Keras model, the op audit, versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.export.conftest import keras_predictions, raw_rows
from mmkeras.config import load_config
from mmkeras.export.serving import METADATA_FILE, WARMUP_FILE, export_run
from mmkeras.training.run import Run

VENV_BIN = Path(sys.executable).parent
OP_LIST = """
import json, sys
import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c
if sys.argv[1] == "text":
    import tensorflow_text  # noqa: F401  (registers its ops)
ops = op_def_pb2.OpList()
ops.ParseFromString(c.TF_GetBuffer(c.TF_GetAllOpList()))
print(json.dumps(sorted(op.name for op in ops.op)))
"""


def _signature(path, name="serving_default"):
    return tf.saved_model.load(str(path)).signatures[name]


def test_export_writes_tf_serving_layout(export3):
    assert export3.name == "1" and (export3 / "saved_model.pb").exists() and (export3 / "variables").is_dir()
    assert (export3 / WARMUP_FILE).exists()
    metadata = json.loads((export3 / METADATA_FILE).read_text())
    assert metadata["class_names"] == ["0", "1", "2", "3"] and metadata["top_k"] == 3
    assert metadata["trained_backend"] == "tensorflow"
    assert metadata["signatures"]["serving_default"]["inputs"] == {
        name: {"dtype": "string", "shape": [-1]} for name in ("audio_bytes", "image_bytes", "text")}
    assert metadata["signatures"]["serve_tensors"]["inputs"]["image"] == {"dtype": "float32", "shape": [-1, 12, 12, 3]}
    assert metadata["signatures"]["serving_default"]["outputs"]["top_k_class_names"] == {
        "dtype": "string", "shape": [-1, 3]}
    assert [p.name for p in export3.parent.iterdir()] == ["1"]  # no staging folder left behind


def test_raw_bytes_serving_matches_keras_model_on_test_split(run3, export3):
    config = load_config(Run(run3).config_file)
    labels, expected = keras_predictions(run3)
    raw_labels, inputs = raw_rows(config, "test", {"text": "text", "image_bytes": "image", "audio_bytes": "audio"})
    assert labels == raw_labels and len(labels) == 8
    assert any(v == b"" for values in inputs.values() for v in values)  # missing cells are part of the split
    served = _signature(export3)(**{k: tf.constant(v) for k, v in inputs.items()})
    diff = np.abs(served["probabilities"].numpy() - expected).max()
    assert diff <= 1e-5, diff
    np.testing.assert_array_equal(served["class_ids"].numpy(), expected.argmax(1))
    assert [n.decode() for n in served["class_names"].numpy()] == [str(i) for i in expected.argmax(1)]
    top = served["top_k_probabilities"].numpy()
    np.testing.assert_allclose(top, -np.sort(-expected, axis=1)[:, :3], atol=1e-5)


def test_serve_tensors_matches_keras_model(run3, export3):
    from mmkeras.data.pipeline import build_dataset
    from mmkeras.data.preprocessor import Preprocessor
    from mmkeras.evaluation.report import load_run_model

    run = Run(run3)
    config = load_config(run.config_file)
    model = load_run_model(run)
    served = _signature(export3, "serve_tensors")
    dataset = build_dataset(config, "test", Preprocessor.load(str(run.preprocessor_dir)), training=False,
                            batch_size=8, drop_remainder=False)
    for features, _ in dataset:
        expected = np.asarray(model(features, training=False))
        got = served(**features)["probabilities"].numpy()
        assert np.abs(got - expected).max() <= 1e-5


def test_saved_model_cli_lists_signatures_inputs_and_outputs(export3):
    shown = subprocess.run([str(VENV_BIN / "saved_model_cli"), "show", "--dir", str(export3), "--all"],
                           capture_output=True, text=True, check=True).stdout
    assert "signature_def['serving_default']" in shown and "signature_def['serve_tensors']" in shown
    default = shown.split("signature_def['serving_default']")[1]
    for name in ("text", "image_bytes", "audio_bytes"):
        assert f"inputs['{name}'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in default
    for name, dtype in [("probabilities", "DT_FLOAT"), ("class_ids", "DT_INT64"), ("class_names", "DT_STRING"),
                        ("top_k_class_names", "DT_STRING"), ("top_k_probabilities", "DT_FLOAT")]:
        assert f"outputs['{name}'] tensor_info:\n        dtype: {dtype}" in default
    tensors = shown.split("signature_def['serve_tensors']")[1].split("signature_def[")[0]
    assert "inputs['audio_present'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1)" in tensors
    assert "inputs['text'] tensor_info:\n        dtype: DT_INT32\n        shape: (-1, 4)" in tensors


def _registered_ops(with_text: bool) -> set:
    out = subprocess.run([sys.executable, "-c", OP_LIST, "text" if with_text else "core"],
                         capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def saved_model_ops(path) -> set:
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    ops = set()
    for meta_graph in proto.meta_graphs:
        ops |= {node.op for node in meta_graph.graph_def.node}
        for function in meta_graph.graph_def.library.function:
            ops |= {node.op for node in function.node_def}
    return ops


def test_op_audit_only_core_tensorflow_and_tensorflow_text(export3):
    core, text = _registered_ops(False), _registered_ops(True)
    functions = set()
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((export3 / "saved_model.pb").read_bytes())
    for meta_graph in proto.meta_graphs:
        functions |= {f.signature.name for f in meta_graph.graph_def.library.function}
    ops = saved_model_ops(export3) - functions  # calls of library functions are not ops
    assert {"DecodeWav", "LookupTableFindV2", "Assert", "StatefulPartitionedCall"} <= ops
    outside = sorted(ops - core - text)
    assert not outside, f"ops outside core TensorFlow + tensorflow-text: {outside}"


def test_next_version_and_existing_version_refused(run2, tmp_path):
    base = tmp_path / "two"
    first = export_run(run2, base)
    second = export_run(run2, base)
    assert (first.name, second.name) == ("1", "2")
    with pytest.raises(FileExistsError, match="already exists"):
        export_run(run2, base, version=1)
    assert export_run(run2, base, version=1, overwrite=True).name == "1"
    with pytest.raises(ValueError, match="version must be an integer >= 1"):
        export_run(run2, base, version=0)


def test_two_modality_model_exports_and_serves(run2, tmp_path):
    path = export_run(run2, tmp_path / "two")
    config = load_config(Run(run2).config_file)
    labels, expected = keras_predictions(run2)
    signature = _signature(path)
    assert sorted(signature.structured_input_signature[1]) == ["audio_bytes", "text"]
    _, inputs = raw_rows(config, "test", {"text": "text", "audio_bytes": "audio"})
    served = signature(**{k: tf.constant(v) for k, v in inputs.items()})
    assert np.abs(served["probabilities"].numpy() - expected).max() <= 1e-5


def test_request_with_a_modality_left_empty_is_answered(export3, tiny_data):
    wav = next((tiny_data / "audio").glob("2_*.wav")).read_bytes()
    out = _signature(export3)(text=tf.constant(["", "two"]), image_bytes=tf.constant([b"", b""]),
                              audio_bytes=tf.constant([wav, b""]))
    probabilities = out["probabilities"].numpy()
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
