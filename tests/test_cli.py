import csv
import subprocess
import sys
from pathlib import Path

import pytest

from mmkeras.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def test_every_config_verb_takes_repeated_set():
    parser = build_parser()
    for argv in (["train", "--config", "c.yaml"], ["data", "validate", "--config", "c.yaml"], ["demo"]):
        args = parser.parse_args(argv + ["--set", "train.epochs=1", "--set", "train.batch_size=8"])
        assert args.overrides == ["train.epochs=1", "train.batch_size=8"]


def test_datasets_prepare_and_list(tmp_path, capsys):
    assert main(["datasets", "list"]) == 0
    assert capsys.readouterr().out.split() == ["avdigits", "digits", "emoji", "speech_commands_mini"]
    assert main(["datasets", "prepare", "avdigits", "--to", str(tmp_path / "av"),
                 "--holdout-speakers", "theo", "--hard", "--snr-db", "3"]) == 0
    with open(tmp_path / "av" / "test.csv", newline="") as handle:
        speakers = {row["speaker"] for row in csv.DictReader(handle)}
    assert speakers == {"theo"}


def test_unknown_dataset_is_a_clean_error(tmp_path, capsys):
    assert main(["datasets", "prepare", "cifar", "--to", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "unknown dataset 'cifar'; valid names: avdigits, digits, emoji, speech_commands_mini" in error


def test_config_error_exits_2_without_traceback(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  features:\n    image: {modality: image, hieght: 3}\n")
    result = subprocess.run([sys.executable, "-m", "mmkeras.cli", "data", "validate", "--config", str(config)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert "unknown key data.features.image.hieght" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_evaluate_export_predict_through_the_cli(tmp_path, capsys):
    """The README's verbs, in process, on a tiny real `digits` subset."""
    import base64
    import json

    from tests.tiny_data import tiny_config, tiny_digits

    folder = tiny_digits(tmp_path / "data", rows={"train": 64, "validation": 16, "test": 16})
    tiny_config(folder)
    config = str(folder / "config.yaml")
    run_dir, base = tmp_path / "run", tmp_path / "exports"
    assert main(["train", "--config", config, "--run-dir", str(run_dir), "--set", "train.epochs=1"]) == 0
    assert main(["evaluate", "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "without audio" in out
    assert main(["export", "--run-dir", str(run_dir), "--to", str(base)]) == 0
    assert (base / "1" / "saved_model.pb").exists()
    assert main(["export", "--run-dir", str(run_dir), "--to", str(base)]) == 0  # next free version
    assert (base / "2" / "saved_model.pb").exists()
    capsys.readouterr()

    with open(folder / "test.csv", newline="") as handle:
        row = next(csv.DictReader(handle))
    image, audio = folder / row["image"], folder / row["audio"]
    assert main(["predict", "--model", str(base), "--text", row["text"], "--image", str(image),
                 "--audio", str(audio)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("1. ")
    probabilities = [float(line.split()[-1]) for line in lines]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0 + 1e-6

    request = tmp_path / "request.json"
    request.write_text(json.dumps({"instances": [{
        "text": row["text"],
        "image_bytes": {"b64": base64.b64encode(image.read_bytes()).decode()},
        "audio_bytes": {"b64": ""},  # audio missing for this example
    }]}))
    assert main(["predict", "--model", str(base), "--version", "1", "--request", str(request)]) == 0
    response = json.loads(capsys.readouterr().out)
    prediction = response["predictions"][0]
    assert len(prediction["probabilities"]) == 10
    assert abs(sum(prediction["probabilities"]) - 1.0) < 1e-4
    assert prediction["class_names"] in [str(d) for d in range(10)]

    assert main(["predict", "--model", str(base), "--version", "7", "--text", "x"]) == 2
    assert "has no version 7; versions: 1, 2" in capsys.readouterr().err


def test_corrupt_file_met_in_training_names_row_and_file_without_traceback(tmp_path):
    from tests.tiny_data import tiny_config, tiny_digits

    folder = tiny_digits(tmp_path / "data", rows={"train": 32, "validation": 16, "test": 16})
    tiny_config(folder)
    with open(folder / "train.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    broken = folder / "full" / "images" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG signature, then garbage
    rows[4]["image"] = "full/images/broken.png"
    with open(folder / "train.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = subprocess.run([sys.executable, "-m", "mmkeras.cli", "train", "--config", str(folder / "config.yaml"),
                             "--run-dir", str(tmp_path / "run"), "--set", "train.epochs=1"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "train.csv row 5, column image: 'full/images/broken.png'" in result.stderr
    assert "Traceback" not in result.stderr
