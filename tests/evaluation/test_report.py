"""The evaluation report of one tiny trained run: calibration, robustness and attribution sections."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmkeras.evaluation.calibration import fit_temperature, nll
from tests.tiny_data import tiny_config, tiny_digits

COLUMNS = ["text", "image", "audio"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from mmkeras.training.trainer import train

    folder = tiny_digits(tmp_path_factory.mktemp("tiny_digits_report"))
    return train(tiny_config(folder), run_dir=tmp_path_factory.mktemp("runs") / "run")


@pytest.fixture(scope="module")
def report(run):
    from mmkeras.evaluation.report import evaluate_run

    return evaluate_run(run.run_dir)


@pytest.fixture(scope="module")
def test_predictions(run):
    from mmkeras.evaluation.predictions import predict_split

    return predict_split(run.run_dir, "test")


def test_evaluation_report_has_every_field_in_range(run, report):
    trained = run
    on_disk = json.loads((trained.run_dir / "report.json").read_text())
    assert on_disk["accuracy"] == report["accuracy"]
    assert report["num_examples"] == 32
    assert 0.0 <= report["accuracy"] <= 1.0 and 0.0 <= report["macro_f1"] <= 1.0
    assert 0.0 <= report["ece"] <= 1.0
    assert set(report["per_class"]) == {str(d) for d in range(10)}
    assert sum(row["support"] for row in report["per_class"].values()) == 32
    assert set(report["modality_ablation"]) == {"text", "image", "audio"}
    for row in report["modality_ablation"].values():
        assert 0.0 <= row["accuracy"] <= 1.0
        assert row["delta"] == pytest.approx(row["accuracy"] - report["accuracy"])
    markdown = (trained.run_dir / "report.md").read_text()
    assert "Modality ablation" in markdown and "macro avg" in markdown
    for image in ("confusion_matrix.png", "reliability_diagram.png"):
        assert (trained.run_dir / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_fits_its_temperature_on_validation(run):
    from mmkeras.evaluation.predictions import predict_split

    fitted = json.loads((run.run_dir / "calibration.json").read_text())
    assert fitted["fitted"] and fitted["split"] == "validation" and fitted["examples"] == 32
    assert fitted["nll_after"] < fitted["nll_before"]  # the fit lowers validation NLL
    _, labels, raw, _ = predict_split(run.run_dir, "validation", subsets=False)
    assert fitted["temperature"] == pytest.approx(fit_temperature(labels, raw), rel=1e-6)


def test_report_metrics_are_the_calibrated_ones(run, report, test_predictions):
    _, labels, raw, _ = test_predictions
    calibration = report["calibration"]
    assert calibration["temperature"] == json.loads((run.run_dir / "calibration.json").read_text())["temperature"]
    assert report["ece"] == calibration["ece_after"] and report["nll"] == calibration["nll_after"]
    assert calibration["nll_before"] == pytest.approx(nll(labels, raw))
    assert report["accuracy"] == float((raw.argmax(1) == labels).mean())  # T keeps the argmax
    on_disk = json.loads((run.run_dir / "report.json").read_text())
    assert set(on_disk["calibration"]) >= {"temperature", "ece_before", "ece_after", "nll_before", "nll_after"}
    assert len(on_disk["reliability"]) == len(on_disk["reliability_before_calibration"]) == 15
    markdown = (run.run_dir / "report.md").read_text()
    assert f"Temperature T = {calibration['temperature']:.4f}" in markdown and "before (T = 1)" in markdown


def test_robustness_subsets_cover_every_subset_as_serving_sees_them(run, report, test_predictions):
    from mmkeras.evaluation.predictions import load_run, model_probabilities, without
    from mmkeras.data.pipeline import build_dataset

    subsets = report["robustness"]["subsets"]
    assert set(subsets) == {"text+image+audio", "text+image", "text+audio", "image+audio", "text", "image", "audio"}
    assert subsets["text+image+audio"] == round(report["accuracy"], 4)
    for column, row in report["modality_ablation"].items():
        assert round(row["accuracy"], 4) == subsets["+".join(c for c in COLUMNS if c != column)]
    # "image" alone, recomputed by hand: text and audio zeroed with their presence flags at 0.
    loaded = load_run(run.run_dir)
    labels, predictions = [], []
    for features, label in build_dataset(loaded.config, "test", loaded.preprocessor, training=False, batch_size=8,
                                         drop_remainder=False):
        predictions.append(model_probabilities(loaded.model, without(features, ["text", "audio"])).argmax(1))
        labels.append(np.asarray(label))
    assert subsets["image"] == round(float((np.concatenate(predictions) == np.concatenate(labels)).mean()), 4)


def test_robustness_noise_curves_start_clean_and_follow_each_columns_levels(run, report):
    from mmkeras.data.columns.noise import NOISE

    noise = report["robustness"]["noise"]
    assert set(noise) == set(COLUMNS)
    for column, curve in noise.items():
        modality = column  # tiny digits names each column by its modality
        assert curve["noise"] == NOISE[modality].name and curve["unit"] == NOISE[modality].unit
        assert [p["level"] for p in curve["curve"]] == [None, *NOISE[modality].levels]
        assert curve["curve"][0]["accuracy"] == round(report["accuracy"], 4)
        assert all(0.0 <= p["accuracy"] <= 1.0 for p in curve["curve"])
    markdown = (run.run_dir / "report.md").read_text()
    assert "## Robustness" in markdown and "| image+audio |" in markdown and "SNR (dB)" in markdown


def test_report_figures_are_pngs(run, report):
    for image in ("confusion_matrix.png", "reliability_diagram.png", "robustness.png", "attribution.png"):
        assert (run.run_dir / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image


def test_report_attribution_shares_cover_every_modality_and_sum_to_one(run, report):
    attribution = report["attribution"]
    assert attribution["method"] == "integrated_gradients" and attribution["examples"] == 32
    assert set(attribution["shares"]) == set(COLUMNS)
    assert sum(attribution["shares"].values()) == pytest.approx(1.0, abs=1e-6)
    assert all(share >= 0.0 for share in attribution["shares"].values())
    markdown = (run.run_dir / "report.md").read_text()
    assert "## Attribution" in markdown and "![modality shares](attribution.png)" in markdown
