"""``funnelguard train``: the guarded training job (imports nothing heavy at module level)."""

from __future__ import annotations

import argparse

__all__ = ["register"]

HELP = """Train the multi-task funnel model on the training set as of --as-of, with the guard.

On success --out holds the model directory (model.json, config.json, weights.pt, encoder.json,
training_set.json; docs/model.md). When the guard stops training (exit 1) --out/forensics/
holds the forensic bundle and the triage verdict (data, numerics, optimization or task).
An interrupted run with the same config and data resumes from --out/checkpoints.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from funnelguard.cli import add_common_flags

    parser = subparsers.add_parser("train", help="train the funnel model with the guard",
                                   description=HELP,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_flags(parser, date="--as-of")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="model directory (and checkpoints, tensorboard, forensics)")
    parser.add_argument("--config", default=None, metavar="PATH",
                        help="training config, YAML or JSON (docs/model.md); default: built-in")
    parser.set_defaults(handler=_train, command_name="train")


def _train(args: argparse.Namespace):
    from funnelguard.cli import default_store_url
    from funnelguard.warehouse import connect, parse_date
    from model.config import load_config
    from model.job import run_training
    from model.trainset import build_training_set

    as_of = parse_date(args.as_of, flag="--as-of")
    config = load_config(args.config)
    engine = connect(args.warehouse)
    try:
        training_set = build_training_set(engine, as_of, seed=config.run.seed)
    finally:
        engine.dispose()
    return run_training(training_set, args.out, config,
                        store_url=args.store or default_store_url())
