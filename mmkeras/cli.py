"""The ``mmkeras`` command line: thin argument parsing around the library functions.

Example:
    >>> build_parser().parse_args(["train", "--config", "c.yaml", "--set", "train.epochs=1"]).overrides
    ['train.epochs=1']
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mmkeras import cli_distill, cli_pretrain
from mmkeras.export.quantize import QUANTIZE_CHOICES

DEFAULT_CONFIG = "digits"  # bundled: mmkeras/configs/digits.yaml


def _add_config_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--config", required=required, help="YAML experiment config")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value (repeatable), e.g. --set train.epochs=3",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmkeras", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    verbs = parser.add_subparsers(dest="verb", required=True)

    datasets = verbs.add_parser("datasets", help="bundled real datasets")
    datasets_verbs = datasets.add_subparsers(dest="datasets_verb", required=True)
    prepare = datasets_verbs.add_parser("prepare", help="write a bundled dataset as files + manifests")
    prepare.add_argument("name")
    prepare.add_argument("--to", required=True, help="output folder")
    prepare.add_argument("--seed", type=int, default=0)
    prepare.add_argument("--hard", action="store_true", help="degraded variant (avdigits, digits)")
    prepare.add_argument("--snr-db", type=float, default=None, help="audio SNR of the hard variant")
    prepare.add_argument("--holdout-speakers", default=None, help="comma-separated FSDD speakers for test")
    datasets_verbs.add_parser("list", help="list the bundled datasets")

    data = verbs.add_parser("data", help="inspect the data a config names")
    data_verbs = data.add_subparsers(dest="data_verb", required=True)
    validate = data_verbs.add_parser("validate", help="decode every file; list bad rows; exit 1 if any")
    _add_config_arguments(validate)

    train = verbs.add_parser("train", help="train (or resume) a run")
    _add_config_arguments(train, required=False)
    train.add_argument("--run-dir", default=None, help="run folder (default runs/<config>-<time>)")

    evaluate = verbs.add_parser("evaluate", help="write report.json / report.md for a run")
    evaluate.add_argument("--run-dir", required=True)
    evaluate.add_argument("--split", default="test", choices=["train", "validation", "test"])
    evaluate.add_argument("--no-attribution", action="store_true", help="leave out integrated gradients")
    evaluate.add_argument("--no-robustness", action="store_true", help="leave out the subset and noise passes")

    explain = verbs.add_parser("explain", help="figure + JSON: which modality drove one prediction")
    explain.add_argument("--run-dir", required=True)
    explain.add_argument("--split", default="test", choices=["train", "validation", "test"])
    explain.add_argument("--index", type=int, required=True, help="row of the split's manifest, 0-based")
    explain.add_argument("--out", required=True, help="figure (PNG); the JSON goes beside it")

    export = verbs.add_parser("export", help="export a run as a TF Serving SavedModel")
    export.add_argument("--run-dir", required=True)
    export.add_argument("--to", required=True, help="model base folder; writes BASE/<version>/")
    export.add_argument("--version", type=int, default=None, help="default: next free integer")
    export.add_argument("--quantize", default="none", choices=QUANTIZE_CHOICES,
                        help="int8: Keras's int8 weights for its Dense, EinsumDense and Embedding layers")

    predict = verbs.add_parser("predict", help="run an exported model on raw inputs")
    predict.add_argument("--model", required=True, help="model base folder (or a version folder)")
    predict.add_argument("--version", type=int, default=None)
    predict.add_argument("--text", default=None)
    predict.add_argument("--image", default=None, help="image file")
    predict.add_argument("--audio", default=None, help="audio file (WAV; FLAC, OGG, MP3, ... are converted to WAV)")
    predict.add_argument("--request", default=None, help="TF Serving REST body (JSON file)")

    cli_pretrain.add_commands(verbs, _add_config_arguments)
    cli_distill.add_commands(verbs, _add_config_arguments)

    demo = verbs.add_parser("demo", help="prepare digits, train, evaluate, export, predict")
    _add_config_arguments(demo, required=False)
    demo.add_argument("--run-dir", default="runs/demo")
    demo.add_argument("--export-to", default="exports/digits")
    return parser


def _load(args):
    from mmkeras.config import load_config
    from mmkeras.training.backend import select_backend

    config = load_config(args.config or DEFAULT_CONFIG, args.overrides)
    select_backend(config.train.backend)
    return config


def _cmd_datasets(args) -> int:
    from mmkeras import datasets

    if args.datasets_verb == "list":
        print("\n".join(datasets.names()))
        return 0
    options = {"seed": args.seed}
    if args.hard:
        options["hard"] = True
    if args.snr_db is not None:
        options["snr_db"] = args.snr_db
    if args.holdout_speakers:
        options["holdout_speakers"] = [s.strip() for s in args.holdout_speakers.split(",") if s.strip()]
    out = datasets.prepare(args.name, args.to, **options)
    print(f"prepared {args.name} in {out}")
    return 0


def _cmd_data(args) -> int:
    config = _load(args)
    from mmkeras.data.validate import format_bad_rows, validate

    bad = validate(config)
    if bad:
        print(format_bad_rows(bad))
        print(f"{len(bad)} bad row(s)")
        return 1
    print("all rows decode")
    return 0


def _cmd_train(args) -> int:
    from mmkeras.training.trainer import resolve_run_config

    config = resolve_run_config(args.config, args.overrides, args.run_dir)
    from mmkeras.training.backend import select_backend

    select_backend(config.train.backend)
    from mmkeras.training.trainer import train

    run = train(config, run_dir=args.run_dir)
    print(f"run directory: {run.run_dir}")
    return 0


def _print_headline(report: dict) -> None:
    print(
        f"accuracy {report['accuracy']:.4f}  macro_f1 {report['macro_f1']:.4f}  ece {report['ece']:.4f}"
        f"  ({report['num_examples']} {report['split']} examples)"
    )
    calibration = report.get("calibration")
    if calibration:
        print(f"  calibration: T {calibration['temperature']:.3f}, ece {calibration['ece_before']:.4f} -> "
              f"{calibration['ece_after']:.4f}, nll {calibration['nll_before']:.4f} -> {calibration['nll_after']:.4f}")
    for column, row in report.get("modality_ablation", {}).items():
        print(f"  without {column}: accuracy {row['accuracy']:.4f} ({row['delta']:+.4f})")
    if report.get("attribution"):
        print("  attribution shares: " + ", ".join(f"{c} {s:.3f}" for c, s in report["attribution"]["shares"].items()))


def _cmd_evaluate(args) -> int:
    from mmkeras.training.run import read_run_backend
    from mmkeras.training.backend import select_backend

    select_backend(read_run_backend(args.run_dir))
    from mmkeras.evaluation.report import evaluate_run

    report = evaluate_run(args.run_dir, split=args.split, attribution=not args.no_attribution,
                          robustness=not args.no_robustness)
    _print_headline(report)
    print(f"report: {Path(args.run_dir) / 'report.md'}")
    return 0


def _cmd_explain(args) -> int:
    from mmkeras.training.run import read_run_backend
    from mmkeras.training.backend import select_backend

    select_backend(read_run_backend(args.run_dir))
    from mmkeras.evaluation.explain import explain_example

    result = explain_example(args.run_dir, split=args.split, index=args.index, out=args.out)
    prediction = result["prediction"]
    print(f"{args.split} example {args.index}: predicted {prediction['class']} "
          f"({prediction['probability']:.4f}), label {result['label']}")
    for column, share in result["shares"].items():
        print(f"  {column}: share {share:.4f} ({result['methods'][column]})")
    print(f"figure: {result['figure']}")
    print(f"json: {result['json']}")
    return 0


def _cmd_export(args) -> int:
    from mmkeras.training.run import read_run_backend
    from mmkeras.training.backend import select_backend

    select_backend(read_run_backend(args.run_dir))
    from mmkeras.export.serving import export_run

    path = export_run(args.run_dir, args.to, version=args.version, quantize=args.quantize)
    print(f"exported SavedModel: {path}" + ("" if args.quantize == "none" else f" ({args.quantize})"))
    return 0


def _cmd_predict(args) -> int:
    from mmkeras.export.predict import predict_files, predict_request

    if args.request:
        response = predict_request(args.model, args.request, version=args.version)
        print(json.dumps(response, indent=2))
        return 0
    result = predict_files(args.model, text=args.text, image=args.image, audio=args.audio, version=args.version)
    for rank, (name, probability) in enumerate(result, start=1):
        print(f"{rank}. {name}  {probability:.4f}")
    return 0


def _cmd_demo(args) -> int:
    config = _load(args)
    from mmkeras.training.trainer import train
    from mmkeras.evaluation.report import evaluate_run
    from mmkeras.export.serving import export_run
    from mmkeras.export.predict import predict_example

    start = time.time()
    run = train(config, run_dir=args.run_dir, overwrite=True)
    report = evaluate_run(run.run_dir, split="test")
    _print_headline(report)
    path = export_run(run.run_dir, args.export_to)
    print(f"exported SavedModel: {path}")
    example, result = predict_example(path, config)
    print(f"predict on test example {example}:")
    for rank, (name, probability) in enumerate(result, start=1):
        print(f"  {rank}. {name}  {probability:.4f}")
    print(f"demo finished in {time.time() - start:.0f} s; report: {Path(run.run_dir) / 'report.md'}")
    return 0


COMMANDS = {
    "datasets": _cmd_datasets,
    "data": _cmd_data,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "explain": _cmd_explain,
    "export": _cmd_export,
    "predict": _cmd_predict,
    "demo": _cmd_demo,
    **cli_pretrain.COMMANDS,
    **cli_distill.COMMANDS,
}


def _quiet_logs() -> None:
    """Keep the terminal readable: TF's C++ info/warning lines and Keras' advisory warnings off,
    unless the user asked for them (TF_CPP_MIN_LOG_LEVEL set, or --debug)."""
    import os
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")


def _one_line(error: BaseException) -> str:
    """The message of an error as one line; an OSError from the system names its path."""
    if isinstance(error, OSError) and error.strerror:
        where = error.filename if error.filename is not None else ""
        return f"{where}: {error.strerror}" if where else error.strerror
    return str(error) or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.debug:
        _quiet_logs()
    try:
        return COMMANDS[args.verb](args)
    except (ValueError, OSError, RuntimeError) as error:
        # ConfigError, DataError and ManifestError are ValueErrors whose message names the culprit;
        # OSError covers missing, unreadable and unwritable paths and a full disk.
        if args.debug:
            raise
        print(f"mmkeras {args.verb}: error: {_one_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
