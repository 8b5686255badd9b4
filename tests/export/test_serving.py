"""export_run: layout, signatures, parity with the Keras model, the op audit, versions."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.export.conftest import keras_predictions, raw_rows
from mmkeras.config import load_config
from mmkeras.export.predict import load_signature
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


def test_serve_tensors_is_softmax_of_keras_logits_over_the_run_temperature(run3, export3):
    import keras

    from mmkeras.data.pipeline import build_dataset
    from mmkeras.data.preprocessor import Preprocessor
    from mmkeras.evaluation.predictions import load_run_model

    run = Run(run3)
    config = load_config(run.config_file)
    model = load_run_model(run)
    served = _signature(export3, "serve_tensors")
    dataset = build_dataset(config, "test", Preprocessor.load(str(run.preprocessor_dir)), training=False,
                            batch_size=8, drop_remainder=False)
    temperature = json.loads((Path(run3) / "calibration.json").read_text())["temperature"]
    assert json.loads((export3 / METADATA_FILE).read_text())["calibration"]["temperature"] == temperature
    assert abs(np.log(temperature)) > 0.01  # a fitted temperature, so the test tells T from 1
    logits_model = keras.Model(model.inputs, model.get_layer("head_logits").output)
    for features, _ in dataset:
        logits = np.asarray(logits_model(features, training=False), np.float64) / temperature
        expected = np.exp(logits - logits.max(1, keepdims=True))
        expected /= expected.sum(1, keepdims=True)  # softmax(logits / T) of the Keras model
        got = served(**features)
        assert np.abs(got["probabilities"].numpy() - expected).max() <= 1e-5
        np.testing.assert_array_equal(got["class_ids"].numpy(), expected.argmax(1))
        np.testing.assert_allclose(got["top_k_probabilities"].numpy(), -np.sort(-expected, 1)[:, :3], atol=1e-5)


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
    assert {"DecodeRaw", "DecodeImage", "LookupTableFindV2", "Assert", "StatefulPartitionedCall"} <= ops
    assert not ops & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}  # TF Serving runs no Python
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


def test_empty_request_gets_empty_outputs(export3):
    empty = tf.constant([], tf.string)
    out = load_signature(export3)(text=empty, image_bytes=empty, audio_bytes=empty)
    shapes = {name: tuple(value.shape) for name, value in out.items()}
    assert shapes == {"probabilities": (0, 4), "class_ids": (0,), "class_names": (0,),
                      "top_k_class_names": (0, 3), "top_k_probabilities": (0, 3)}
    assert out["class_ids"].dtype == tf.int64 and out["class_names"].dtype == tf.string


@pytest.mark.parametrize("shape, shown", [((), "[]"), ((2, 1), "[2, 1]"), ((0, 1), "[0, 1]")])
def test_wrong_rank_input_is_refused_naming_it(export3, shape, shown):
    text = tf.reshape(tf.constant(["two"] * int(np.prod(shape)), tf.string), shape)
    others = tf.constant([""] * (shape[0] if shape else 1), tf.string)
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        load_signature(export3)(text=text, image_bytes=others, audio_bytes=others)
    assert f"[text must be a 1-D list of strings, one per example; got shape {shown}]" in caught.value.message


def test_concurrent_exports_to_one_base_get_two_versions_and_keep_both(run2, tmp_path, monkeypatch):
    from mmkeras.export import serving
    from mmkeras.export.versions import reserved_versions, version_dirs

    base = tmp_path / "base"
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys; from mmkeras.export.serving import export_run; "
                               "print(export_run(sys.argv[1], sys.argv[2]))", str(run2), str(base)],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    write = serving.write_model_endpoint

    def write_once_the_other_has_reserved(model, path):
        # Hold this export (already holding its reservation) until the other process has its own.
        deadline = time.monotonic() + 300
        while len(reserved_versions(base)) + len(version_dirs(base)) < 2 and other.poll() is None:
            assert time.monotonic() < deadline, "the other export never reserved a version"
            time.sleep(0.1)
        write(model, path)

    monkeypatch.setattr(serving, "write_model_endpoint", write_once_the_other_has_reserved)
    mine = export_run(run2, base)
    out, err = other.communicate(timeout=300)
    assert other.returncode == 0, err[-3000:]
    theirs = Path(out.strip().splitlines()[-1])
    assert sorted([mine.name, theirs.name]) == ["1", "2"]
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]  # both kept, no staging left
    for path in (mine, theirs):
        metadata = json.loads((path / METADATA_FILE).read_text())
        assert metadata["run_dir"] == str(run2.resolve()) and (path / "saved_model.pb").exists()
        assert (path / WARMUP_FILE).exists() and (path / "variables" / "variables.index").exists()


@pytest.mark.parametrize("full_disk", [
    OSError(errno.ENOSPC, "No space left on device", "variables.data-00000-of-00001"),
    tf.errors.ResourceExhaustedError(None, None, "variables.data-00000-of-00001; No space left on device"),
])
def test_full_disk_during_export_names_the_path_and_leaves_nothing(run2, tmp_path, monkeypatch, full_disk):
    from mmkeras.export import serving

    def write_until_the_disk_is_full(model, path):
        Path(path).mkdir(parents=True)
        (Path(path) / "saved_model.pb").write_bytes(b"\0" * 100)  # a partial file
        raise full_disk

    monkeypatch.setattr(serving, "write_model_endpoint", write_until_the_disk_is_full)
    base = tmp_path / "base"
    (base / "1").mkdir(parents=True)  # an earlier version stays untouched
    with pytest.raises(OSError) as caught:
        export_run(run2, base)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.strerror == (
        f"no space left on device while exporting {run2} to {base / '2'} (written in {base / '.2-staging'}); "
        "the partial export was removed and no version folder was written")
    assert sorted(p.name for p in base.iterdir()) == ["1"]


def test_failed_run_is_not_exported(run2, tmp_path):
    import shutil

    from mmkeras.training.run import RunFailedError

    failed = tmp_path / "failed"
    shutil.copytree(run2, failed)
    Run(failed).update_status(status="failed", failure={"reason": "the loss became nan at epoch 1, step 2"})
    with pytest.raises(RunFailedError, match=r"failed run \(the loss became nan at epoch 1, step 2\)"):
        export_run(failed, tmp_path / "base")
    assert not (tmp_path / "base").exists()
