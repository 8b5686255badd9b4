import numpy as np
import pytest
import tensorflow as tf

from mmkeras.config import AudioFeature, DataConfig, ImageFeature, TextFeature
from mmkeras.data import pipeline
from mmkeras.data.preprocessor import Preprocessor
from tests.data.conftest import make_config, png_bytes, sine, wav_bytes


def _raw(folder, i):
    return {"text": tf.constant(f"a cat number {i}"),
            "image": tf.constant((folder / "images" / f"{i}.png").read_bytes()),
            "audio": tf.constant((folder / "audio" / f"{i}.wav").read_bytes())}


def test_adapt_gives_classes_vocabulary_specs_and_audio_statistics(digits_dir):
    p = pipeline.fit_preprocessor(make_config(digits_dir))
    assert p.class_names == ["cat", "dog"] and p.num_classes == 2 and p.label == "label"
    assert [(s.column, s.shape, s.dtype) for s in p.input_specs] == [
        ("text", (16,), "int32"), ("image", (28, 28, 1), "float32"), ("audio", (61, 40), "float32")]
    assert p.input_specs[0].vocab_size == 2 + len({"a", "cat", "dog", "number", "0", "1", "2", "3", "4", "5"})
    # normalized with train statistics: train features have mean ~0, std ~1 per bin over voiced frames
    features = p.preprocess(_raw(digits_dir, 1))
    assert features["audio"].shape == (61, 40) and abs(float(tf.reduce_mean(features["audio"]))) < 2


def test_missing_cells_give_zeros_and_presence_zero(digits_dir):
    p = pipeline.fit_preprocessor(make_config(digits_dir))
    out = p.preprocess({"text": tf.constant(""), "image": tf.constant(b""), "audio": tf.constant(b"")})
    for column, shape in [("text", (16,)), ("image", (28, 28, 1)), ("audio", (61, 40))]:
        assert out[column].shape == shape and not np.any(out[column].numpy())
        assert float(out[column + "_present"]) == 0.0
    present = p.preprocess(_raw(digits_dir, 0))
    assert all(float(present[c + "_present"]) == 1.0 for c in ("text", "image", "audio"))


def test_numeric_labels_sort_numerically_and_unknown_is_minus_one():
    p = Preprocessor.from_data_config(DataConfig(features={"t": TextFeature()}))
    p.adapt_from_rows([{"t": "x", "label": v} for v in ["10", "9", "2", "9"]])
    assert p.class_names == ["2", "9", "10"]
    assert p.encode_label(tf.constant(["10", "2", "7"])).numpy().tolist() == [2, 0, -1]
    assert p.encode_label(tf.constant(9)).numpy() == 1


def test_save_load_gives_identical_tensors(digits_dir, tmp_path):
    p = pipeline.fit_preprocessor(make_config(digits_dir))
    p.save(str(tmp_path / "pre"))
    q = Preprocessor.load(str(tmp_path / "pre"))
    assert q.class_names == p.class_names and q.input_specs == p.input_specs
    a, b = p.preprocess(_raw(digits_dir, 2)), q.preprocess(_raw(digits_dir, 2))
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


def test_preprocess_batch_in_a_saved_model(digits_dir, tmp_path):
    p = pipeline.fit_preprocessor(make_config(digits_dir))
    raw = {c: tf.stack([_raw(digits_dir, i)[c] for i in (0, 1)] + [tf.constant(b"")]) for c in p.features}
    module = tf.Module()
    module.preprocessor = p.module
    module.serve = tf.function(p.preprocess_batch, input_signature=[
        {c: tf.TensorSpec([None], tf.string) for c in p.features}])
    tf.saved_model.save(module, str(tmp_path / "sm"))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    expected = p.preprocess_batch(raw)
    got = loaded.serve(raw)
    assert got["audio"].shape == (3, 61, 40) and got["image_present"].numpy().tolist() == [1, 1, 0]
    for key in expected:
        np.testing.assert_allclose(got[key].numpy(), expected[key].numpy(), atol=1e-6)


def test_training_mode_augments_after_decode_only():
    p = Preprocessor({"image": ImageFeature(height=8, width=8, augment={"flip": "horizontal", "contrast": 0.5}),
                      "audio": AudioFeature(normalize=False, spec_augment={"time_masks": 2, "time_mask_width": 10})})
    p.adapt_from_rows([{"label": "a"}])
    ramp = np.tile(np.arange(8, dtype=np.uint8)[None, :, None] * 30, (8, 1, 1))
    raw = {"image": tf.constant(png_bytes(ramp)), "audio": tf.constant(wav_bytes(sine(500, 8000, 1.0), 8000))}
    plain = p.preprocess(raw)
    trained = [p.preprocess(raw, training=True, seed=tf.constant([s, 1], tf.int64)) for s in range(4)]
    assert any(not np.allclose(t["image"].numpy(), plain["image"].numpy()) for t in trained)
    assert any((t["audio"].numpy() == 0).all(axis=1).any() for t in trained)
    np.testing.assert_array_equal(p.preprocess(raw)["image"].numpy(), plain["image"].numpy())


def _per_example_reference(p, raw, training=False, seed=None):
    """What ``preprocess`` computed before the audio front end was batched: one example at a time."""
    from mmkeras.data.columns import audio_ops as audio, image_ops as image

    out = p.decode(raw)
    for index, (column, feature) in enumerate(p.features.items()):
        present = out[column + "_present"]
        column_seed = tf.random.experimental.stateless_fold_in(seed, index) if training else None
        if isinstance(feature, ImageFeature) and training and feature.augment:
            out[column] = image.augment(out[column], feature.augment, column_seed) * present
        elif isinstance(feature, AudioFeature):
            values = audio.frontend(audio.fix_length(out[column], feature, training, column_seed), feature)
            if p.columns[column].mean is not None:
                values = (values - p.columns[column].mean) / p.columns[column].std
            if training and feature.spec_augment:
                values = audio.spec_augment(values, feature.spec_augment,
                                            tf.random.experimental.stateless_fold_in(column_seed, 1))
            out[column] = values * present
    return out


@pytest.mark.parametrize("frontend", ["logmel", "mfcc", "stft", "waveform"])
def test_batched_front_end_gives_the_per_example_numbers(digits_dir, frontend):
    spec = {"time_masks": 2, "time_mask_width": 8, "freq_masks": 1, "freq_mask_width": 4}
    features = {"text": {"modality": "text", "sequence_length": 4},
                "image": {"modality": "image", "height": 8, "width": 8, "augment": {"flip": "horizontal"}},
                "audio": {"modality": "audio", "sample_rate": 8000, "duration": 0.75, "frontend": frontend,
                          "spec_augment": spec if frontend != "waveform" else {}}}
    p = pipeline.fit_preprocessor(make_config(digits_dir, features=features))
    assert p.columns["audio"].mean is not None  # normalized with train statistics
    rows = [_raw(digits_dir, i) for i in range(4)] + [{"text": tf.constant(""), "image": tf.constant(b""),
                                                       "audio": tf.constant(b"")}]
    batch = p.preprocess_batch({c: tf.stack([row[c] for row in rows]) for c in p.features})
    for i, row in enumerate(rows):
        expected = _per_example_reference(p, row)
        one = p.preprocess(row)
        for key, value in expected.items():
            assert np.abs(one[key].numpy() - value.numpy()).max(initial=0) <= 1e-6, key
            assert np.abs(batch[key][i].numpy() - value.numpy()).max(initial=0) <= 1e-6, key
        seed = tf.constant([i, 7], tf.int64)
        expected = _per_example_reference(p, row, training=True, seed=seed)
        trained = p.preprocess(row, training=True, seed=seed)
        for key, value in expected.items():
            assert np.abs(trained[key].numpy() - value.numpy()).max(initial=0) <= 1e-6, key
