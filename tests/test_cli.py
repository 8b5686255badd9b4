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
