"""Shared test harnesses (KerasHub's ``run_layer_test`` idea): every layer gets the same checks.

``run_layer_test(layer_cls, init_kwargs, input_data, tmp_path, expected_num_...=N)`` checks, for
one layer class:

1. the output of a direct call (eager; one ``jax.jit`` on JAX, see ``_infer``) has the shape
   ``compute_output_shape`` gives (== ``expected_output_shape`` if given), also
   on an unbuilt layer, and the values are finite;
2. the built layer has ``expected_num_trainable_variables`` / ``expected_num_non_trainable_variables``
   variables and ``expected_num_params`` parameters (numbers the test states, not read back);
3. ``get_config`` names every constructor argument, and ``get_config -> from_config ->
   get_config`` gives the same JSON;
4. building the layer builds every sublayer; a Functional model containing the layer predicts what the eager layer computes, reports the
   real output dtype symbolically, and round-trips through ``model.save("x.keras")`` /
   ``keras.models.load_model`` (no ``custom_objects``, default ``safe_mode``): the reloaded
   model's compiled predictions equal the eager layer's output (without the saving check, a
   ``from_config`` copy with the weights copied must give them instead);
5. a training step compiled with ``jit_compile=True`` runs and its loss is finite;
6. under the ``mixed_float16`` and ``mixed_bfloat16`` policies, in a compiled model (XLA on JAX,
   a graph on TensorFlow), the output dtype is ``mixed_precision_output_dtype`` (``"float32"``
   for fusions; ``"compute"`` means the policy's compute dtype) and finite; the global policy is
   restored afterwards.

With ``invariant_input_data`` (the same call arguments with values the layer must not read, e.g.
a missing modality's), the compiled float32 model of step 4 and both mixed-precision models of
step 6 must give *bit-for-bit* the same output for it as for ``input_data``.

``input_data`` is an ordered dict of call arguments (``{"vectors": [...], "presence": ...}``):
the first entry is passed positionally, the rest by keyword; values are numpy arrays, lists of
arrays or None. The output may be one tensor or a list of tensors.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import keras
import numpy as np

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def _call(layer, input_data, **extra):
    items = list(input_data.items())
    return layer(items[0][1], **dict(items[1:]), **extra)


def _shape_kwargs(layer, input_data):
    """Arguments for ``layer.compute_output_shape`` from the inputs' shapes (Keras's own rule)."""
    shapes = {
        f"{name}_shape": keras.tree.map_structure(lambda a: tuple(np.shape(a)), value)
        for name, value in input_data.items()
        if value is not None and name != "mask"
    }
    params = [
        p for p in inspect.signature(layer.compute_output_shape).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if len(params) == 1:
        return {params[0].name: next(iter(shapes.values()))}
    return {name: value for name, value in shapes.items() if name in {p.name for p in params}}


def _dtype(x) -> str:
    return keras.backend.standardize_dtype(x.dtype)


def _flat(output):
    """The output's tensors as a list of float32 numpy arrays."""
    return [np.asarray(keras.ops.convert_to_numpy(t), dtype="float32") for t in keras.tree.flatten(output)]


def _shapes(output):
    return [tuple(t.shape) for t in keras.tree.flatten(output)]


def _output_shapes(shape):
    """``compute_output_shape``'s answer as a list of shapes (one per output tensor)."""
    return [tuple(s) for s in shape] if shape and isinstance(shape[0], (list, tuple)) else [tuple(shape)]


def _assert_close(got, expected, atol, what):
    got, expected = _flat(got), _flat(expected)
    assert [g.shape for g in got] == [e.shape for e in expected], f"{what}: shapes differ"
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=atol, err_msg=what)


def _assert_identical(got, expected, what):
    for g, e in zip(_flat(got), _flat(expected)):
        difference = float(np.max(np.abs(g - e))) if g.size else 0.0
        assert difference == 0.0, f"{what}: the output moved by {difference} with values it must not read"


def _symbolic(input_data):
    """Keras inputs mirroring ``input_data``: (flat list of keras.Input, same structure as input_data)."""
    flat_inputs = []

    def make(array):
        array = np.asarray(array)
        tensor = keras.Input(shape=array.shape[1:], dtype=str(array.dtype), name=f"input_{len(flat_inputs)}")
        flat_inputs.append(tensor)
        return tensor

    structure = {
        name: (None if value is None else keras.tree.map_structure(make, value))
        for name, value in input_data.items()
    }
    return flat_inputs, structure


def _flat_arrays(input_data):
    return [np.asarray(a) for value in input_data.values() if value is not None for a in keras.tree.flatten(value)]


def check_config(layer_cls, layer, init_kwargs):
    """``get_config`` covers the constructor and survives ``from_config`` as identical JSON."""
    config = layer.get_config()
    params = [
        name for name, p in inspect.signature(layer_cls.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    missing = [name for name in params if name not in config]
    assert not missing, f"{layer_cls.__name__}.get_config() lacks constructor arguments {missing}"
    for name, value in init_kwargs.items():
        if isinstance(value, (int, float, str, type(None))):
            assert config[name] == value, f"get_config()[{name!r}] = {config[name]!r}, built with {value!r}"
    again = layer_cls.from_config(config).get_config()
    assert json.dumps(again, sort_keys=True) == json.dumps(config, sort_keys=True), (
        f"{layer_cls.__name__}: get_config -> from_config -> get_config changed the config:\n{config}\n{again}"
    )
    return config


def check_variable_counts(layer, trainable, non_trainable, params):
    """The built layer's variable and parameter counts are the numbers the test states."""
    counts = (len(layer.trainable_variables), len(layer.non_trainable_variables), layer.count_params())
    assert counts == (trainable, non_trainable, params), (
        f"{type(layer).__name__}: (trainable variables, non-trainable variables, parameters) = {counts}; "
        f"the test expects {(trainable, non_trainable, params)}"
    )


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    tmp_path,
    *,
    expected_num_trainable_variables,
    expected_num_non_trainable_variables,
    expected_num_params,
    expected_output_shape=None,
    invariant_input_data=None,
    mixed_precision_output_dtype="float32",
    run_training_check=True,
    run_saving_check=True,
    run_mixed_precision_check=True,
):
    """Run the standard checks on ``layer_cls(**init_kwargs)`` called on ``input_data``."""
    tmp_path = Path(tmp_path)
    name = layer_cls.__name__

    # 1. Eager call: shape, compute_output_shape, finiteness.
    layer = layer_cls(**init_kwargs)
    raw_output = _infer(layer, input_data)
    assert all(np.all(np.isfinite(o)) for o in _flat(raw_output)), f"{name} produced non-finite values"
    predicted = _output_shapes(layer.compute_output_shape(**_shape_kwargs(layer, input_data)))
    assert _shapes(raw_output) == predicted, f"output {_shapes(raw_output)} != compute_output_shape {predicted}"
    if expected_output_shape is not None:
        assert _shapes(raw_output) == _output_shapes(tuple(expected_output_shape))
    fresh = layer_cls(**init_kwargs)
    assert _output_shapes(fresh.compute_output_shape(**_shape_kwargs(fresh, input_data))) == predicted
    assert not fresh.built, "compute_output_shape built the layer"

    # 2. Variable and parameter counts.
    check_variable_counts(
        layer, expected_num_trainable_variables, expected_num_non_trainable_variables, expected_num_params
    )

    # 3. Config: every constructor argument, JSON-identical after from_config.
    config = check_config(layer_cls, layer, init_kwargs)

    # 4. Functional model, symbolic dtype and .keras round trip (which also revives the layer
    # from its config and restores its weights).
    flat_inputs, symbolic = _symbolic(input_data)
    symbolic_output = _call(layer, symbolic)
    assert [s[1:] for s in _shapes(symbolic_output)] == [s[1:] for s in predicted]
    assert [_dtype(t) for t in keras.tree.flatten(symbolic_output)] == [
        _dtype(t) for t in keras.tree.flatten(raw_output)
    ], "symbolic dtype != eager dtype"
    unbuilt = [l.name for l in layer._flatten_layers() if not l.built]
    # Keras would otherwise run the whole model eagerly once to build them (op by op on JAX).
    assert not unbuilt, f"{name}.build() left sublayers unbuilt: {unbuilt}"
    model = keras.Model(flat_inputs, symbolic_output)
    arrays = _flat_arrays(input_data)
    if run_saving_check:
        path = tmp_path / f"{name}.keras"
        model.save(path)
        model = keras.models.load_model(path)
        assert any(isinstance(l, layer_cls) for l in model.layers), "the reloaded model lost the layer"
    else:
        revived = layer_cls.from_config(config)
        _call(revived, input_data)
        revived.set_weights(layer.get_weights())
        _assert_close(_infer(revived, input_data), raw_output, 1e-6, "from_config copy with the weights")
    # Compiled predictions of the (reloaded) model match the eager layer: compiling each model
    # separately would double the slowest part of this harness.
    predictions = model.predict_on_batch(arrays)
    _assert_close(predictions, raw_output, 1e-5, "compiled predictions of the (reloaded) model")
    if invariant_input_data is not None:
        _assert_identical(model.predict_on_batch(_flat_arrays(invariant_input_data)), predictions, "float32")

    # 5. One jit-compiled training step on a scalar regression of the layer's output.
    if run_training_check:
        flat_inputs, symbolic = _symbolic(input_data)
        outputs = keras.tree.flatten(_call(layer_cls(**init_kwargs), symbolic))
        features = [keras.layers.Flatten()(o) for o in outputs]
        features = features[0] if len(features) == 1 else keras.layers.Concatenate()(features)
        train_model = keras.Model(flat_inputs, keras.layers.Dense(1)(features))
        train_model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", jit_compile=True)
        targets = np.linspace(-1, 1, len(arrays[0])).astype("float32")[:, None]
        loss = train_model.train_on_batch(arrays, targets)
        assert np.isfinite(loss), f"training loss is {loss}"
        assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in train_model.weights)

    # 6. Mixed precision: output dtype, finiteness (and invariance).
    if run_mixed_precision_check:
        previous = keras.config.dtype_policy()
        try:
            for policy in MIXED_POLICIES:
                keras.config.set_dtype_policy(policy)
                mixed_layer = layer_cls(**init_kwargs)
                expected = (
                    mixed_layer.compute_dtype if mixed_precision_output_dtype == "compute"
                    else mixed_precision_output_dtype
                )
                flat_inputs, symbolic = _symbolic(input_data)
                symbolic_output = _call(mixed_layer, symbolic)
                dtypes = {_dtype(t) for t in keras.tree.flatten(symbolic_output)}
                assert dtypes == {expected}, f"{policy}: symbolic output dtypes {dtypes} != {expected}"
                # Compiled as Keras compiles by default: XLA on JAX, a graph on TensorFlow on CPU
                # (where an XLA compile per policy would double this harness; check 5 is XLA).
                mixed_model = keras.Model(flat_inputs, symbolic_output)
                mixed_output = mixed_model.predict_on_batch(arrays)
                dtypes = {_dtype(t) for t in keras.tree.flatten(mixed_output)}
                assert dtypes == {expected}, f"{policy}: output dtypes {dtypes} != {expected}"
                assert all(np.all(np.isfinite(o)) for o in _flat(mixed_output)), f"{policy}: non-finite output"
                if invariant_input_data is not None:
                    again = mixed_model.predict_on_batch(_flat_arrays(invariant_input_data))
                    _assert_identical(again, mixed_output, policy)
        finally:
            keras.config.set_dtype_policy(previous)
    return layer, raw_output


def _takes_training(layer):
    return "training" in inspect.signature(layer.call).parameters


def _infer(layer, input_data):
    """The layer called directly on ``input_data`` in inference mode.

    TensorFlow runs it eagerly. JAX runs it as one ``jax.jit`` of ``stateless_call``: JAX's eager
    mode runs the same ``jnp`` operations one at a time, compiling each anew for every shape,
    which gives the same values at many times the cost (it was the slowest part of the suite).
    """
    extra = {"training": False} if _takes_training(layer) else {}
    if keras.backend.backend() != "jax":
        return _call(layer, input_data, **extra)
    import jax

    if not layer.built:
        _call(layer, _symbolic(input_data)[1])  # builds it from the shapes, computes nothing
    (_, first), *rest = input_data.items()

    def run(trainable, non_trainable, first, rest):
        return layer.stateless_call(trainable, non_trainable, first, **rest, **extra)[0]

    variables = [[v.value for v in group] for group in (layer.trainable_variables, layer.non_trainable_variables)]
    return jax.jit(run)(*variables, first, dict(rest))
