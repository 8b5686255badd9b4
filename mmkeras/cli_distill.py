"""``mmkeras distill``: train a student config on a teacher run's soft targets, then compare the two.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(); verbs = parser.add_subparsers(dest="verb")
    >>> add_commands(verbs, lambda p, required=True: p.add_argument("--config"))
    >>> args = parser.parse_args(["distill", "--teacher", "T", "--config", "s.yaml", "--run-dir", "S"])
    >>> args.teacher, args.split, args.calls
    ('T', 'test', 30)
"""

from __future__ import annotations


def add_commands(verbs, add_config_arguments) -> None:
    """Add ``distill`` to the ``mmkeras`` sub-parsers."""
    distill = verbs.add_parser("distill", help="train a student config on a teacher run's soft targets")
    distill.add_argument("--teacher", required=True, help="the teacher's run directory (a complete run)")
    add_config_arguments(distill, required=True)
    distill.add_argument("--run-dir", required=True, help="the student's run folder")
    distill.add_argument("--overwrite", action="store_true", help="train again in a folder holding a complete run")
    distill.add_argument("--split", default="test", choices=["train", "validation", "test"],
                         help="the split distill_report.json compares teacher and student on")
    distill.add_argument("--calls", type=int, default=30, help="timed batch-1 serving calls per model")


def _cmd_distill(args) -> int:
    if args.calls < 1:
        raise ValueError(f"--calls must be at least 1, got {args.calls}")
    from mmkeras.config import load_config
    from mmkeras.training.backend import select_backend

    config = load_config(args.config, args.overrides)
    select_backend(config.train.backend)
    from mmkeras.evaluation.comparison import REPORT_FILE, comparison_table, distill_report
    from mmkeras.training.distill import distill

    run = distill(config, args.teacher, args.run_dir, overwrite=args.overwrite)
    report = distill_report(run.run_dir, split=args.split, calls=args.calls)
    print(f"{args.split} split, {report['latency']}:")
    print("\n".join(comparison_table({"teacher": report["teacher"], "student": report["student"]})))
    print(f"student run: {run.run_dir}; report: {run.run_dir / REPORT_FILE}")
    return 0


COMMANDS = {"distill": _cmd_distill}
