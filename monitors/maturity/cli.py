"""``funnelguard gate``: may training run on the window ending at the as-of date?

Prints and stores one finding per check and stage (``label_maturity``, ``label_freshness``,
``label_completeness``, ``label_delay``, ``gate``); exit 1 means training must not run. The
``--json`` document's ``label_delay`` key holds each stage's delay curve (quantiles in days). A thin adapter over
:func:`monitors.maturity.commands.run_gate`. Nothing heavy is imported at module level (the
``funnelguard --help`` path).
"""

from __future__ import annotations

import argparse

from funnelguard.cli import add_common_flags
from funnelguard.project import LABELS

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``gate`` command."""
    parser = subparsers.add_parser(
        "gate", help="label-maturity gate: exit 1 means training must not run",
        description="May training run on the window ending at the as-of date? One finding per "
                    "check and stage (label_maturity, label_freshness, label_completeness, "
                    "label_delay, gate). Exit codes: 0 training may run, 1 it must not, 2 bad input, "
                    "3 environment failure.")
    add_common_flags(parser, date="--as-of", contract=LABELS)
    parser.add_argument("--window-days", type=int, default=None, metavar="N",
                        help="training window: the N days before the as-of date (default: the "
                             "project's defaults.window_days, else 28)")
    parser.set_defaults(handler=_gate)


def _gate(args: argparse.Namespace):
    from funnelguard.cli import connect_warehouse, project_of
    from funnelguard.warehouse import parse_date
    from monitors.maturity.commands import run_gate

    as_of = parse_date(args.as_of, flag="--as-of")
    project = project_of(args, LABELS)
    engine = connect_warehouse(args, project)
    try:
        return run_gate(project, engine, as_of, window_days=args.window_days)
    finally:
        engine.dispose()
