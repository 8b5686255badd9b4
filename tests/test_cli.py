import csv
import errno
import json
import re
import shutil
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


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """``(data folder, run directory)``: a tiny real `digits` subset trained through ``mmkeras train``."""
    from tests.tiny_data import tiny_config, tiny_digits

    root = tmp_path_factory.mktemp("cli")
    folder = tiny_digits(root / "data", rows={"train": 64, "validation": 16, "test": 16})
    tiny_config(folder)
    run_dir = root / "run"
    assert main(["train", "--config", str(folder / "config.yaml"), "--run-dir", str(run_dir),
                 "--set", "train.epochs=1"]) == 0
    return folder, run_dir


@pytest.fixture(scope="module")
def cli_model(cli_run, tmp_path_factory):
    """The model base folder of ``cli_run`` exported through ``mmkeras export``."""
    base = tmp_path_factory.mktemp("cli_exports") / "digits"
    assert main(["export", "--run-dir", str(cli_run[1]), "--to", str(base)]) == 0
    return base


def _first_test_row(folder: Path) -> dict:
    with open(folder / "test.csv", newline="") as handle:
        return next(csv.DictReader(handle))


def test_train_evaluate_export_predict_through_the_cli(cli_run, cli_model, tmp_path, capsys):
    """The README's verbs, in process, on a tiny real `digits` subset (trained and exported by the fixtures)."""
    import base64

    folder, run_dir = cli_run
    base = cli_model
    capsys.readouterr()
    assert main(["evaluate", "--run-dir", str(run_dir), "--no-attribution", "--no-robustness"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "without audio" in out and "calibration: T " in out
    assert "attribution shares" not in out
    report = json.loads((run_dir / "report.json").read_text())
    assert "attribution" not in report and "robustness" not in report and "calibration" in report
    assert (base / "1" / "saved_model.pb").exists()
    assert main(["export", "--run-dir", str(run_dir), "--to", str(base)]) == 0  # next free version
    assert (base / "2" / "saved_model.pb").exists()
    capsys.readouterr()

    row = _first_test_row(folder)
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


def test_predict_refusals_exit_2_with_one_line_naming_the_input(cli_model, tmp_path, capsys):
    """Each refusal is one line on stderr and exit status 2; an escaping exception would fail this test."""
    bad_image = tmp_path / "bad.png"
    bad_image.write_bytes(b"this is not an image")
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"instances": [{"text": "café"}]}'.encode("latin-1"))
    ragged = tmp_path / "ragged.json"
    ragged.write_text(json.dumps({"inputs": {"text": ["one", "two"], "image_bytes": [""], "audio_bytes": [""]}}))
    bad_wav = tmp_path / "bad.wav"
    bad_wav.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"inputs": {"text": [""], "image_bytes": [""], "audio_bytes": [""], "video": [""]}}))
    cases = [
        (["--image", str(bad_image)],
         rf"image_bytes\[0\] is not a PNG/JPEG/\S+ image \(image file {re.escape(str(bad_image))}\)"),
        (["--audio", str(bad_wav)], rf"audio_bytes\[0\] .+ \(audio file {re.escape(str(bad_wav))}\)"),
        (["--image", str(tmp_path)], rf"image file {re.escape(str(tmp_path))} is a directory, not a file"),
        (["--request", str(latin1)], rf"request file {re.escape(str(latin1))} is not UTF-8 text \(byte 28\); .*"),
        (["--request", str(ragged)],
         r"inputs have different batch lengths: audio_bytes has 1, image_bytes has 1, text has 2"),
        (["--request", str(unknown)], r"inputs: does not have named input: 'video'; .*"),
        (["--request", str(tmp_path / "nope.json")],
         rf"request file {re.escape(str(tmp_path / 'nope.json'))} does not exist"),
    ]
    for args, message in cases:
        assert main(["predict", "--model", str(cli_model), *args]) == 2, args
        error = capsys.readouterr().err.strip()
        assert re.fullmatch("mmkeras predict: error: " + message, error), error


def test_predict_sends_flac_audio_as_wav(cli_run, cli_model, tmp_path, capsys):
    import soundfile

    folder, _ = cli_run
    wav = folder / _first_test_row(folder)["audio"]
    flac = tmp_path / "clip.flac"
    soundfile.write(flac, *soundfile.read(wav, dtype="int16"))
    capsys.readouterr()
    assert main(["predict", "--model", str(cli_model), "--audio", str(wav)]) == 0
    from_wav = capsys.readouterr().out
    assert main(["predict", "--model", str(cli_model), "--audio", str(flac)]) == 0
    assert capsys.readouterr().out == from_wav and len(from_wav.splitlines()) == 3


def test_export_on_a_full_disk_exits_2_naming_the_path(cli_run, tmp_path, monkeypatch, capsys):
    from mmkeras.export import serving

    def disk_full(model, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(serving, "write_model_endpoint", disk_full)
    run_dir, base = cli_run[1], tmp_path / "exports"
    capsys.readouterr()
    assert main(["export", "--run-dir", str(run_dir), "--to", str(base)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mmkeras export: error: no space left on device while exporting {run_dir} to {base / '1'} "
        f"(written in {base / '.1-staging'}); the partial export was removed and no version folder was written")
    assert list(base.iterdir()) == []


def test_export_of_a_failed_run_exits_2(cli_run, tmp_path, capsys):
    from mmkeras.training.run import Run

    failed = tmp_path / "failed"
    shutil.copytree(cli_run[1], failed)
    Run(failed).update_status(status="failed", failure={"reason": "the loss became nan at epoch 1, step 3"})
    assert main(["export", "--run-dir", str(failed), "--to", str(tmp_path / "exports")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"mmkeras export: error: {failed} is a failed run (the loss became nan at epoch 1, step 3)")
    assert not (tmp_path / "exports").exists()


def test_export_quantize_int8_through_the_cli_serves_and_records_it(cli_run, tmp_path, capsys):
    run_dir, base = cli_run[1], tmp_path / "exports" / "digits"
    capsys.readouterr()
    assert main(["export", "--run-dir", str(run_dir), "--to", str(base), "--quantize", "int8"]) == 0
    assert capsys.readouterr().out.strip() == f"exported SavedModel: {base / '1'} (int8)"
    metadata = json.loads((base / "1" / "mmkeras_export.json").read_text())
    assert metadata["quantization"] == "int8" and metadata["int8_layer_count"] == len(metadata["int8_layers"]) > 0
    row = _first_test_row(cli_run[0])
    assert main(["predict", "--model", str(base), "--text", row["text"], "--image", str(cli_run[0] / row["image"]),
                 "--audio", str(cli_run[0] / row["audio"])]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


def test_export_refuses_an_unknown_quantize_value_listing_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_code:
        build_parser().parse_args(["export", "--run-dir", "r", "--to", "b", "--quantize", "int4"])
    assert exit_code.value.code == 2
    error = capsys.readouterr().err  # Python 3.12 stopped quoting the choices
    assert "argument --quantize: invalid choice: 'int4' (choose from " in error and "none" in error and "int8" in error
