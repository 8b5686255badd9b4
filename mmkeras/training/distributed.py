"""Multi-worker training with Keras 3 on the TensorFlow backend, and local clusters to try it on.

Keras 3 (measured with 3.15.1 / TF 2.21) cannot ``fit`` or ``evaluate`` under
``tf.distribute.MultiWorkerMirroredStrategy``; ``predict`` and ``save`` work. Two places in
``keras/src/backend/tensorflow/trainer.py`` break, and ``multi_worker_model`` replaces both on
one model instance (nothing global is patched, and the model still saves as a plain Functional):

1. ``_maybe_symbolic_build`` takes the first distributed batch and calls
   ``strategy.reduce("MEAN", batch, axis=None)`` on the whole nested structure (features dict,
   targets) only to learn its shapes. ``CollectiveAllReduceStrategy`` converts the structure to one
   tensor and fails with "Attempt to convert a value ({'a': PerReplica...}) with an unsupported type
   (<class 'dict'>) to a Tensor" (keras-team/keras#20329). We take the local replica's batch
   instead: shapes are all the build needs, and no collective runs.
2. ``reduce_per_replica`` reduces the step's logs with ``strategy.reduce("MEAN", v, axis=0)``
   whenever the strategy is multi-worker; the logs are scalars, so it fails with "Invalid reduction
   dimension 0 for input with 0 dimensions" (tensorflow/tensorflow#72388, keras-team/keras#20585).
   Our step function reduces with ``axis=None``: the mean of each replica's metric over all
   workers, so every worker sees the same logs (EarlyStopping and checkpoints then decide alike).

The replacement step runs one batch per call (``steps_per_execution=1``) without XLA, which is
what ``build_strategy`` allows under ``multi_worker`` anyway.

Example:
    >>> configs = local_tf_configs(2)
    >>> [json.loads(c)["task"] for c in configs]
    [{'type': 'worker', 'index': 0}, {'type': 'worker', 'index': 1}]
"""

from __future__ import annotations

import json
import socket
import types


def local_tf_configs(num_workers: int) -> list[str]:
    """``TF_CONFIG`` values (JSON) for ``num_workers`` worker processes on this machine, one per
    worker index, on free ports; worker 0 is the chief."""
    if num_workers < 1:
        raise ValueError(f"num_workers must be at least 1, received {num_workers}")
    probes = [socket.socket() for _ in range(num_workers)]
    try:  # every probe stays bound until all are chosen, so no two workers get the same port
        for probe in probes:
            probe.bind(("localhost", 0))
        cluster = {"worker": [f"localhost:{probe.getsockname()[1]}" for probe in probes]}
    finally:
        for probe in probes:
            probe.close()
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(num_workers)]


def multi_worker_model(model):
    """Make ``model`` (compiled under a ``MultiWorkerMirroredStrategy`` scope) trainable with
    ``fit`` and ``evaluate``; returns the same model. See the module docstring for why."""
    import tensorflow as tf
    from keras.src import tree

    strategy = model.distribute_strategy
    for name in ("_maybe_symbolic_build", "_make_function", "_symbolic_build"):
        if not hasattr(model, name):
            import keras

            raise RuntimeError(
                f"Keras {keras.__version__} has no Model.{name}; mmkeras.training.distributed was written for "
                "Keras 3.15 and must be checked against this version (see docs/distributed.md)"
            )
    if model.steps_per_execution != 1 or model.jit_compile:
        raise ValueError(
            "multi-worker training runs one step per call without XLA; compile with steps_per_execution=1 "
            f"and jit_compile=False (received {model.steps_per_execution} and {model.jit_compile})"
        )

    def local_batch(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(local_batch, next(batches))
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def _make_function(self, step_function):
        @tf.function(reduce_retracing=True)
        def one_step(iterator):
            logs = strategy.run(step_function, args=(iterator.get_next(),))
            return tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), logs)

        return one_step

    model._maybe_symbolic_build = types.MethodType(_maybe_symbolic_build, model)
    model._make_function = types.MethodType(_make_function, model)
    return model


def gather_replicas(embeddings: dict, presence: dict):
    """``(embeddings, presence, weight)`` of the global batch, gathered from every replica of the
    current ``tf.distribute`` replica context (``ContrastiveModel``'s ``global_batch``), so in-batch
    negatives span all replicas. Each replica then computes the same global loss; ``weight`` =
    1 / replicas makes the strategy's sum of the replicas' gradients the gradient of that loss
    (the gradient of ``all_gather`` hands each replica the part for its own rows)."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    if replicas == 1:
        return embeddings, presence, 1.0
    gather = lambda values: {k: context.all_gather(v, axis=0) for k, v in values.items()}  # noqa: E731
    return gather(embeddings), gather(presence), 1.0 / replicas
