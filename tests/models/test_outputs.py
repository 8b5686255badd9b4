"""Tests for ``mmkeras.models.outputs``: the output names the model, training and export share."""

from __future__ import annotations

import keras
import pytest

from mmkeras.models.heads import build_auxiliary_heads, build_softmax_head
from mmkeras.models.outputs import AUX_PREFIX, PROBABILITIES, aux_column, aux_name


def test_heads_name_their_outputs_from_the_shared_constants():
    features = keras.Input((4,))
    main = build_softmax_head(features, 3)
    aux = build_auxiliary_heads([features, features], ["text", "image"], 3)
    model = keras.Model(features, {PROBABILITIES: main, **aux})
    assert sorted(model.output_names) == ["aux_image", "aux_text", "probabilities"]
    assert [aux_column(name) for name in aux] == ["text", "image"]


@pytest.mark.parametrize("column", ["text", "aux", "image_2"])
def test_aux_column_inverts_aux_name(column):
    assert aux_name(column).startswith(AUX_PREFIX)
    assert aux_column(aux_name(column)) == column


def test_aux_column_is_none_for_other_outputs():
    assert aux_column(PROBABILITIES) is None
    assert aux_column("text_present") is None
