"""Integrated gradients under the JAX backend (``make test`` runs tests/jax with KERAS_BACKEND=jax)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.evaluation.test_attribution import assert_complete, small_model


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="runs in the JAX pass of make test")
def test_jax_shares_sum_to_one_and_attributions_are_complete():
    from mmkeras.evaluation.attribution import integrated_gradients

    model, features = small_model(columns=("text", "image", "audio"))
    result = integrated_gradients(model, features, steps=1024)
    assert result["methods"]["text"] == "embedding_integrated_gradients"
    shares = np.stack([result["shares"][c] for c in ("text", "image", "audio")], axis=-1)
    np.testing.assert_allclose(shares.sum(axis=-1), 1.0, atol=1e-9)
    assert_complete(result)
    assert result["inputs"]["text"].shape == (5, 8)
