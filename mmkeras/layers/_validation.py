"""Argument checks and masking helpers shared by the layers in this package (not public API)."""

from __future__ import annotations

import keras
from keras import ops


def check_positive_int(layer: str, name: str, value) -> int:
    """``value`` as an int > 0, or a ValueError that names the layer, argument and value."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{layer}: `{name}` must be a positive integer; received {name}={value!r}")
    return value


def check_rate(layer: str, name: str, value) -> float:
    """``value`` as a float in [0, 1), or a ValueError naming what was received."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{layer}: `{name}` must be a float in [0, 1); received {name}={value!r}")
    return float(value)


def check_choice(layer: str, name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(
            f"{layer}: `{name}` must be one of {', '.join(map(repr, choices))}; received {name}={value!r}"
        )
    return value


def large_negative(dtype) -> float:
    """A finite logit that softmax turns into an exact 0 without overflowing ``dtype``."""
    return -3.0e4 if keras.backend.standardize_dtype(dtype) == "float16" else -1.0e9


def masked_softmax(logits, mask, axis=-1):
    """Softmax of ``logits`` over the positions where ``mask`` is True; exactly 0 elsewhere.

    A slice with no True position gives all zeros (never NaN, also in the gradient), because
    masked logits are replaced by a finite constant before the softmax and the result is then
    selected with ``where`` rather than multiplied.
    """
    if logits.shape[axis] == 1:
        # A softmax over one entry is 1 wherever the mask allows it (and Keras warns about it).
        return ops.where(mask, ops.ones_like(logits), ops.zeros_like(logits))
    filler = ops.full_like(logits, large_negative(logits.dtype))
    weights = ops.softmax(ops.where(mask, logits, filler), axis=axis)
    return ops.where(mask, weights, ops.zeros_like(weights))


def masked_select(mask, values):
    """``values`` where ``mask`` is True, exact zeros elsewhere (never reads the masked values)."""
    return ops.where(mask, values, ops.zeros_like(values))


def check_attention(layer: str, output_dim: int, num_heads, intermediate_dim):
    """``(num_heads, intermediate_dim)`` of an attention fusion, checked against its ``output_dim``.

    Each head is ``output_dim // num_heads`` wide, so there can be at most ``output_dim`` heads.
    ``intermediate_dim`` may be None (the fusion's default width).
    """
    num_heads = check_positive_int(layer, "num_heads", num_heads)
    if num_heads > output_dim:
        raise ValueError(
            f"{layer}: `num_heads` must be at most output_dim={output_dim} (each head is "
            f"output_dim // num_heads wide); received num_heads={num_heads}"
        )
    if intermediate_dim is not None:
        check_positive_int(layer, "intermediate_dim", intermediate_dim)
    return num_heads, intermediate_dim
