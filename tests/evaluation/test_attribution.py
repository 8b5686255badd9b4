"""Integrated gradients per modality, attention weights and ``mmkeras explain``.

Models are small and built here: an untrained one for the exact properties (completeness, shares,
per-token sums), and one run trained on data where only the image carries the label.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass

import numpy as np
import pytest

CLASSES = ("top_left", "top_right", "bottom_left", "bottom_right")
WORDS = ("red", "green", "blue", "cat", "dog", "sun", "moon", "tree", "rock", "fish")
ROWS = {"train": 96, "validation": 24, "test": 24}
CONFIG = """
data:
  train: train.csv
  validation: validation.csv
  test: test.csv
  label: label
  cache: memory
  features:
    text: {modality: text, max_tokens: 20, sequence_length: 6}
    image: {modality: image, height: 16, width: 16, channels: 1}
model:
  encoders:
    text: {type: embedding, embedding_dim: 8}
    image: {type: conv2d}
  fusion: {type: concat, output_dim: 16}
  head: {type: softmax}
train:
  epochs: 4
  batch_size: 16
  strategy: cpu
  learning_rate: 0.01
  verbose: 0
"""


def image_only_data(folder):
    """Manifests where the label is the bright quadrant of the image and the text is random words."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    (folder / "images").mkdir()
    for split, count in ROWS.items():
        with open(folder / f"{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "image", "label"])
            for row in range(count):
                label = row % len(CLASSES)
                pixels = rng.uniform(0, 60, (16, 16, 1))
                top, left = divmod(label, 2)
                pixels[top * 8:(top + 1) * 8, left * 8:(left + 1) * 8] += 180
                name = f"images/{split}_{row}.png"
                tf.io.write_file(str(folder / name), tf.io.encode_png(pixels.astype("uint8")))
                writer.writerow([" ".join(rng.choice(WORDS, 5)), name, CLASSES[label]])
    (folder / "config.yaml").write_text(CONFIG)
    return folder


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from mmkeras.config import load_config
    from mmkeras.training.trainer import train

    folder = image_only_data(tmp_path_factory.mktemp("image_only"))
    return train(load_config(folder / "config.yaml"), run_dir=folder / "run")


@dataclass
class FakePreprocessor:
    input_specs: list
    num_classes: int = 3
    class_names: tuple = ("a", "b", "c")


def small_model(fusion="concat", columns=("text", "image")):
    """An untrained text + image (+ audio features) model from the factory, and a batch for it."""
    from mmkeras.config import ModelConfig
    from mmkeras.data.schema import FeatureSpec
    from mmkeras.models.factory import build_model

    specs = {"text": FeatureSpec("text", "text", (8,), "int32", vocab_size=20),
             "image": FeatureSpec("image", "image", (8, 8, 1), "float32"),
             "audio": FeatureSpec("audio", "audio", (6, 4), "float32")}
    model = build_model(ModelConfig(fusion={"type": fusion, "output_dim": 8}),
                        FakePreprocessor([specs[c] for c in columns]))
    rng = np.random.default_rng(1)
    ids = rng.integers(2, 20, (5, 8)).astype("int32")
    ids[:, 6:] = 0  # padding
    batch = {"text": ids, "image": rng.random((5, 8, 8, 1)).astype("float32"),
             "audio": rng.normal(size=(5, 6, 4)).astype("float32")}
    features = {}
    for column in columns:
        features[column] = batch[column]
        features[f"{column}_present"] = np.ones(5, "float32")
    features[f"{columns[-1]}_present"][4] = 0.0  # one example misses its last column
    return model, features


def assert_complete(result, tolerance=0.01):
    change = result["f_x"] - result["f_baseline"]
    total = np.sum([result["attributions"][c] for c in result["attributions"]], axis=0)
    moved = np.abs(change) > 1e-3  # an example whose only modality is missing has nothing to explain
    assert moved.sum() >= 4, change
    np.testing.assert_allclose(result["completeness_gap"], np.abs(total - change), atol=1e-7)
    gap = result["completeness_gap"]
    assert np.all(gap[moved] <= tolerance * np.abs(change[moved])), (gap, change)
    assert np.all(gap[~moved] <= 1e-6), gap


def test_shares_sum_to_one_and_attributions_are_complete():
    from mmkeras.evaluation.attribution import integrated_gradients

    model, features = small_model(columns=("text", "image", "audio"))
    result = integrated_gradients(model, features, steps=256)
    assert result["methods"] == {"text": "embedding_integrated_gradients", "image": "integrated_gradients",
                                 "audio": "integrated_gradients"}
    shares = np.stack([result["shares"][c] for c in ("text", "image", "audio")], axis=-1)
    np.testing.assert_allclose(shares.sum(axis=-1), 1.0, atol=1e-9)
    assert shares.min() >= 0.0
    assert_complete(result)
    # f(x) is the model's probability of its predicted class; f(x') the all-missing model's.
    probabilities = model.predict(features, verbose=0)
    np.testing.assert_allclose(result["f_x"], probabilities.max(axis=-1), rtol=1e-4)
    missing = {k: np.zeros_like(v) for k, v in features.items()}
    np.testing.assert_allclose(result["f_baseline"], model.predict(missing, verbose=0)[
        np.arange(5), result["targets"]], rtol=1e-4)
    # Example 4 misses its audio: no path moves it, so it gets exactly nothing.
    assert result["attributions"]["audio"][4] == 0.0 and result["shares"]["audio"][4] == 0.0
    assert result["inputs"]["image"].shape == (5, 8, 8, 1)


def test_few_steps_leave_a_larger_gap_than_many():
    from mmkeras.evaluation.attribution import integrated_gradients

    model, features = small_model(columns=("image", "audio"))
    coarse = integrated_gradients(model, features, steps=1)["completeness_gap"].sum()
    fine = integrated_gradients(model, features, steps=64)["completeness_gap"].sum()
    assert fine < coarse


def test_token_attributions_sum_to_the_text_attribution_and_skip_padding():
    from mmkeras.evaluation.attribution import integrated_gradients

    model, features = small_model(columns=("text",))
    result = integrated_gradients(model, features, steps=256)
    tokens = result["inputs"]["text"]
    assert tokens.shape == (5, 8)
    # Mean pooling over real tokens: padding (ids 0, positions 6 and 7) gets nothing.
    assert np.all(tokens[:, 6:] == 0.0) and np.all(np.abs(tokens[:4, :6]).max(axis=1) > 0)
    np.testing.assert_allclose(tokens.sum(axis=1) + result["presence"]["text"], result["attributions"]["text"])
    assert_complete(result)
    # The Embedding layer's call is restored afterwards: the model computes what it did.
    np.testing.assert_allclose(model.predict(features, verbose=0).max(axis=-1), result["f_x"], rtol=1e-5)


def test_ids_without_an_embedding_layer_are_attributed_through_the_presence_flag():
    import keras

    from mmkeras.evaluation.attribution import integrated_gradients

    ids = keras.Input((4,), dtype="int32", name="text")
    flag = keras.Input((), name="text_present")
    vector = keras.layers.Dense(3)(keras.ops.cast(ids, "float32") / 10.0)
    gate = keras.ops.expand_dims(keras.ops.cast(flag > 0.5, "float32"), -1)
    model = keras.Model({"text": ids, "text_present": flag}, keras.layers.Softmax()(vector * gate))
    features = {"text": np.array([[3, 5, 9, 0], [7, 1, 2, 2]], "int32"), "text_present": np.ones(2, "float32")}
    result = integrated_gradients(model, features, steps=8)
    assert result["methods"] == {"text": "presence_flag"} and result["inputs"]["text"] is None
    # The flag's switch explains the whole change from missing to present, exactly.
    np.testing.assert_allclose(result["attributions"]["text"], result["f_x"] - result["f_baseline"], atol=1e-6)
    assert np.all(np.abs(result["attributions"]["text"]) > 1e-3)


@pytest.mark.parametrize("fusion", ["self_attention", "cross_attention"])
def test_attention_weights_have_one_row_per_example_summing_to_one(fusion):
    from mmkeras.evaluation.attribution import attention_weights

    model, features = small_model(fusion, columns=("text", "image", "audio"))
    weights = attention_weights(model, features, ["text", "image", "audio"])
    assert weights.shape == (5, 3)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    assert weights[4, 2] == 0.0 and weights[:4].min() > 0.0  # a missing modality receives none
    assert np.ptp(weights[:4], axis=1).max() > 1e-4  # not just the equal fallback


def test_attention_weights_are_none_without_an_attention_fusion():
    from mmkeras.evaluation.attribution import attention_weights

    model, features = small_model("gated")
    assert attention_weights(model, features) is None


def test_the_only_informative_modality_gets_the_largest_dataset_share(trained_run):
    from mmkeras.config import load_config
    from mmkeras.data.pipeline import build_dataset
    from mmkeras.evaluation.attribution import dataset_attribution
    from mmkeras.evaluation.predictions import load_run

    loaded = load_run(trained_run)
    dataset = build_dataset(load_config(trained_run.config_file), "test", loaded.preprocessor, training=False,
                            batch_size=16, drop_remainder=False)
    report = dataset_attribution(loaded.model, dataset, loaded.columns, max_examples=20, steps=128)
    assert report["examples"] == 20 and report["method"] == "integrated_gradients" and report["baseline"] == "missing"
    assert sum(report["shares"].values()) == pytest.approx(1.0)
    assert report["shares"]["image"] > 0.7 > report["shares"]["text"], report
    assert report["completeness_gap"] < 0.05
    assert "attention" not in report  # a concat fusion has none


def test_explain_writes_the_figure_and_the_json(trained_run, tmp_path):
    from mmkeras.evaluation.explain import explain_example

    out = tmp_path / "figures" / "explain.png"
    result = explain_example(trained_run.run_dir, split="test", index=5, out=out, steps=256)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    on_disk = json.loads(out.with_suffix(".json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    for key in ("run_dir", "split", "index", "row", "label", "prediction", "probabilities", "top_classes",
                "shares", "tokens", "completeness_gap", "methods"):
        assert key in on_disk, key
    assert on_disk["label"] == CLASSES[5 % 4] and on_disk["row"]["number"] == 6
    assert on_disk["row"]["cells"]["image"] == "images/test_5.png"
    assert sum(on_disk["shares"].values()) == pytest.approx(1.0)
    assert sum(on_disk["probabilities"].values()) == pytest.approx(1.0)
    assert on_disk["prediction"]["class"] == on_disk["top_classes"][0][0]
    text = [token for token, _ in on_disk["tokens"]["text"]]
    assert len(text) == 5 and set(text) <= set(WORDS) | {"[OOV]"}  # five words, no padding
    assert sum(a for _, a in on_disk["tokens"]["text"]) + on_disk["presence_attributions"]["text"] == pytest.approx(
        on_disk["attributions"]["text"], abs=1e-9)
    assert on_disk["completeness_gap"] <= 0.01 * abs(on_disk["f_x"] - on_disk["f_baseline"]) + 1e-6


def test_cli_explain_prints_the_shares_and_refuses_an_index_outside_the_split(trained_run, tmp_path, capsys):
    from mmkeras.cli import main

    out = tmp_path / "cli.png"
    assert main(["explain", "--run-dir", str(trained_run.run_dir), "--index", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "image: share" in printed and str(out.with_suffix(".json")) in printed
    assert out.exists() and not (trained_run.run_dir / "report.json").exists()  # no report needed
    assert main(["explain", "--run-dir", str(trained_run.run_dir), "--index", "500", "--out", str(out)]) == 2
    assert "mmkeras explain: error: --index 500 is outside the test split (24 examples: 0-23)" in capsys.readouterr().err
    assert main(["explain", "--run-dir", str(trained_run.run_dir), "--index", "-1", "--out", str(out)]) == 2
    assert "--index must be 0 or more" in capsys.readouterr().err
    assert main(["explain", "--run-dir", str(tmp_path), "--index", "0", "--out", str(out)]) == 2
    assert "is not an mmkeras run" in capsys.readouterr().err


def test_explain_refuses_a_failed_run_and_a_missing_split(trained_run, tmp_path):
    import shutil

    import yaml

    from mmkeras.evaluation.explain import explain_example
    from mmkeras.training.run import Run, RunFailedError

    copy = Run(shutil.copytree(trained_run.run_dir, tmp_path / "run"))
    config = yaml.safe_load(copy.config_file.read_text())
    config["data"]["test"] = None
    copy.config_file.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="has no data.test manifest"):
        explain_example(copy.run_dir, split="test", out=tmp_path / "e.png")
    copy.update_status(status="failed", failure={"reason": "the loss became nan"})
    with pytest.raises(RunFailedError, match="failed run"):
        explain_example(copy.run_dir, out=tmp_path / "e.png")
