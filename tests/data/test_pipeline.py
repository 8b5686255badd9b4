import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from mmkeras.data import diagnosis, pipeline
from mmkeras.data.diagnosis import data_errors
from mmkeras.data.errors import DataError
from tests.data.conftest import make_config, wav_bytes, write

FEATURES = {"image": {"modality": "image", "height": 8, "width": 8},
            "audio": {"modality": "audio", "duration": 0.5, "max_bytes": 20000}}


def test_batches_have_static_shapes_and_int32_labels(digits_dir):
    config = make_config(digits_dir, cache="memory")
    p = pipeline.fit_preprocessor(config)
    dataset = pipeline.build_dataset(config, "train", p, training=True, batch_size=4)
    features, labels = dataset.element_spec
    assert features["image"].shape == (4, 28, 28, 1) and features["audio"].shape == (4, 61, 40)
    assert features["text"].shape == (4, 16) and features["text_present"].shape == (4,)
    assert labels.shape == (4,) and labels.dtype == tf.int32
    assert len(list(dataset)) == 1  # 6 rows, drop_remainder
    assert len(list(pipeline.build_dataset(config, "train", p, training=False, batch_size=4,
                                           drop_remainder=False))) == 2
    assert pipeline.num_examples(config, "train") == 6


def test_eval_order_is_the_manifest_and_training_is_shuffled_and_seeded(digits_dir, tmp_path):
    config = make_config(digits_dir, cache=str(tmp_path / "cache" / "decoded"))
    p = pipeline.fit_preprocessor(config)
    evaluation = np.concatenate([l.numpy() for _, l in pipeline.build_dataset(
        config, "train", p, training=False, batch_size=2)])
    assert evaluation.tolist() == [0, 1, 0, 1, 0, 1]
    assert tf.io.gfile.glob(str(tmp_path / "cache" / "decoded.train*"))
    runs = [[f["text"].numpy().tolist() for f, _ in pipeline.build_dataset(
        config, "train", p, training=True, batch_size=1)] for _ in range(2)]
    assert runs[0] == runs[1]


def _bad_rows_dir(folder):
    write(folder / "images" / "text.png", b"hello, not an image")
    write(folder / "images" / "truncated.png", (folder / "images" / "0.png").read_bytes()[:40])
    write(folder / "audio" / "fake.wav", b"RIFF\x00\x00\x00\x00WAVEjunk")
    write(folder / "audio" / "big.wav", wav_bytes([0.0] * 12000, 8000))
    write(folder / "images" / "empty.png", b"")
    return folder


BAD_ROWS = [  # (row, the message it must produce)
    ("images/nope.png,audio/1.wav,cat", "train.csv row 2, column image: 'images/nope.png' does not exist"),
    ("images/text.png,audio/1.wav,cat", "train.csv row 3, column image: 'images/text.png' is not a PNG/JPEG/GIF/BMP/WebP image"),
    ("images/truncated.png,,cat", "train.csv row 4, column image: 'images/truncated.png' is a truncated or corrupt image"),
    ("images/empty.png,,cat", "train.csv row 5, column image: 'images/empty.png' is an empty file"),
    ("images/1.png,audio/fake.wav,dog",
     "train.csv row 6, column audio: 'audio/fake.wav' is truncated (a chunk header is cut off)"),
    ("images/1.png,audio/big.wav,dog", "train.csv row 7, column audio: 'audio/big.wav' is 24044 bytes, above the limit max_bytes=20000"),
    ("images/1.png,audio/1.wav,bird", "train.csv row 8, column label: label 'bird' is not one of the 2 classes"),
]


def _fit_on_good_rows(folder):
    (folder / "good.csv").write_text("image,audio,label\nimages/0.png,audio/0.wav,cat\nimages/1.png,,dog\n")
    return pipeline.fit_preprocessor(make_config(folder, train="good.csv", features=FEATURES))


def test_each_bad_input_is_reported_with_row_column_and_file_and_skipped(digits_dir, capfd):
    _bad_rows_dir(digits_dir)
    p = _fit_on_good_rows(digits_dir)
    rows = [row for row, _ in BAD_ROWS]
    (digits_dir / "train.csv").write_text(
        "image,audio,label\nimages/0.png,audio/0.wav,cat\n" + "\n".join(rows) + "\nimages/2.png,,dog\n")
    config = make_config(digits_dir, features=FEATURES, on_error="skip")
    labels = [int(l[0]) for _, l in pipeline.build_dataset(config, "train", p, training=False, batch_size=1)]
    assert labels == [0, 1]
    err = capfd.readouterr().err
    for _, message in BAD_ROWS:
        assert f"mmkeras: skipped {message}" in err
    assert "(7 rows dropped so far)" in err


@pytest.mark.parametrize("row,message", [BAD_ROWS[2], BAD_ROWS[6]], ids=["truncated_png", "unknown_label"])
def test_on_error_raise_stops_with_a_clean_message(digits_dir, row, message):
    _bad_rows_dir(digits_dir)
    p = _fit_on_good_rows(digits_dir)
    number = int(message.split(",")[0].split()[-1])
    filler = "images/0.png,,cat\n" * (number - 1)
    (digits_dir / "train.csv").write_text(f"image,audio,label\n{filler}{row}\n")
    config = make_config(digits_dir, features=FEATURES)
    with pytest.raises(DataError) as raised:
        with data_errors(config, p, ["train"]):
            list(pipeline.build_dataset(config, "train", p, training=True, batch_size=1))
    assert str(raised.value).startswith(message)


def test_bad_last_row_is_named_when_raising_and_counted_when_skipping(digits_dir, capfd):
    _bad_rows_dir(digits_dir)
    p = _fit_on_good_rows(digits_dir)
    (digits_dir / "train.csv").write_text("image,audio,label\nimages/0.png,,cat\nimages/1.png,audio/fake.wav,dog\n")
    message = "train.csv row 2, column audio: 'audio/fake.wav' is truncated (a chunk header is cut off)"
    assert diagnosis.first_bad_row([str(digits_dir / "train.csv")], p).startswith(message)
    with pytest.raises(DataError, match=re.escape(message)):
        with data_errors(make_config(digits_dir, features=FEATURES), p):
            list(pipeline.build_dataset(make_config(digits_dir, features=FEATURES), "train", p,
                                        training=False, batch_size=1))
    config = make_config(digits_dir, features=FEATURES, on_error="skip")
    assert len(list(pipeline.build_dataset(config, "train", p, training=False, batch_size=1))) == 1
    assert f"mmkeras: skipped {message} (1 row dropped so far)" in capfd.readouterr().err


def test_data_errors_leaves_an_error_no_row_explains_unchanged(digits_dir):
    config = make_config(digits_dir, features=FEATURES)
    p = _fit_on_good_rows(digits_dir)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a data problem"):
        with data_errors(config, p):
            tf.debugging.Assert(False, ["not a data problem"])


def test_cached_evaluation_features_equal_uncached_and_training_crops_come_from_the_cache(digits_dir):
    uncached = make_config(digits_dir)
    p = pipeline.fit_preprocessor(uncached)
    cached = make_config(digits_dir, cache="memory")
    dataset = pipeline.build_dataset(cached, "train", p, training=False, batch_size=4, drop_remainder=False)
    epochs = [list(dataset) for _ in range(2)]
    reference = list(pipeline.build_dataset(uncached, "train", p, training=False, batch_size=4, drop_remainder=False))
    for epoch in epochs:
        for (features, labels), (expected, expected_labels) in zip(epoch, reference):
            assert labels.numpy().tolist() == expected_labels.numpy().tolist()
            for key in expected:
                np.testing.assert_array_equal(features[key].numpy(), expected[key].numpy())
    training = pipeline.build_dataset(cached, "train", p, training=True, batch_size=2)
    assert training.element_spec[0]["audio"].shape == (2, 61, 40)
    assert len(list(training)) == len(list(training)) == 3


def test_jsonl_manifest_with_int_labels(digits_dir):
    import json
    lines = [json.dumps({"text": f"n {i}", "image": f"images/{i}.png", "audio": None, "label": [2, 10][i % 2]})
             for i in range(4)]
    (digits_dir / "train.jsonl").write_text("\n".join(lines))
    config = make_config(digits_dir, train="train.jsonl")
    p = pipeline.fit_preprocessor(config)
    assert p.class_names == ["2", "10"]
    features, labels = next(iter(pipeline.build_dataset(config, "train", p, training=False, batch_size=4)))
    assert labels.numpy().tolist() == [0, 1, 0, 1] and features["audio_present"].numpy().tolist() == [0] * 4


def test_same_tensors_under_the_jax_backend(digits_dir):
    p = pipeline.fit_preprocessor(make_config(digits_dir))
    p.save(str(digits_dir / "pre"))
    script = (
        "import sys, numpy as np, tensorflow as tf, keras\n"
        "assert keras.backend.backend() == 'jax'\n"
        "from mmkeras.data.preprocessor import Preprocessor\n"
        "p = Preprocessor.load(sys.argv[1] + '/pre')\n"
        "raw = {c: tf.constant(open(f'{sys.argv[1]}/{d}/1.{e}', 'rb').read()) for c, d, e in"
        " [('image', 'images', 'png'), ('audio', 'audio', 'wav')]}\n"
        "raw['text'] = tf.constant('a dog number 1')\n"
        "np.savez(sys.argv[1] + '/jax.npz', **{k: v.numpy() for k, v in p.preprocess(raw).items()})\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", script, str(digits_dir)], check=True, env=env)
    raw = {"image": tf.constant((digits_dir / "images" / "1.png").read_bytes()),
           "audio": tf.constant((digits_dir / "audio" / "1.wav").read_bytes()), "text": tf.constant("a dog number 1")}
    jax_run = np.load(digits_dir / "jax.npz")
    for key, value in p.preprocess(raw).items():
        np.testing.assert_array_equal(jax_run[key], value.numpy())


def test_skip_reports_each_dropped_row_once_across_adapt_and_every_epoch(digits_dir, capfd):
    _bad_rows_dir(digits_dir)
    (digits_dir / "train.csv").write_text(
        "image,audio,label\nimages/0.png,audio/0.wav,cat\nimages/1.png,audio/fake.wav,dog\n"
        "images/text.png,audio/2.wav,cat\nimages/3.png,audio/3.wav,dog\n")
    config = make_config(digits_dir, features=FEATURES, on_error="skip", cache="memory")
    p = pipeline.fit_preprocessor(config)  # the audio statistics pass meets the bad WAV first
    dataset = pipeline.build_dataset(config, "train", p, training=True, batch_size=1, repeat=True)
    assert len(list(dataset.take(4))) == 4  # two epochs of the two good rows
    validation = pipeline.build_dataset(config, "train", p, training=False, batch_size=1)
    assert len(list(validation)) == 2
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("mmkeras: skipped")]
    assert lines == [
        "mmkeras: skipped train.csv row 2, column audio: 'audio/fake.wav' is truncated (a chunk header is cut off)"
        " (1 row dropped so far)",
        "mmkeras: skipped train.csv row 3, column image: 'images/text.png' is not a PNG/JPEG/GIF/BMP/WebP image"
        " (2 rows dropped so far)",
    ]
