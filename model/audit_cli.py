"""``funnelguard audit``: the training-set audit alone (imports nothing heavy at module level)."""

from __future__ import annotations

import argparse

__all__ = ["register"]

HELP = """Audit the training set as of --as-of, as train does before its first step.

The window train would learn from is built from the warehouse and checked day by day: the
features contract's checks, each numeric feature against the band the window's other days
draw (history bounds), and each feature's single-feature predictive power for each stage
against its earlier days and against the online values of the same impressions (leakage).
Exit 1 when a check failed; the findings name the feature and the day, or the feature and
the stage (docs/model.md, "Training-set audit").
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from funnelguard.cli import add_common_flags

    parser = subparsers.add_parser("audit", help="audit the training set before training",
                                   description=HELP,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_flags(parser, date="--as-of")
    parser.add_argument("--config", default=None, metavar="PATH",
                        help="training config whose stages and seed pick the set (default: the "
                             "project's defaults.model_config, else built-in)")
    parser.add_argument("--no-online", dest="online", action="store_false",
                        help="do not read the online values (leakage against the earlier days "
                             "only)")
    parser.set_defaults(handler=_audit, command_name="audit")


def _audit(args: argparse.Namespace):
    from funnelguard.cli import connect_warehouse, project_of
    from model.audit import run_audit
    from model.commands import config_for

    project = project_of(args)
    config = config_for(project, args.config)  # a bad config exits 2 before any connection
    engine = connect_warehouse(args, project)
    try:
        return run_audit(project, engine, args.as_of, config=config, online=args.online)
    finally:
        engine.dispose()
