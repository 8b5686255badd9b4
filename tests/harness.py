"""Shared test harnesses (KerasHub's ``run_layer_test`` idea): every layer gets the same checks.

``run_layer_test(layer_cls, init_kwargs, input_data, tmp_path)`` checks, for one layer class:

1. eager output shape == ``compute_output_shape`` (== ``expected_output_shape`` if given), values finite;
2. ``get_config`` names every constructor argument, and ``from_config(get_config())`` with the
   weights copied gives identical outputs;
3. a Functional model containing the layer predicts what the eager layer computes, reports the
   real output dtype symbolically, and round-trips through ``model.save("x.keras")`` /
   ``keras.models.load_model`` (no ``custom_objects``, default ``safe_mode``): the reloaded
   model's compiled predictions equal the eager layer's output;
4. a training step compiled with ``jit_compile=True`` runs and its loss is finite;
5. under the ``mixed_float16`` and ``mixed_bfloat16`` policies the output dtype is
   ``mixed_precision_output_dtype`` (``"float32"`` for fusions; ``"compute"`` means the policy's
   compute dtype) and finite; the global policy is restored afterwards.

``input_data`` is an ordered dict of call arguments (``{"vectors": [...], "presence": ...}``):
the first entry is passed positionally, the rest by keyword; values are numpy arrays, lists of
arrays or None.
"""

from __future__ import annotations

import inspect
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
    return config


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    tmp_path,
    expected_output_shape=None,
    mixed_precision_output_dtype="float32",
    run_training_check=True,
    run_saving_check=True,
    run_mixed_precision_check=True,
):
    """Run the standard checks on ``layer_cls(**init_kwargs)`` called on ``input_data``."""
    tmp_path = Path(tmp_path)

    # 1. Eager call: shape, compute_output_shape, finiteness.
    layer = layer_cls(**init_kwargs)
    raw_output = _infer(layer, input_data)
    output = keras.ops.convert_to_numpy(raw_output)
    assert np.all(np.isfinite(output)), f"{layer_cls.__name__} produced non-finite values"
    predicted_shape = tuple(layer.compute_output_shape(**_shape_kwargs(layer, input_data)))
    assert output.shape == predicted_shape, f"output {output.shape} != compute_output_shape {predicted_shape}"
    if expected_output_shape is not None:
        assert output.shape == tuple(expected_output_shape)
    # compute_output_shape must also work on a fresh, unbuilt layer.
    fresh = layer_cls(**init_kwargs)
    assert tuple(fresh.compute_output_shape(**_shape_kwargs(fresh, input_data))) == predicted_shape
    assert not fresh.built

    # 2. Config round trip.
    config = check_config(layer_cls, layer, init_kwargs)
    revived = layer_cls.from_config(config)
    _call(revived, input_data)
    revived.set_weights(layer.get_weights())
    revived_output = keras.ops.convert_to_numpy(_infer(revived, input_data))
    np.testing.assert_allclose(revived_output, output, rtol=0, atol=1e-6)

    # 3. Functional model, symbolic dtype and .keras round trip.
    flat_inputs, symbolic = _symbolic(input_data)
    symbolic_output = _call(layer, symbolic)
    assert tuple(symbolic_output.shape)[1:] == predicted_shape[1:]
    assert _dtype(symbolic_output) == _dtype(raw_output), (
        f"symbolic dtype {_dtype(symbolic_output)} != eager dtype {_dtype(raw_output)}"
    )
    model = keras.Model(flat_inputs, symbolic_output)
    arrays = _flat_arrays(input_data)
    if run_saving_check:
        path = tmp_path / f"{layer_cls.__name__}.keras"
        model.save(path)
        model = keras.models.load_model(path)
        assert any(isinstance(l, layer_cls) for l in model.layers), "the reloaded model lost the layer"
    # Compiled predictions of the (reloaded) model match the eager layer: compiling each model
    # separately would double the slowest part of this harness.
    np.testing.assert_allclose(model.predict_on_batch(arrays), output, rtol=0, atol=1e-5)

    # 4. One jit-compiled training step on a scalar regression of the layer's output.
    if run_training_check:
        flat_inputs, symbolic = _symbolic(input_data)
        features = keras.layers.Flatten()(_call(layer_cls(**init_kwargs), symbolic))
        train_model = keras.Model(flat_inputs, keras.layers.Dense(1)(features))
        train_model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", jit_compile=True)
        targets = np.linspace(-1, 1, len(arrays[0])).astype("float32")[:, None]
        loss = train_model.train_on_batch(arrays, targets)
        assert np.isfinite(loss), f"training loss is {loss}"
        assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in train_model.weights)

    # 5. Mixed precision: output dtype and finiteness.
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
                # One compiled predict instead of an eager call: eager JAX compiles op by op,
                # per dtype, which is what made this check slow.
                flat_inputs, symbolic = _symbolic(input_data)
                symbolic_output = _call(mixed_layer, symbolic)
                assert _dtype(symbolic_output) == expected, (
                    f"{policy}: symbolic output dtype {_dtype(symbolic_output)} != {expected}"
                )
                mixed_output = keras.Model(flat_inputs, symbolic_output).predict_on_batch(arrays)
                assert _dtype(mixed_output) == expected, f"{policy}: output dtype {_dtype(mixed_output)} != {expected}"
                mixed_output = np.asarray(mixed_output, dtype="float32")
                assert np.all(np.isfinite(mixed_output)), f"{policy}: non-finite output"
        finally:
            keras.config.set_dtype_policy(previous)
    return layer, output


def _takes_training(layer):
    return "training" in inspect.signature(layer.call).parameters


def _infer(layer, input_data):
    return _call(layer, input_data, training=False) if _takes_training(layer) else _call(layer, input_data)
