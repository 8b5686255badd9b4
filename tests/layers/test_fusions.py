"""Every registered fusion, checked against the contract in ``mmkeras.layers``' docstring.

The tests are driven by ``registry.names("fusion")``, so a newly registered fusion is covered
the moment it is registered.
"""

from __future__ import annotations

import copy
import itertools
import math
import weakref

import keras
import numpy as np
import pytest

from mmkeras import registry
from mmkeras.layers import (
    CrossAttentionFusion,
    GatedFusion,
    GraphFusion,
    HybridFusion,
    LateFusion,
    LowRankFusion,
    TensorFusion,
    WeightedSumFusion,
)
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
SMALL_CASES = [pytest.param(name, subset, id=f"{name}-{subset}") for name in FUSIONS for subset in ("1mod", "2mod")]

# (trainable variables, non-trainable variables, parameters) of each fusion on SUBSETS["3mod"]
# (vector dims 6, 5, 3; token dims the same) with OUTPUT_DIM 8, NUM_CLASSES 3 and SMALL_SETTINGS.
# "projections" below = one Dense per modality to 8: (6 + 1) * 8 + (5 + 1) * 8 + (3 + 1) * 8 = 136.
EXPECTED_COUNTS = {
    "concat": (2, 0, 144),  # Dense(6 + 5 + 3 + 3 flags -> 8) = 17 * 8 + 8
    "mean": (6, 0, 136),  # projections
    "weighted_sum": (7, 0, 139),  # projections + 3 modality logits
    "gated": (8, 0, 568),  # projections (tanh) + gate Dense(17 -> 3 * 8) = 17 * 24 + 24
    "tensor": (8, 0, 571),  # Dense(d_m -> 3): 7*3 + 6*3 + 4*3 = 51, + Dense(4 ** 3 -> 8) = 64 * 8 + 8
    "low_rank": (5, 0, 282),  # factors 2 * (7 + 6 + 4) * 8 = 272, + 2 rank weights + 8 bias
    "late": (13, 0, 220),  # projections + 3 classifiers Dense(8 -> 3) = 3 * 27, + 3 modality logits
    # projections + 3 * 8 modality embedding + 8 CLS + one block (MHA 4 * (8 * 8 + 8) = 288,
    # 2 layer norms 32, FFN 8 * 16 + 16 + 16 * 8 + 8 = 280) + final norm 16
    "self_attention": (26, 0, 784),
    # projections + 3 blocks (MHA 288, 3 layer norms 48, FFN 280) + 3 * 8 embedding + 8 null token
    "cross_attention": (62, 0, 2016),
    # projections + 2 rounds of (message Dense(8 -> 2 heads * 4) without bias 64, attention
    # vectors a_dst, a_src 2 * 2 * 4 = 16) + readout Dense(8 -> 8) 72
    "graph": (14, 0, 368),
    # projections + 3 classifiers Dense(8 -> 3) 81 + early Dense(3 * 8 + 3 flags -> 8) 224 + early
    # classifier Dense(8 -> 3) 27 + 4 mixture logits (early branch + 3 modalities)
    "hybrid": (17, 0, 472),
}


def fusion_kwargs(name, **overrides):
    cls = registry.get("fusion", name)
    kwargs = {"output_dim": OUTPUT_DIM, **SMALL_SETTINGS.get(name, {})}
    if cls.outputs_logits:
        kwargs["num_classes"] = NUM_CLASSES
    kwargs.update(overrides)
    return kwargs


def every_subset(num_modalities):
    """``(2 ** M, M)`` presence: one row per subset of modalities, all-missing first, all-present last."""
    return np.array(list(itertools.product([0.0, 1.0], repeat=num_modalities)), "float32")


def make_inputs(dims, with_tokens, seed=0, batch=BATCH, presence=None):
    """Call arguments for M = len(dims) modalities: by default row 0 all present, row 1 all missing.

    With tokens, rows 2 and later are padded after their first token.
    """
    if presence is not None:
        batch = len(presence)
    rng = np.random.default_rng(seed)
    vectors = [rng.normal(size=(batch, d)).astype("float32") for d in dims]
    if presence is None:
        presence = (rng.random((batch, len(dims))) < 0.6).astype("float32")
        presence[0] = 1.0
        presence[1] = 0.0
    data = {"vectors": vectors, "presence": np.array(presence, "float32")}
    if with_tokens:
        data["tokens"] = [
            rng.normal(size=(batch, TOKEN_STEPS[m], d)).astype("float32") for m, d in enumerate(dims)
        ]
        masks = []
        for m in range(len(dims)):
            mask = np.ones((batch, TOKEN_STEPS[m]), "float32")
            mask[2:, 1:] = 0.0
            masks.append(mask)
        data["token_masks"] = masks
    return data


def hide_unread_values(data, seed=1):
    """A copy of ``data`` in which every value the masking rule forbids reading is replaced.

    Those are the vectors and tokens of missing modalities and the padded tokens; the new values
    are large (scale 100), so a fusion that reads any of them moves its output.
    """
    rng = np.random.default_rng(seed)
    hidden = copy.deepcopy(data)
    for m, vector in enumerate(hidden["vectors"]):
        missing = hidden["presence"][:, m] == 0
        vector[missing] = 100 * rng.normal(size=vector[missing].shape)
        if hidden.get("tokens") is not None:
            unread = missing[:, None] | (hidden["token_masks"][m] == 0)
            hidden["tokens"][m][unread] = 100 * rng.normal(size=hidden["tokens"][m][unread].shape)
    changed = [not np.array_equal(a, b) for a, b in zip(keras.tree.flatten(data), keras.tree.flatten(hidden))]
    assert any(changed), "the inputs have nothing to hide: no missing modality, no padding"
    return hidden


_COMPILED = weakref.WeakKeyDictionary()


def call(fusion, data):
    """``fusion``'s inference output as NumPy, building it from the shapes if needed.

    On JAX the call is one ``jax.jit`` per fusion: eager JAX compiles every op anew for every
    shape, which made the eager calls the slowest part of this file. The harness still checks
    the eager call; the masking rule is then also checked compiled on JAX.
    """
    data = {key: value for key, value in data.items() if value is not None}
    if not fusion.built:
        fusion.build(**{f"{key}_shape": keras.tree.map_structure(np.shape, value) for key, value in data.items()})
    if keras.backend.backend() != "jax":
        return keras.ops.convert_to_numpy(fusion(**data, training=False))
    import jax

    if fusion not in _COMPILED:
        layer = weakref.ref(fusion)
        _COMPILED[fusion] = jax.jit(lambda tv, ntv, d: layer().stateless_call(tv, ntv, **d, training=False)[0])
    values = [[v.value for v in variables] for variables in (fusion.trainable_variables, fusion.non_trainable_variables)]
    return np.asarray(_COMPILED[fusion](*values, data))


def expected_width(name):
    return NUM_CLASSES if registry.get("fusion", name).outputs_logits else OUTPUT_DIM


def randomize(layer, seed=0, scale=0.3):
    """Give every weight of ``layer`` random values (biases too), so formulas are tested in full."""
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign((scale * rng.normal(size=weight.shape)).astype("float32"))


def weights_of(dense):
    return keras.ops.convert_to_numpy(dense.kernel).astype("float64"), keras.ops.convert_to_numpy(dense.bias)


# --------------------------------------------------------------------------- registry
def test_fusion_registry_lists_the_fusion_zoo():
    assert FUSIONS == sorted(
        ["concat", "mean", "weighted_sum", "gated", "self_attention", "cross_attention", "tensor", "low_rank", "late",
         "graph", "hybrid"]
    )
    assert [n for n in FUSIONS if registry.get("fusion", n).uses_tokens] == ["cross_attention"]
    assert [n for n in FUSIONS if registry.get("fusion", n).outputs_logits] == ["hybrid", "late"]


# --------------------------------------------------------------------------- harness
@pytest.mark.parametrize("name", FUSIONS)
def test_fusion_passes_layer_harness(name, tmp_path):
    # Once per fusion, on 3 modalities with one row per subset: the .keras round trip and both
    # mixed policies, each also checking the masking rule bit for bit.
    cls = registry.get("fusion", name)
    data = make_inputs(SUBSETS["3mod"], with_tokens=cls.uses_tokens, presence=every_subset(3))
    trainable, non_trainable, params = EXPECTED_COUNTS[name]
    run_layer_test(
        cls,
        fusion_kwargs(name),
        data,
        tmp_path,
        expected_output_shape=(8, expected_width(name)),
        expected_num_trainable_variables=trainable,
        expected_num_non_trainable_variables=non_trainable,
        expected_num_params=params,
        invariant_input_data=hide_unread_values(data),
        # The XLA train step runs in test_fusion_model_fits_toy_problem_in_an_xla_train_step.
        run_training_check=False,
    )


@pytest.mark.parametrize("name, subset", SMALL_CASES)
def test_fusion_output_shape_is_predicted_and_finite_for_every_subset(name, subset):
    # 3 modalities: the harness; row 0 of every_subset has every modality missing.
    cls = registry.get("fusion", name)
    dims = SUBSETS[subset]
    data = make_inputs(dims, with_tokens=cls.uses_tokens, presence=every_subset(len(dims)))
    fusion = cls(**fusion_kwargs(name))
    out = call(fusion, data)
    shapes = {f"{key}_shape": keras.tree.map_structure(np.shape, value) for key, value in data.items()}
    assert out.shape == tuple(fusion.compute_output_shape(**shapes)) == (len(data["presence"]), expected_width(name))
    assert np.all(np.isfinite(out))


# --------------------------------------------------------------------------- masking rule
@pytest.mark.parametrize("name, subset", CASES)
def test_fusion_ignores_missing_modality_values(name, subset):
    cls = registry.get("fusion", name)
    dims = SUBSETS[subset]
    token_options = [False, True] if cls.uses_tokens else [False]
    for with_tokens in token_options:
        fusion = cls(**fusion_kwargs(name))
        data = make_inputs(dims, with_tokens, presence=every_subset(len(dims)))
        difference = np.max(np.abs(call(fusion, hide_unread_values(data)) - call(fusion, data)))
        assert difference == 0.0, f"{name}: output moved by {difference} with missing modalities' values (tokens={with_tokens})"


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


# --------------------------------------------------------------------------- formulas (NumPy oracles)
def test_gated_fusion_is_the_gmu_for_two_modalities():
    # Arevalo et al. 2017: h_m = tanh(W_m v_m), z = sigmoid(W_z [v_1, v_2]), out = z h_1 + (1 - z) h_2.
    fusion = GatedFusion(output_dim=OUTPUT_DIM)
    data = make_inputs([6, 5], with_tokens=False, presence=every_subset(2))
    call(fusion, data)
    randomize(fusion)
    out = call(fusion, data)
    (v1, v2), presence = data["vectors"], data["presence"]
    h1, h2 = (np.tanh(v @ k + b) for v, (k, b) in zip((v1, v2), map(weights_of, fusion.transforms.dense_layers)))
    kernel, bias = weights_of(fusion.gate)
    both = presence[-1]  # the last row: both present
    logits = (np.concatenate([v1[-1], v2[-1], both]) @ kernel + bias).reshape(2, OUTPUT_DIM)
    z = 1.0 / (1.0 + np.exp(-(logits[0] - logits[1])))
    np.testing.assert_allclose(out[-1], z * h1[-1] + (1 - z) * h2[-1], rtol=1e-5, atol=1e-5)
    # One modality alone passes its own h through (its gate is 1); none gives zeros.
    np.testing.assert_allclose(out[2], h1[2], rtol=1e-5, atol=1e-5)  # presence [1, 0]
    np.testing.assert_allclose(out[1], h2[1], rtol=1e-5, atol=1e-5)  # presence [0, 1]
    np.testing.assert_array_equal(out[0], np.zeros(OUTPUT_DIM))


def _outer(vectors):
    """Per example, the flattened outer product of ``vectors`` (C order, as ``vec`` in the docstrings)."""
    product = vectors[0]
    for v in vectors[1:]:
        product = np.einsum("bi,bj->bij", product, v).reshape(len(v), -1)
    return product


def _with_one(v):
    return np.concatenate([v, np.ones((len(v), 1))], axis=-1)


def test_tensor_fusion_is_a_dense_layer_on_the_outer_product_of_z_and_1():
    # Zadeh et al. 2017: out = Dense(vec([z_1, 1] (x) [z_2, 1] (x) [z_3, 1])), z_m = relu(W_m v_m).
    fusion = TensorFusion(output_dim=OUTPUT_DIM, projection_dim=3, activation="linear")
    data = make_inputs([6, 5, 3], with_tokens=False, presence=every_subset(3))
    call(fusion, data)
    randomize(fusion)
    z = [
        np.maximum(v @ k + b, 0.0) * p[:, None]
        for v, (k, b), p in zip(data["vectors"], map(weights_of, fusion.projection.dense_layers), data["presence"].T)
    ]
    kernel, bias = weights_of(fusion.output_projection)
    expected = _outer([_with_one(zm) for zm in z]) @ kernel + bias
    np.testing.assert_allclose(call(fusion, data), expected, rtol=1e-5, atol=1e-5)


def test_low_rank_fusion_is_a_rank_r_weight_on_the_outer_product():
    # Liu et al. 2018: out = W . vec([v_1, 1] (x) [v_2, 1] (x) [v_3, 1]) + b with the weight tensor
    # W = sum_r w_r W_1^(r) (x) W_2^(r) (x) W_3^(r) (shared output axis), here formed in full.
    fusion = LowRankFusion(output_dim=OUTPUT_DIM, rank=2, activation="linear")
    data = make_inputs([6, 5, 3], with_tokens=False, presence=every_subset(3))
    call(fusion, data)
    randomize(fusion)
    f1, f2, f3 = (keras.ops.convert_to_numpy(f).astype("float64") for f in fusion.factors)
    rank_weights = keras.ops.convert_to_numpy(fusion.rank_weights)
    weight = np.einsum("r,rio,rjo,rko->ijko", rank_weights, f1, f2, f3).reshape(-1, OUTPUT_DIM)
    vectors = [_with_one(v * p[:, None]) for v, p in zip(data["vectors"], data["presence"].T)]
    expected = _outer(vectors) @ weight + keras.ops.convert_to_numpy(fusion.bias)
    np.testing.assert_allclose(call(fusion, data), expected, rtol=1e-5, atol=1e-5)


def _softmax_where(logits, mask):
    """Softmax over the last axis restricted to ``mask``; 0 elsewhere and on rows with no True entry."""
    top = np.max(np.where(mask, logits, -np.inf), axis=-1, keepdims=True)
    weights = np.where(mask, np.exp(logits - np.where(np.isfinite(top), top, 0.0)), 0.0)
    total = weights.sum(axis=-1, keepdims=True)
    return weights / np.where(total > 0, total, 1.0)


def _gat_oracle(fusion, data):
    """GraphFusion's docstring in NumPy: GAT rounds over the present nodes, masked-mean readout."""
    present = data["presence"] > 0.5
    keep = present[:, :, None]
    nodes = np.stack(
        [v @ k + b for v, (k, b) in zip(data["vectors"], map(weights_of, fusion.projection.dense_layers))], axis=1
    ) * keep
    heads, head_dim = fusion.heads, fusion.head_dim
    for r, message in enumerate(fusion.messages):
        kernel = keras.ops.convert_to_numpy(message.kernel).astype("float64")
        a_dst, a_src = (keras.ops.convert_to_numpy(w[r]).astype("float64")
                        for w in (fusion.attention_dst, fusion.attention_src))
        wh = (nodes @ kernel).reshape(len(nodes), -1, heads, head_dim)  # (batch, M, K, d)
        e = np.einsum("bmkd,kd->bkm", wh, a_dst)[..., :, None] + np.einsum("bmkd,kd->bkm", wh, a_src)[..., None, :]
        e = np.where(e > 0, e, 0.2 * e)  # LeakyReLU, slope 0.2
        alpha = _softmax_where(e, present[:, None, None, :])  # (batch, K, i, j): softmax over present j
        m = np.einsum("bkij,bjkd->bikd", alpha, wh)
        elu = lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))  # noqa: E731
        if fusion.merge_heads == "concat":
            m = elu(m).reshape(len(nodes), -1, heads * head_dim)
        else:
            m = elu(m.mean(axis=2))
        nodes = (nodes + m if fusion.residual else m) * keep
    pooled = nodes.sum(axis=1) / np.maximum(present.sum(axis=1, keepdims=True), 1)
    kernel, bias = weights_of(fusion.readout)
    return pooled @ kernel + bias


@pytest.mark.parametrize(
    "settings",
    [{"heads": 2}, {"heads": 3, "merge_heads": "mean", "residual": False}, {"rounds": 1, "heads": 1, "node_dim": 5}],
    ids=["concat-residual", "mean-no-residual", "one-round"],
)
def test_graph_fusion_is_graph_attention_over_the_present_modalities(settings):
    # Velickovic et al. 2018: e_ij = LeakyReLU(a^T [W h_i || W h_j]), alpha = softmax over the
    # present j (self-loop included), h_i' = ELU(sum_j alpha_ij W h_j); then the masked mean readout.
    fusion = GraphFusion(output_dim=OUTPUT_DIM, activation="linear", **settings)
    data = make_inputs([6, 5, 3], with_tokens=False, presence=every_subset(3))
    call(fusion, data)
    randomize(fusion, scale=0.5)
    out = call(fusion, data)
    np.testing.assert_allclose(out, _gat_oracle(fusion, data), rtol=1e-5, atol=1e-5)
    # No modality: no node, the readout of zeros is the readout's bias.
    np.testing.assert_allclose(out[0], weights_of(fusion.readout)[1], rtol=1e-6, atol=1e-6)


def test_graph_fusion_node_attention_rows_sum_to_one_over_present_nodes():
    fusion = GraphFusion(output_dim=OUTPUT_DIM, heads=2)
    data = make_inputs([6, 5, 3], with_tokens=False, presence=every_subset(3))
    call(fusion, data)
    present = data["presence"] > 0.5
    nodes = keras.ops.stack(fusion.projection(data["vectors"], fusion.modality_masks(present)), axis=1)
    alpha = keras.ops.convert_to_numpy(fusion.attention(nodes, present, 0)[0])  # (batch, K, i, j)
    np.testing.assert_array_equal(alpha * ~present[:, None, None, :], 0.0)
    np.testing.assert_allclose(alpha.sum(-1), np.broadcast_to(present.any(-1)[:, None, None], alpha.shape[:3]),
                               atol=1e-6)


def test_hybrid_fusion_mixes_early_and_per_modality_logits_over_present_branches():
    # logits = a_0 C_0 relu(W_e [h_1, h_2, h_3, p]) + sum_m a_m C_m h_m, h_m = relu(W_m v_m),
    # a = softmax(mixture_logits) over the early branch and the present modalities.
    fusion = HybridFusion(output_dim=OUTPUT_DIM, num_classes=NUM_CLASSES)
    data = make_inputs([6, 5, 3], with_tokens=False, presence=every_subset(3))
    call(fusion, data)
    randomize(fusion, scale=0.5)
    presence = data["presence"]
    hidden = [
        np.maximum(v @ k + b, 0.0) * p[:, None]
        for v, (k, b), p in zip(data["vectors"], map(weights_of, fusion.hidden.dense_layers), presence.T)
    ]
    per_modality = [h @ k + b for h, (k, b) in zip(hidden, map(weights_of, fusion.classifiers.dense_layers))]
    kernel, bias = weights_of(fusion.early)
    early = np.maximum(np.concatenate(hidden + [presence], axis=-1) @ kernel + bias, 0.0)
    kernel, bias = weights_of(fusion.early_classifier)
    branches = [early @ kernel + bias] + per_modality
    mixture = keras.ops.convert_to_numpy(fusion.mixture_logits).astype("float64")
    weights = _softmax_where(np.tile(mixture, (len(presence), 1)), np.concatenate([np.ones((len(presence), 1)), presence],
                                                                                  axis=-1) > 0.5)
    expected = sum(weights[:, k : k + 1] * logits for k, logits in enumerate(branches))
    out = call(fusion, data)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[0], branches[0][0], rtol=1e-5, atol=1e-5)  # nothing present: early branch alone
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(fusion.modality_weights(presence > 0.5)), weights, rtol=1e-5, atol=1e-6
    )


# --------------------------------------------------------------------------- renormalization
@pytest.mark.parametrize("cls", [LateFusion, WeightedSumFusion], ids=["late", "weighted_sum"])
def test_modality_weights_renormalize_over_present_modalities(cls):
    kwargs = {"output_dim": OUTPUT_DIM, "num_classes": NUM_CLASSES} if cls is LateFusion else {"output_dim": OUTPUT_DIM}
    fusion = cls(**kwargs)
    data = make_inputs([6, 5, 3], with_tokens=False, batch=2)
    data["presence"][:] = 1.0
    call(fusion, data)
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
def test_fusion_model_fits_toy_problem_in_an_xla_train_step(name):
    # The harness's jit train check, here on a problem the fusion can learn: 3 modalities, the
    # label readable from the first two, rows with every modality missing (row 1) included.
    cls = registry.get("fusion", name)
    dims = SUBSETS["3mod"]
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
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy", jit_compile=True)
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


@pytest.mark.parametrize("cls", [LateFusion, HybridFusion], ids=["late", "hybrid"])
def test_logit_fusion_rejects_single_class(cls):
    with pytest.raises(ValueError, match="received num_classes=1"):
        cls(output_dim=4, num_classes=1)


def test_graph_fusion_rejects_heads_that_do_not_divide_node_dim_and_unknown_settings():
    with pytest.raises(ValueError, match=r"`heads` must divide node_dim=8 .* received heads=3"):
        GraphFusion(output_dim=8, heads=3)
    GraphFusion(output_dim=8, heads=3, merge_heads="mean")  # each head is node_dim wide: any count
    with pytest.raises(ValueError, match=r"`merge_heads` must be one of 'concat', 'mean'; received merge_heads='sum'"):
        GraphFusion(output_dim=8, merge_heads="sum")
    with pytest.raises(ValueError, match="received residual='yes'"):
        GraphFusion(output_dim=8, residual="yes")


@pytest.mark.parametrize(
    "name, setting",
    [("tensor", "projection_dim"), ("low_rank", "rank"), ("self_attention", "num_heads"), ("cross_attention", "num_heads"),
     ("graph", "rounds"), ("graph", "heads"), ("graph", "node_dim")],
)
def test_fusion_rejects_invalid_settings(name, setting):
    with pytest.raises(ValueError, match=f"received {setting}=0"):
        registry.get("fusion", name)(**fusion_kwargs(name, **{setting: 0}))


@pytest.mark.parametrize("name", ["self_attention", "cross_attention"])
def test_attention_fusion_rejects_more_heads_than_dims(name):
    with pytest.raises(ValueError, match=r"`num_heads` must be at most output_dim=4 .* received num_heads=5"):
        registry.get("fusion", name)(output_dim=4, num_heads=5)


def test_fusion_rejects_invalid_dropout():
    with pytest.raises(ValueError, match="received dropout=1.5"):
        registry.get("fusion", "concat")(output_dim=4, dropout=1.5)
