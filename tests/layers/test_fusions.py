"""Every registered fusion, checked against the contract in ``mmkeras.layers``' docstring.

The tests are driven by ``registry.names("fusion")``, so a newly registered fusion is covered
the moment it is registered.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from mmkeras import registry
from mmkeras.layers import CrossAttentionFusion, LateFusion, WeightedSumFusion
from tests.harness import run_layer_test

BATCH = 4
OUTPUT_DIM = 8
NUM_CLASSES = 3
# Modality subsets: differing vector dims, differing token lengths.
SUBSETS = {"1mod": [6], "2mod": [6, 5], "3mod": [6, 5, 3]}
TOKEN_STEPS = [4, 3, 2]
SMALL_SETTINGS = {"tensor": {"projection_dim": 3}, "low_rank": {"rank": 2}}
FUSIONS = registry.names("fusion")
# With one modality, cross-attention's only key is its null token: Keras warns about a softmax
# over one entry, which is exactly what is meant there.
pytestmark = pytest.mark.filterwarnings("ignore:You are using a softmax over axis:UserWarning")
CASES = [pytest.param(name, subset, id=f"{name}-{subset}") for name in FUSIONS for subset in SUBSETS]


def fusion_kwargs(name, **overrides):
    cls = registry.get("fusion", name)
    kwargs = {"output_dim": OUTPUT_DIM, **SMALL_SETTINGS.get(name, {})}
    if cls.outputs_logits:
        kwargs["num_classes"] = NUM_CLASSES
    kwargs.update(overrides)
    return kwargs


def make_inputs(dims, with_tokens, seed=0, batch=BATCH):
    """Call arguments for M = len(dims) modalities: row 0 all present, row 1 all missing."""
    rng = np.random.default_rng(seed)
    vectors = [rng.normal(size=(batch, d)).astype("float32") for d in dims]
    presence = (rng.random((batch, len(dims))) < 0.6).astype("float32")
    presence[0] = 1.0
    presence[1] = 0.0
    data = {"vectors": vectors, "presence": presence}
    if with_tokens:
        data["tokens"] = [
            rng.normal(size=(batch, TOKEN_STEPS[m], d)).astype("float32") for m, d in enumerate(dims)
        ]
        masks = []
        for m in range(len(dims)):
            mask = np.ones((batch, TOKEN_STEPS[m]), "float32")
            mask[2:, 1:] = 0.0  # padding after the first token in rows 2 and 3
            masks.append(mask)
        data["token_masks"] = masks
    return data


def call(fusion, data):
    return keras.ops.convert_to_numpy(fusion(**data, training=False))


def expected_width(name):
    return NUM_CLASSES if registry.get("fusion", name).outputs_logits else OUTPUT_DIM


# --------------------------------------------------------------------------- registry
def test_fusion_registry_lists_the_fusion_zoo():
    assert FUSIONS == sorted(
        ["concat", "mean", "weighted_sum", "gated", "self_attention", "cross_attention", "tensor", "low_rank", "late"]
    )
    assert [n for n in FUSIONS if registry.get("fusion", n).uses_tokens] == ["cross_attention"]
    assert [n for n in FUSIONS if registry.get("fusion", n).outputs_logits] == ["late"]


# --------------------------------------------------------------------------- harness
@pytest.mark.parametrize("name, subset", CASES)
def test_fusion_passes_layer_harness(name, subset, tmp_path):
    cls = registry.get("fusion", name)
    data = make_inputs(SUBSETS[subset], with_tokens=cls.uses_tokens)
    run_layer_test(
        cls, fusion_kwargs(name), data, tmp_path, expected_output_shape=(BATCH, expected_width(name))
    )


# --------------------------------------------------------------------------- masking rule
@pytest.mark.parametrize("name, subset", CASES)
def test_fusion_ignores_missing_modality_values(name, subset):
    cls = registry.get("fusion", name)
    dims = SUBSETS[subset]
    token_options = [False, True] if cls.uses_tokens else [False]
    for with_tokens in token_options:
        fusion = cls(**fusion_kwargs(name))
        for missing in range(len(dims)):
            data = make_inputs(dims, with_tokens)
            data["presence"][:, missing] = 0.0
            reference = call(fusion, data)
            rng = np.random.default_rng(missing + 1)
            data["vectors"][missing] = (100 * rng.normal(size=data["vectors"][missing].shape)).astype("float32")
            if with_tokens:
                data["tokens"][missing] = (100 * rng.normal(size=data["tokens"][missing].shape)).astype("float32")
            changed = call(fusion, data)
            assert np.max(np.abs(changed - reference)) == 0.0, (
                f"{name}: output moved with the values of missing modality {missing} (tokens={with_tokens})"
            )


@pytest.mark.parametrize("name, subset", CASES)
def test_fusion_with_all_modalities_missing_is_finite(name, subset):
    cls = registry.get("fusion", name)
    data = make_inputs(SUBSETS[subset], with_tokens=cls.uses_tokens)
    data["presence"][:] = 0.0
    out = call(cls(**fusion_kwargs(name)), data)
    assert out.shape == (BATCH, expected_width(name))
    assert np.all(np.isfinite(out))


def test_cross_attention_ignores_padded_tokens():
    fusion = CrossAttentionFusion(output_dim=OUTPUT_DIM)
    data = make_inputs([6, 5, 3], with_tokens=True)
    reference = call(fusion, data)
    for tokens, mask in zip(data["tokens"], data["token_masks"]):
        tokens[mask == 0] = 1e3
    np.testing.assert_array_equal(call(fusion, data), reference)


def test_cross_attention_without_tokens_uses_vectors_as_one_step_sequences():
    fusion = CrossAttentionFusion(output_dim=OUTPUT_DIM)
    data = make_inputs([6, 5], with_tokens=False)
    as_tokens = dict(data, tokens=[v[:, None, :] for v in data["vectors"]])
    np.testing.assert_allclose(call(fusion, data), call(fusion, as_tokens), atol=1e-6)


# --------------------------------------------------------------------------- renormalization
@pytest.mark.parametrize("cls", [LateFusion, WeightedSumFusion], ids=["late", "weighted_sum"])
def test_modality_weights_renormalize_over_present_modalities(cls):
    kwargs = {"output_dim": OUTPUT_DIM, "num_classes": NUM_CLASSES} if cls is LateFusion else {"output_dim": OUTPUT_DIM}
    fusion = cls(**kwargs)
    data = make_inputs([6, 5, 3], with_tokens=False, batch=2)
    data["presence"][:] = 1.0
    fusion(**data)
    # Unnormalized weights 1, 2, 5.
    fusion.modality_logits.assign(np.log([1.0, 2.0, 5.0]).astype("float32"))

    def output(flags):
        return call(fusion, dict(data, presence=np.tile(np.array(flags, "float32"), (2, 1))))

    alone = [output(np.eye(3)[m]) for m in range(3)]
    np.testing.assert_allclose(output([1, 1, 0]), (1 * alone[0] + 2 * alone[1]) / 3, atol=1e-5)
    np.testing.assert_allclose(output([1, 0, 1]), (1 * alone[0] + 5 * alone[2]) / 6, atol=1e-5)
    np.testing.assert_allclose(output([0, 1, 1]), (2 * alone[1] + 5 * alone[2]) / 7, atol=1e-5)
    np.testing.assert_allclose(output([1, 1, 1]), (alone[0] + 2 * alone[1] + 5 * alone[2]) / 8, atol=1e-5)
    weights = keras.ops.convert_to_numpy(fusion.modality_weights(np.array([[True, False, True]])))
    np.testing.assert_allclose(weights, [[1 / 6, 0.0, 5 / 6]], atol=1e-6)
    assert float(np.max(np.abs(output([0, 0, 0])))) == 0.0


# --------------------------------------------------------------------------- learning
@pytest.mark.parametrize("name", FUSIONS)
def test_fusion_model_fits_toy_problem(name):
    cls = registry.get("fusion", name)
    dims = SUBSETS["2mod"]
    data = make_inputs(dims, with_tokens=cls.uses_tokens, batch=32)
    labels = (data["vectors"][0][:, 0] + data["vectors"][1][:, 0] > 0).astype("int32")
    flat = data["vectors"] + [data["presence"]] + data.get("tokens", []) + data.get("token_masks", [])
    inputs = [keras.Input(shape=a.shape[1:]) for a in flat]
    m = len(dims)
    kwargs = {"tokens": inputs[m + 1 : 2 * m + 1], "token_masks": inputs[2 * m + 1 :]} if cls.uses_tokens else {}
    fusion = cls(**fusion_kwargs(name, **({"num_classes": 2} if cls.outputs_logits else {})))
    fused = fusion(inputs[:m], inputs[m], **kwargs)
    probs = keras.layers.Softmax()(fused) if cls.outputs_logits else keras.layers.Dense(2, activation="softmax")(fused)
    model = keras.Model(inputs, probs)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    history = model.fit(flat, labels, batch_size=32, epochs=20, verbose=0).history["loss"]
    assert all(math.isfinite(x) for x in history)
    assert history[-1] < 0.8 * history[0], f"{name}: loss went {history[0]:.3f} -> {history[-1]:.3f}"
    assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(w))) for w in model.weights)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("name", FUSIONS)
@pytest.mark.parametrize("bad", [0, -3, 2.5, "8"], ids=["zero", "negative", "float", "string"])
def test_fusion_rejects_invalid_output_dim(name, bad):
    with pytest.raises(ValueError, match=f"received output_dim={bad!r}"):
        registry.get("fusion", name)(**fusion_kwargs(name, output_dim=bad))


@pytest.mark.parametrize("name", FUSIONS)
def test_fusion_rejects_presence_of_wrong_width(name):
    cls = registry.get("fusion", name)
    data = make_inputs([6, 5], with_tokens=False)
    data["presence"] = np.ones((BATCH, 3), "float32")
    with pytest.raises(ValueError, match=r"presence.*\(batch, 2\).*received \(4, 3\)"):
        cls(**fusion_kwargs(name))(**data)


def test_late_fusion_rejects_single_class():
    with pytest.raises(ValueError, match="received num_classes=1"):
        LateFusion(output_dim=4, num_classes=1)


@pytest.mark.parametrize(
    "name, setting",
    [("tensor", "projection_dim"), ("low_rank", "rank"), ("self_attention", "num_heads"), ("cross_attention", "num_heads")],
)
def test_fusion_rejects_invalid_settings(name, setting):
    with pytest.raises(ValueError, match=f"received {setting}=0"):
        registry.get("fusion", name)(**fusion_kwargs(name, **{setting: 0}))


def test_fusion_rejects_invalid_dropout():
    with pytest.raises(ValueError, match="received dropout=1.5"):
        registry.get("fusion", "concat")(output_dim=4, dropout=1.5)
