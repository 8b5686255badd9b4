"""``mmkeras pretrain`` and ``mmkeras retrieve``: the contrastive-pretraining verbs of the command line.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(); verbs = parser.add_subparsers(dest="verb")
    >>> add_commands(verbs, lambda p, required=True: p.add_argument("--config"))
    >>> parser.parse_args(["retrieve", "--run-dir", "P", "--query-text", "a cat", "--target", "image"]).top_k
    5
"""

from __future__ import annotations


def add_commands(verbs, add_config_arguments) -> None:
    """Add ``pretrain`` and ``retrieve`` to the ``mmkeras`` sub-parsers."""
    pretrain = verbs.add_parser("pretrain", help="contrastive pretraining of the encoders on paired columns")
    add_config_arguments(pretrain, required=True)
    pretrain.add_argument("--run-dir", required=True, help="pretraining run folder (model.init_from reads it)")
    pretrain.add_argument("--overwrite", action="store_true", help="start again in a folder holding a run")

    retrieve = verbs.add_parser("retrieve", help="rank a split's items for a text, image or audio query")
    retrieve.add_argument("--run-dir", required=True, help="a pretraining run")
    queries = retrieve.add_mutually_exclusive_group(required=True)
    queries.add_argument("--query-text", default=None)
    queries.add_argument("--query-image", default=None, help="image file")
    queries.add_argument("--query-audio", default=None, help="audio file (WAV)")
    retrieve.add_argument("--target", required=True, help="the modality (or column) to rank: text, image, audio")
    retrieve.add_argument("--top-k", type=int, default=5)
    retrieve.add_argument("--split", default="test", choices=["train", "validation", "test"])


def _cmd_pretrain(args) -> int:
    from mmkeras.config import load_config
    from mmkeras.training.backend import select_backend

    config = load_config(args.config, args.overrides)
    select_backend(config.train.backend)
    from mmkeras.training.pretrain import pretrain
    from mmkeras.training.pretrained import REPORT_FILE

    run = pretrain(config, args.run_dir, overwrite=args.overwrite)
    import json

    report = json.loads((run.run_dir / REPORT_FILE).read_text())
    for direction, scores in report.items():
        if "->" in direction and "recall@5" in scores:
            before = report["retrieval_at_init"][direction]["recall@5"]
            print(f"{direction}: recall@5 {before:.3f} at init -> {scores['recall@5']:.3f} ({scores['queries']} queries)")
    print(f"pretraining run: {run.run_dir}")
    return 0


def _cmd_retrieve(args) -> int:
    if args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    from mmkeras.evaluation.retrieval import retrieve

    query = {name: value for name, value in (("text", args.query_text), ("image", args.query_image),
                                               ("audio", args.query_audio)) if value is not None}
    for hit in retrieve(args.run_dir, query, args.target, top_k=args.top_k, split=args.split):
        print(f"{hit['rank']:>3}  {hit['score']:+.4f}  {hit['item']}  ({args.split} row {hit['row']})")
    return 0


COMMANDS = {"pretrain": _cmd_pretrain, "retrieve": _cmd_retrieve}
