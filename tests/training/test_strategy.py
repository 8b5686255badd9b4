"""``build_strategy``: the plan per ``train.strategy``, and the settings it refuses, with their messages.

Two replicas on a CPU-only machine need two logical CPU devices, which can only be configured before
TensorFlow starts, so those tests run in a fresh subprocess (as does the JAX one, whose backend is
fixed at import).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest

from mmkeras.config import TrainConfig
from mmkeras.training.strategy import build_strategy, is_chief

ROOT = Path(__file__).resolve().parents[2]
tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute strategies")

TWO_CPUS = """
import tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
"""


def run_python(code: str, timeout_s: float = 150, **env) -> dict:
    """Run ``code`` in a fresh interpreter (killed after ``timeout_s``); it prints one JSON line last."""
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "KERAS_BACKEND")}
    environment |= {"CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    try:
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=environment,
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as error:  # subprocess.run has killed the child
        pytest.fail(f"subprocess ran past {timeout_s}s:\n{(error.stderr or b'')[-3000:]}")
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@tensorflow_only
def test_cpu_plan_is_one_replica_that_is_the_chief():
    plan = build_strategy(TrainConfig(strategy="cpu"))
    assert (plan.name, plan.num_replicas, plan.is_chief, plan.is_tf_distributed) == ("cpu", 1, True, False)
    import tensorflow as tf

    # The default strategy: it runs on the one CPU and feeds Keras without a MultiDeviceIterator.
    assert plan.strategy is tf.distribute.get_strategy()
    model = keras.Sequential([keras.layers.Dense(1)])
    assert plan.prepare_model(model) is model and "_make_function" not in vars(model)


@tensorflow_only
def test_auto_without_accelerators_is_the_cpu():
    assert build_strategy(TrainConfig(strategy="auto")).name == "cpu"


@tensorflow_only
def test_data_parallel_is_refused_under_tensorflow_naming_the_alternatives():
    with pytest.raises(ValueError, match="data_parallel is the JAX backend's .*use train.strategy=mirrored"):
        build_strategy(TrainConfig(strategy="data_parallel"))


@tensorflow_only
def test_multi_worker_without_tf_config_says_what_to_set(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(RuntimeError, match="TF_CONFIG environment variable, which is not set"):
        build_strategy(TrainConfig(strategy="multi_worker"))


@tensorflow_only
@pytest.mark.parametrize("tf_config, message", [
    ("not json", "TF_CONFIG must be JSON like"),
    ('{"cluster": {"worker": ["localhost:1"]}}', "KeyError: 'task'"),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 1}}',
     "task worker:1 is not in its cluster"),
    ('{"cluster": {"worker": ["localhost:1"], "ps": ["localhost:2"]}, "task": {"type": "worker", "index": 0}}',
     "no ParameterServerStrategy support"),
])
def test_bad_tf_config_is_refused_before_any_strategy_starts(monkeypatch, tf_config, message):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message):
        build_strategy(TrainConfig(strategy="multi_worker"))


def test_chief_is_the_chief_task_else_worker_zero():
    workers = {"worker": ["a:1", "b:2"]}
    with_chief = {"chief": ["c:3"], "worker": ["a:1", "b:2"]}
    assert [is_chief(workers, "worker", i) for i in (0, 1)] == [True, False]
    assert [is_chief(with_chief, "worker", i) for i in (0, 1)] == [False, False]
    assert is_chief(with_chief, "chief", 0)


@tensorflow_only
def test_multi_worker_model_refuses_settings_its_step_cannot_run():
    from mmkeras.training.distributed import multi_worker_model

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse", steps_per_execution=2, jit_compile=False)
    with pytest.raises(ValueError, match=r"steps_per_execution=1 and jit_compile=False \(received 2 and False\)"):
        multi_worker_model(model)


def test_tf_only_strategies_are_refused_under_jax_naming_data_parallel():
    result = run_python("""
        import json
        from mmkeras.config import TrainConfig
        from mmkeras.training.strategy import build_strategy
        messages = {}
        for name in ("mirrored", "multi_worker"):
            try:
                build_strategy(TrainConfig(strategy=name))
            except ValueError as error:
                messages[name] = str(error)
        plan = build_strategy(TrainConfig(strategy="data_parallel"))
        import keras
        print(json.dumps({"backend": keras.backend.backend(), "messages": messages,
                          "plan": [plan.name, plan.num_replicas]}))
    """, KERAS_BACKEND="jax")
    assert result["backend"] == "jax"
    assert result["plan"] == ["data_parallel", 1]
    for name in ("mirrored", "multi_worker"):
        assert f"train.strategy={name} is a tf.distribute strategy" in result["messages"][name]
        assert "use train.strategy=data_parallel" in result["messages"][name]


@tensorflow_only
def test_mirrored_over_two_logical_cpus_refuses_what_fails_and_trains_the_rest():
    result = run_python(TWO_CPUS + """
import json
import keras
import numpy as np
from mmkeras.config import TrainConfig
from mmkeras.training.strategy import build_strategy

refused = {}
for name, settings in {"jit": {"jit_compile": True}, "spe": {"steps_per_execution": 4},
                       "batch": {"batch_size": 7}}.items():
    try:
        build_strategy(TrainConfig(**{"strategy": "mirrored", "batch_size": 8, **settings}))
    except ValueError as error:
        refused[name] = str(error)

keras.utils.set_random_seed(0)
plan = build_strategy(TrainConfig(strategy="mirrored", batch_size=32))
rng = np.random.default_rng(0)
features = {"a": rng.normal(size=(256, 8)).astype("float32"), "b": rng.normal(size=(256, 4)).astype("float32")}
labels = tf.one_hot((features["a"][:, :3].sum(1) > 0).astype("int64"), 2)
data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(32)
with plan.scope():
    a, b = keras.Input((8,), name="a"), keras.Input((4,), name="b")
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([a, b]))
    model = keras.Model({"a": a, "b": b}, keras.layers.Dense(2, activation="softmax")(hidden))
    model.compile(keras.optimizers.Adam(0.01), "categorical_crossentropy", metrics=["accuracy"])
    model = plan.prepare_model(model)
history = model.fit(data, epochs=5, verbose=0).history
print(json.dumps({"replicas": plan.num_replicas, "jit": plan.jit_compile,
                  "devices": list(plan.strategy.extended.worker_devices),
                  "refused": refused, "loss": history["loss"], "accuracy": history["accuracy"][-1]}))
""")
    assert result["replicas"] == 2 and [d[-5:] for d in result["devices"]] == ["CPU:0", "CPU:1"]
    assert result["jit"] is False  # train.jit_compile: auto (the default) is off here, so not refused
    assert "jit_compile=true does not work under train.strategy=mirrored" in result["refused"]["jit"]
    assert "steps_per_execution=4 does not work under train.strategy=mirrored" in result["refused"]["spe"]
    assert "batch_size=7 is the global batch and must divide evenly among the 2 replicas" in result["refused"]["batch"]
    loss = result["loss"]
    assert loss[-1] < 0.7 * loss[0], loss
    assert result["accuracy"] > 0.8


@tensorflow_only
def test_train_with_mirrored_over_two_logical_cpus_matches_one_device(tmp_path):
    from tests.training.test_multi_worker import tiny_text_config

    config = tiny_text_config(tmp_path / "data")
    result = run_python(TWO_CPUS + f"""
import json
from mmkeras.config import load_config
from mmkeras.training.trainer import train
runs = {{}}
for strategy in ("mirrored", "cpu"):
    config = load_config({str(config)!r}, ["train.strategy=" + strategy])
    run = train(config, run_dir={str(tmp_path)!r} + "/" + strategy)
    runs[strategy] = {{"status": run.status(), "loss": [row["loss"] for row in run.epoch_rows()]}}
print(json.dumps(runs))
""")
    mirrored, one = result["mirrored"], result["cpu"]
    assert mirrored["status"]["status"] == "complete"
    assert (mirrored["status"]["strategy"], mirrored["status"]["replicas"]) == ("mirrored", 2)
    assert mirrored["loss"][-1] < 0.8 * mirrored["loss"][0]
    # The same global batch split over two replicas: the one-device numbers up to summation order in
    # epoch 1; later epochs reshuffle in an order that depends on how the strategy iterates.
    assert mirrored["loss"][0] == pytest.approx(one["loss"][0], rel=1e-3)
    assert mirrored["loss"] == pytest.approx(one["loss"], rel=0.1)
