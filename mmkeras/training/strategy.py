"""Device placement: one ``DistributionPlan`` from ``train.strategy`` for either Keras backend.

TensorFlow backend: ``cpu``, ``gpu``, ``mirrored``, ``tpu``, ``multi_worker`` (``TF_CONFIG``) and
``auto`` (TPU if one is attached, then Mirrored over several GPUs, then one GPU or the CPU).
JAX backend: ``data_parallel`` (``keras.distribution.DataParallel`` over all devices) and ``auto``
(DataParallel when there is more than one device, e.g. the 8 cores of a Colab TPU), ``cpu``, ``gpu``,
``tpu``; the TF-only strategies are refused with a message naming the JAX equivalent.
Keras 3 cannot ``fit`` under ``MultiWorkerMirroredStrategy`` by itself: ``DistributionPlan.prepare_model``
applies the fix in ``mmkeras.training.distributed`` (what works where: docs/distributed.md).

Example:
    >>> from mmkeras.config import TrainConfig
    >>> plan = build_strategy(TrainConfig(strategy="cpu"))
    >>> plan.num_replicas
    1
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import keras

from mmkeras.training.auto import resolve_jit_compile

TF_ONLY = ("mirrored", "multi_worker")


@dataclass
class DistributionPlan:
    """What the trainer needs to know: a scope to build the model in and the replica count."""

    name: str
    num_replicas: int = 1
    strategy: Any = None  # a tf.distribute.Strategy on the TF backend
    scope: Callable[[], contextlib.AbstractContextManager] = field(default=contextlib.nullcontext)
    is_chief: bool = True
    worker_index: int = 0
    jit_compile: bool = False  # train.jit_compile resolved for this backend and strategy

    @property
    def is_tf_distributed(self) -> bool:
        return (self.strategy is not None and self.strategy.num_replicas_in_sync > 1) or self.name == "multi_worker"

    def prepare_model(self, model):
        """Call after ``model.compile`` inside ``scope()``: under ``multi_worker`` this swaps in the
        train/test step that Keras 3 lacks for ``MultiWorkerMirroredStrategy``
        (``mmkeras.training.distributed``); other strategies get the model back unchanged."""
        if self.name == "multi_worker":
            from mmkeras.training.distributed import multi_worker_model

            return multi_worker_model(model)
        return model


def _tpu_attached() -> bool:
    # Probing TPUClusterResolver without a TPU can hang on metadata look-ups, so look for signs first.
    return bool(os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR")) or os.path.exists("/dev/accel0")


def _tf_tpu_strategy():
    import tensorflow as tf

    errors = []
    for kwargs in ({"tpu": "local"}, {}):  # Colab TPU VMs need "local"; older runtimes the default
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(**kwargs)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:  # no TPU of that kind
            errors.append(f"TPUClusterResolver({kwargs}): {error}")
    raise RuntimeError(
        "train.strategy=tpu but no TPU was found (" + "; ".join(errors) + "). On a Colab TPU runtime without "
        "TensorFlow, use train.backend=jax (the JAX path trains on the TPU cores with keras.distribution)."
    )


def _read_tf_config() -> tuple[dict, str, int]:
    try:
        tf_config = json.loads(os.environ["TF_CONFIG"])
        cluster, task = tf_config["cluster"], tf_config["task"]
        task_type, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            "train.strategy=multi_worker: TF_CONFIG must be JSON like "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}} '
            f"({type(error).__name__}: {error}; received {os.environ['TF_CONFIG'][:200]!r})"
        ) from None
    if task_type not in cluster or index >= len(cluster[task_type]):
        raise ValueError(
            f"train.strategy=multi_worker: TF_CONFIG task {task_type}:{index} is not in its cluster "
            f"{json.dumps(cluster)}"
        )
    if "ps" in cluster:
        raise ValueError(
            "train.strategy=multi_worker: TF_CONFIG names parameter servers (\"ps\"), but Keras 3 has no "
            "ParameterServerStrategy support; list only chief/worker tasks"
        )
    return cluster, task_type, index


def _multi_worker_plan() -> DistributionPlan:
    import tensorflow as tf

    if "TF_CONFIG" not in os.environ:
        raise RuntimeError(
            "train.strategy=multi_worker reads the cluster from the TF_CONFIG environment variable, "
            "which is not set (see docs/distributed.md)"
        )
    cluster, task_type, index = _read_tf_config()
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:
        if "program startup" not in str(error):
            raise
        raise RuntimeError(
            "train.strategy=multi_worker must create its strategy before anything else starts TensorFlow "
            "(listing devices, creating a tensor); call build_strategy first in the process"
        ) from error
    return DistributionPlan("multi_worker", strategy.num_replicas_in_sync, strategy, strategy.scope,
                            is_chief=is_chief(cluster, task_type, index), worker_index=index)


def is_chief(cluster: dict, task_type: str, index: int) -> bool:
    """TensorFlow's rule: the ``chief`` task, or worker 0 when the cluster names no chief.

    Example:
        >>> is_chief({"worker": ["a:1", "b:2"]}, "worker", 0)
        True
        >>> is_chief({"chief": ["c:3"], "worker": ["a:1", "b:2"]}, "worker", 0)
        False
    """
    return task_type == "chief" or (task_type == "worker" and index == 0 and "chief" not in cluster)


def _tf_plan(name: str) -> DistributionPlan:
    import tensorflow as tf

    if name == "multi_worker":  # first: listing devices starts the TF runtime, after which
        return _multi_worker_plan()  # MultiWorkerMirroredStrategy can no longer set up collectives
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if _tpu_attached():
            name = "tpu"
        elif len(gpus) > 1:
            name = "mirrored"
        else:
            name = "gpu" if gpus else "cpu"
    if name == "data_parallel":
        raise ValueError(
            "train.strategy=data_parallel is the JAX backend's keras.distribution.DataParallel; "
            "under the TensorFlow backend use train.strategy=mirrored (one machine) or multi_worker"
        )
    if name == "gpu" and not gpus:
        raise RuntimeError("train.strategy=gpu but TensorFlow sees no GPU; use cpu or auto")
    if (name == "cpu" and not gpus) or (name == "gpu" and len(gpus) == 1):
        # The default strategy already runs on the only device, and unlike OneDeviceStrategy it feeds
        # Keras without a MultiDeviceIterator (measured: seconds of start-up per epoch on CPU).
        strategy = tf.distribute.get_strategy()
    elif name == "cpu":
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    elif name == "gpu":
        strategy = tf.distribute.OneDeviceStrategy(gpus[0].name)
    elif name == "mirrored":
        # Every GPU; without GPUs, every logical CPU (one, unless split with
        # tf.config.set_logical_device_configuration, which is how the tests run two replicas).
        devices = [device.name for device in gpus or tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
    elif name == "tpu":
        strategy = _tf_tpu_strategy()
    else:
        raise ValueError(f"unknown train.strategy {name!r}")
    return DistributionPlan(name, strategy.num_replicas_in_sync, strategy, strategy.scope)


def _jax_plan(name: str) -> DistributionPlan:
    import jax

    if name in TF_ONLY:
        raise ValueError(
            f"train.strategy={name} is a tf.distribute strategy and needs the TensorFlow backend; under "
            "train.backend=jax use train.strategy=data_parallel (keras.distribution.DataParallel over all "
            "devices; on several hosts it uses jax.distributed)"
        )
    devices = jax.devices()
    if name == "gpu" and not jax.devices()[0].platform == "gpu":
        raise RuntimeError("train.strategy=gpu but JAX sees no GPU; use cpu or auto")
    if name == "tpu" and not devices[0].platform == "tpu":
        raise RuntimeError("train.strategy=tpu but JAX sees no TPU; use auto")
    if name == "data_parallel" or (name in ("auto", "tpu", "gpu") and len(devices) > 1):
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return DistributionPlan("data_parallel", len(devices))
    keras.distribution.set_distribution(None)
    return DistributionPlan(name if name != "auto" else devices[0].platform, 1)


def build_strategy(train_config) -> DistributionPlan:
    """Create the plan for ``train_config.strategy`` on the current Keras backend, resolve
    ``train.jit_compile`` for it (``auto``: ``mmkeras.training.auto``), and check that the speed
    settings are ones that strategy can run (refusing the rest with a clear message)."""
    backend = keras.backend.backend()
    plan = _jax_plan(train_config.strategy) if backend == "jax" else _tf_plan(train_config.strategy)
    if train_config.batch_size % plan.num_replicas:
        raise ValueError(
            f"train.batch_size={train_config.batch_size} is the global batch and must divide evenly among the "
            f"{plan.num_replicas} replicas of strategy {plan.name}"
        )
    plan.jit_compile = resolve_jit_compile(train_config.jit_compile, backend, plan.name)
    if backend == "jax" and plan.name == "data_parallel" and plan.num_replicas > 1 and not plan.jit_compile:
        # Measured (benchmarks/train_throughput.py, jax 0.10, 2 host devices): eager steps under
        # DataParallel crashed the process natively; jitted steps train (and are what TPUs need anyway).
        keras.distribution.set_distribution(None)
        raise ValueError(
            "train.jit_compile=false is not supported with train.strategy=data_parallel on several devices "
            "under the JAX backend; set train.jit_compile=auto (or true)"
        )
    if backend == "tensorflow" and plan.name in ("mirrored", "multi_worker") and plan.num_replicas > 1:
        # Measured with Keras 3.15 / TF 2.21 (docs/distributed.md): under Mirrored, steps_per_execution>1
        # fails with "You must feed a value for placeholder tensor" (keras-team/keras#19246) and
        # jit_compile=True with "Trying to access resource ... located in device"; the multi-worker
        # step in mmkeras.training.distributed runs one step per call without XLA.
        if plan.jit_compile:
            raise ValueError(
                f"train.jit_compile=true does not work under train.strategy={plan.name} with Keras 3 on the "
                "TensorFlow backend; set train.jit_compile=auto (or false), or use train.backend=jax with "
                "data_parallel"
            )
        if train_config.steps_per_execution > 1:
            raise ValueError(
                f"train.steps_per_execution={train_config.steps_per_execution} does not work under "
                f"train.strategy={plan.name} with Keras 3 on the TensorFlow backend; set it to 1"
            )
    return plan
