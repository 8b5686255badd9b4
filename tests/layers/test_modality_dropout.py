import numpy as np
import pytest

from mmkeras.layers.modality_dropout import ModalityDropout
from tests.harness import run_layer_test

PRESENCE = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 0], [0, 0, 0]] * 64, "float32")


def test_modality_dropout_layer_contract(tmp_path):
    run_layer_test(
        ModalityDropout, {"rate": 0.3, "seed": 1}, {"presence": PRESENCE[:4]}, tmp_path,
        expected_output_shape=(4, 3), mixed_precision_output_dtype="compute",
        # No weights; the one non-trainable variable is the seed generator's state.
        expected_num_trainable_variables=0, expected_num_non_trainable_variables=1, expected_num_params=0,
    )


def test_modality_dropout_never_hides_every_modality_and_never_adds_one():
    out = np.asarray(ModalityDropout(rate=0.6, seed=0)(PRESENCE, training=True))
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert (out <= PRESENCE).all()  # a missing modality stays missing
    has_any = PRESENCE.sum(1) > 0
    assert (out[has_any].sum(1) >= 1).all()
    np.testing.assert_array_equal(out[~has_any], 0.0)
    np.testing.assert_array_equal(out[2::4], PRESENCE[2::4])  # a lone modality is never dropped
    dropped = 1 - out[0::4].mean()
    assert 0.35 < dropped < 0.65  # ~rate, less the rows that would have lost everything


def test_modality_dropout_is_identity_at_inference():
    np.testing.assert_array_equal(np.asarray(ModalityDropout(rate=0.9)(PRESENCE)), PRESENCE)


@pytest.mark.parametrize("rate", [-0.1, 1.0, "0.5", True])
def test_modality_dropout_rejects_bad_rate(rate):
    with pytest.raises(ValueError, match=r"`rate` must be a float in \[0, 1\); received rate="):
        ModalityDropout(rate=rate)
