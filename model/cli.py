"""``funnelguard train``: the guarded training job (imports nothing heavy at module level)."""

from __future__ import annotations

import argparse

__all__ = ["register"]

HELP = """Train the multi-task funnel model on the training set as of --as-of, with the guard.

The heads are the project's funnel stages (the labels contract), or the subset the config's
model.tasks picks; the features are the features contract's. Without --config the project's
defaults.model_config is used, else the built-in config.

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
                        help="training config, YAML or JSON (docs/model.md); default: the "
                             "project's defaults.model_config, else built-in")
    parser.add_argument("--no-audit", dest="audit", action="store_false",
                        help="skip the training-set audit (contract checks per day, history "
                             "bounds, leakage) that otherwise runs before the first step")
    parser.set_defaults(handler=_train, command_name="train")


def _train(args: argparse.Namespace):
    from funnelguard.cli import connect_warehouse, project_of, store_url_of
    from model.commands import config_for, run_train

    project = project_of(args)
    config = config_for(project, args.config)  # a bad config exits 2 before any connection
    store_url = None if getattr(args, "no_store", False) else store_url_of(args, project)
    engine = connect_warehouse(args, project)
    try:
        return run_train(project, engine, args.as_of, out_dir=args.out, config=config,
                         store_url=store_url, audit=args.audit)
    finally:
        engine.dispose()
