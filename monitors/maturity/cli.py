"""``funnelguard gate``: may training run on the window ending at the as-of date?

Prints and stores one finding per check and task (``label_maturity``, ``label_freshness``,
``label_completeness``, ``gate``); exit 1 means training must not run. Nothing heavy is
imported at module level (the ``funnelguard --help`` path).
"""

from __future__ import annotations

import argparse

from funnelguard.cli import add_common_flags

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``gate`` command."""
    parser = subparsers.add_parser(
        "gate", help="label-maturity gate: exit 1 means training must not run",
        description=__doc__.splitlines()[0])
    add_common_flags(parser, date="--as-of", contract="labels.yaml")
    parser.add_argument("--window-days", type=int, default=28, metavar="N",
                        help="training window: the N days before the as-of date (default 28)")
    parser.set_defaults(handler=_gate)


def _load_labels_contract(path: str | None):
    from contracts import load_contract

    return load_contract(path or "labels")


def _gate(args: argparse.Namespace):
    from funnelguard.errors import InputError
    from funnelguard.warehouse import connect, parse_date
    from monitors.maturity.gate import evaluate_gate

    as_of = parse_date(args.as_of, flag="--as-of")
    if args.window_days < 1:
        raise InputError(f"--window-days: expected a positive number of days, found {args.window_days}")
    contract = _load_labels_contract(args.contract)
    engine = connect(args.warehouse)
    try:
        decision = evaluate_gate(engine, contract, as_of, window_days=args.window_days)
    finally:
        engine.dispose()
    return decision.to_run_result()
