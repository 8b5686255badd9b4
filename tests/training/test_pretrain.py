"""``mmkeras pretrain``, ``mmkeras retrieve`` and ``model.init_from`` on a synthetic paired set whose
test split holds combinations never seen in training (tests/paired_data.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmkeras import cli
from mmkeras.errors import ConfigError
from mmkeras.training.pretrain import pretrain
from mmkeras.training.pretrained import REPORT_FILE, towers_path
from tests.paired_data import paired_config, paired_grid

DIRECTIONS = ("text->image", "image->text")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return paired_grid(tmp_path_factory.mktemp("paired"))


@pytest.fixture(scope="module")
def pretrained(folder):
    return pretrain(paired_config(folder), folder / "pretrain")


def test_pretraining_lowers_the_loss_and_raises_held_out_recall(pretrained):
    report = json.loads((pretrained.run_dir / REPORT_FILE).read_text())
    assert report["loss"] == "siglip" and report["pairs"] == ["text-image"] and report["split"] == "test"
    assert report["loss_last_epoch"] < 0.5 * report["loss_first_epoch"]
    for direction in DIRECTIONS:
        after, before = report[direction], report["retrieval_at_init"][direction]
        assert after["queries"] == before["queries"] == 48
        assert set(after) == {"recall@1", "recall@5", "recall@10", "queries"}
        assert after["recall@1"] <= after["recall@5"] <= after["recall@10"] <= 1.0
        assert before["recall@5"] < 0.3 and after["recall@5"] > before["recall@5"] + 0.5, (before, after)
    assert report["temperatures"]["text-image"]["scale"] > 0
    status = pretrained.status()
    assert (status["kind"], status["status"], status["epochs_done"]) == ("pretrain", "complete", 12)
    assert towers_path(pretrained.run_dir).exists() and (pretrained.run_dir / "preprocessor").is_dir()


def test_a_complete_pretraining_run_is_left_as_it_is(pretrained, folder, capsys):
    before = towers_path(pretrained.run_dir).stat().st_mtime_ns
    pretrain(paired_config(folder), pretrained.run_dir)
    assert "already holds a complete pretraining run" in capsys.readouterr().out
    assert towers_path(pretrained.run_dir).stat().st_mtime_ns == before


def test_retrieve_ranks_the_paired_image_first_for_a_held_out_text(pretrained, folder, capsys):
    text, image = (folder / "test.csv").read_text().splitlines()[3].split(",")[:2]
    code = cli.main(["retrieve", "--run-dir", str(pretrained.run_dir), "--query-text", text, "--target", "image",
                     "--top-k", "3"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[0].split()[2] == image and lines[0].endswith("(test row 3)")
    scores = [float(line.split()[1]) for line in lines]
    assert scores == sorted(scores, reverse=True)
    code = cli.main(["retrieve", "--run-dir", str(pretrained.run_dir), "--query-image", str(folder / image),
                     "--target", "text", "--top-k", "1"])
    assert code == 0 and capsys.readouterr().out.split()[2:4] == text.split()


@pytest.mark.parametrize("arguments, message", [
    (["--query-image", "{folder}/bad.png", "--target", "text"], "--query-image: the file is not a PNG/JPEG"),
    (["--query-image", "{folder}/none.png", "--target", "text"], "none.png does not exist"),
    (["--query-audio", "{folder}/a.wav", "--target", "text"], "--query-audio 'audio' names no single column"),
    (["--query-text", "p1 q2", "--target", "text"], "is the query's own column"),
    (["--query-text", " ", "--target", "image"], "--query-text is empty"),
    (["--query-text", "p1", "--target", "image", "--top-k", "0"], "--top-k must be at least 1"),
])
def test_retrieve_errors_name_the_culprit(pretrained, folder, capsys, arguments, message):
    (folder / "bad.png").write_bytes(b"not an image")
    arguments = [a.format(folder=folder) for a in arguments]
    assert cli.main(["retrieve", "--run-dir", str(pretrained.run_dir), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_init_from_loads_the_pretrained_encoders_and_is_recorded(pretrained, folder, tmp_path):
    from mmkeras.models.factory import build_model
    from mmkeras.training.pretrained import init_from_pretrained, load_towers
    from mmkeras.training.trainer import train

    config = paired_config(folder, [f"model.init_from={pretrained.run_dir}"])
    towers, preprocessor, _ = load_towers(pretrained.run_dir)
    model = build_model(config.model, preprocessor)
    fresh = model.get_layer("image_dense").get_weights()[0].copy()
    info = init_from_pretrained(model, preprocessor, config)
    loaded = model.get_layer("image_dense").get_weights()[0]
    np.testing.assert_array_equal(loaded, towers.get_layer("image_dense").get_weights()[0])
    assert not np.allclose(loaded, fresh) and info["init_layers"] >= 4
    run = train(config, tmp_path / "run")
    assert run.status()["init_from"] == str(pretrained.run_dir.resolve())


def test_init_from_refuses_what_it_cannot_load(pretrained, folder, tmp_path):
    from mmkeras.training.trainer import train

    cases = {
        str(tmp_path / "none"): "does not exist; make it with mmkeras pretrain",
        str(folder): "is not a pretraining run",
    }
    for path, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            train(paired_config(folder, [f"model.init_from={path}"]), tmp_path / "refused")
    assert not (tmp_path / "refused").exists()  # refused before the run directory is made
    other = paired_config(folder, [f"model.init_from={pretrained.run_dir}", "data.features.text.sequence_length=3"])
    with pytest.raises(ConfigError, match="column 'text' is not prepared as in the pretraining run"):
        train(other, tmp_path / "other")


@pytest.mark.parametrize("overrides, message", [
    (["pretrain.pairs=['text-audio']"], r"pretrain.pairs\[0\]='text-audio' is not a pair of two different"),
    (["pretrain.pairs=['text-image', 'image-text']"], r"pretrain.pairs\[1\]='image-text' repeats an earlier pair"),
    (["pretrain.pairs=[['image', 'image']]"], "is not a pair of two different feature columns"),
    (["pretrain.batch_size=0"], "pretrain.batch_size"),
    (["pretrain.learning_rate=-1"], "pretrain.learning_rate"),
    (["pretrain.loss=triplet"], "pretrain.loss='triplet' is not valid"),
    (["pretrain.temperature=2"], "unknown key pretrain.temperature; valid keys of pretrain: batch_size"),
])
def test_pretrain_config_errors_name_the_key(folder, overrides, message):
    with pytest.raises(ConfigError, match=message):
        paired_config(folder, overrides)


def test_pretraining_refuses_one_column_and_a_batch_larger_than_the_split(folder, tmp_path):
    with pytest.raises(ConfigError, match="needs at least two columns in data.features"):
        pretrain(paired_config(folder, ["data.features.image=null"]), tmp_path / "one")
    with pytest.raises(ConfigError, match="pretrain.batch_size=512 is larger than the 160 training examples"):
        pretrain(paired_config(folder, ["pretrain.batch_size=512"]), tmp_path / "big")


GATHER_CHECK = """
import json
import numpy as np
import tensorflow as tf
from mmkeras.models.contrastive import siglip_loss
from mmkeras.training.distributed import gather_replicas

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
a, b = (tf.math.l2_normalize(rng.normal(size=(8, 4)).astype("float32"), axis=1) for _ in range(2))
present = np.array([1, 1, 1, 0, 1, 1, 0, 1], "float32")
halves = lambda x: strategy.experimental_distribute_values_from_function(
    lambda context: x[4 * context.replica_id_in_sync_group:4 * (context.replica_id_in_sync_group + 1)])

@tf.function
def losses(a, b, p):
    def step(a, b, p):
        e, q, weight = gather_replicas({"a": a, "b": b}, {"a": p, "b": p})
        return siglip_loss(e["a"], e["b"], q["a"] * q["b"], 1.0, -2.0) * weight
    return strategy.reduce("SUM", strategy.run(step, args=(a, b, p)), axis=None)

print(json.dumps({"gathered": float(losses(halves(a), halves(b), halves(tf.constant(present)))),
                  "whole": float(siglip_loss(a, b, present, 1.0, -2.0))}))
"""


def _mirrored():
    """Two logical CPUs in a fresh interpreter (tests/training runs in the TensorFlow session only)."""
    from tests.training.test_strategy import TWO_CPUS, run_python

    return TWO_CPUS, run_python


def test_gathered_loss_over_two_replicas_equals_the_loss_of_the_whole_batch():
    two_cpus, run_python = _mirrored()
    result = run_python(two_cpus + GATHER_CHECK)
    assert result["gathered"] == pytest.approx(result["whole"], rel=1e-5)


def test_mirrored_pretraining_gathers_negatives_across_replicas(pretrained, folder):
    """Two logical CPUs: each replica's loss uses the whole global batch, so the first epoch's mean
    loss matches the single-device run's (half-batch negatives would not: SigLIP's loss grows with
    the number of negatives)."""
    two_cpus, run_python = _mirrored()
    result = run_python(two_cpus + f"""
import json
from mmkeras.training.pretrain import pretrain
from tests.paired_data import paired_config
run = pretrain(paired_config({str(folder)!r}, ["train.strategy=mirrored"]), {str(folder / "mirrored")!r})
print(json.dumps({{"status": run.status(), "report": json.loads((run.run_dir / "pretrain_report.json").read_text())}}))
""", timeout_s=300)
    status, report = result["status"], result["report"]
    assert (status["strategy"], status["replicas"], status["status"]) == ("mirrored", 2, "complete")
    assert report["negatives"] == "global batch of 32 rows over 2 replicas"
    single = json.loads((pretrained.run_dir / REPORT_FILE).read_text())
    assert report["loss_first_epoch"] == pytest.approx(single["loss_first_epoch"], rel=0.03)
    assert report["text->image"]["recall@5"] > report["retrieval_at_init"]["text->image"]["recall@5"] + 0.5


def test_keras_hub_presets_pretrain_and_load_into_a_classifier(tiny_presets, tmp_path):
    """Tiny BERT + ViT presets: a LoRA-tuned text backbone and a frozen image backbone pretrain, save,
    answer retrieval, and load into a classifier with LoRA enabled (the backbone saved merged)."""
    from mmkeras.evaluation.retrieval import retrieve
    from mmkeras.models.factory import build_model
    from mmkeras.models.towers import encoder_layers
    from mmkeras.training.pretrained import init_from_pretrained, load_towers
    from tests.keras_hub_runs import hub_config

    config = hub_config(tmp_path, tiny_presets, ("text", "image"),
                        ["model.encoders.text.lora_rank=2", "pretrain.epochs=2", "pretrain.batch_size=8",
                         "pretrain.learning_rate=0.01"])
    run = pretrain(config, tmp_path / "pretrain")
    report = json.loads((run.run_dir / REPORT_FILE).read_text())
    assert report["pairs"] == ["text-image"] and report["loss_last_epoch"] < report["loss_first_epoch"]
    towers, preprocessor, _ = load_towers(run.run_dir)
    tuned_config = hub_config(tmp_path, tiny_presets, ("text", "image"),
                              ["model.encoders.text.lora_rank=2", f"model.init_from={run.run_dir}", "train.epochs=1"])
    model = build_model(tuned_config.model, preprocessor)
    ids = {"token_ids": np.array([[2, 5, 7, 3]]), "segment_ids": np.zeros((1, 4), "int32"),
           "padding_mask": np.ones((1, 4), "int32")}
    text_output = lambda m: np.asarray(encoder_layers(m)["text_backbone"](ids)["sequence_output"])  # noqa: E731
    fresh = text_output(model)
    init_from_pretrained(model, preprocessor, tuned_config)  # LoRA enabled here, saved merged there
    np.testing.assert_allclose(text_output(model), text_output(towers), atol=1e-5)
    assert np.abs(fresh - text_output(towers)).max() > 1e-3  # the LoRA pretraining moved the backbone
    text = (tmp_path / "test.csv").read_text().splitlines()[1].split(",")[0]
    hits = retrieve(run.run_dir, {"text": text}, "image", top_k=2)
    assert [h["rank"] for h in hits] == [1, 2] and hits[0]["score"] >= hits[1]["score"]


def test_evaluate_and_export_of_a_pretraining_run_say_what_it_is(pretrained, tmp_path, capsys):
    assert cli.main(["evaluate", "--run-dir", str(pretrained.run_dir)]) == 2
    assert "is a pretraining run (mmkeras pretrain), not a classifier" in capsys.readouterr().err
    assert cli.main(["export", "--run-dir", str(pretrained.run_dir), "--to", str(tmp_path / "export")]) == 2
    assert "train one from it with model.init_from" in capsys.readouterr().err


def test_three_modalities_pretrain_every_pair_and_a_row_counts_only_the_pairs_it_has(tmp_path):
    import csv

    from tests.tiny_data import tiny_config, tiny_digits

    folder = tiny_digits(tmp_path, rows={"train": 64, "validation": 16, "test": 24})
    with open(folder / "test.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for index in range(0, len(rows), 4):  # every 4th test row has no recording
        rows[index]["audio"] = ""
    with open(folder / "test.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    run = pretrain(tiny_config(folder, ["pretrain.epochs=1", "pretrain.batch_size=16"]), tmp_path / "pretrain")
    report = json.loads((run.run_dir / REPORT_FILE).read_text())
    assert report["pairs"] == ["text-image", "text-audio", "image-audio"]
    assert {k for k in report if "->" in k} == {"text->image", "image->text", "text->audio", "audio->text",
                                                "image->audio", "audio->image"}
    both = lambda a, b: sum(1 for row in rows if row[a] and row[b])  # noqa: E731  (digits has blank cells too)
    for a, b in (("text", "image"), ("text", "audio"), ("image", "audio")):
        assert report[f"{a}->{b}"]["queries"] == report[f"{b}->{a}"]["queries"] == both(a, b)
    assert both("text", "audio") < both("text", "image") - 3
