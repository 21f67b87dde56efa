"""``funnelguard simulate``: build the simulated funnel warehouse (with optional faults).

Not a check command: it prints what it built and returns exit code 0 (2 for bad input, 3 when
the database fails). Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import argparse

__all__ = ["register"]

_PROGRESS_FROM_ROWS = 200_000


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, found {text!r}") from None
    return value


def _with_fault_table(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Build the fault table only when the help is shown: it reads the packaged contracts,
    which every other ``funnelguard`` start should not pay for."""

    class _Help(type(parser)):
        def format_help(self) -> str:
            from funnelguard.simulator.catalogue import fault_help_table

            self.epilog = fault_help_table()
            return super().format_help()

    parser.__class__ = _Help
    return parser


def register(subparsers) -> None:
    """Add the ``simulate`` subcommand."""
    parser = subparsers.add_parser(
        "simulate",
        help="build the simulated funnel warehouse (optionally with faults)",
        description=("Build the simulated warehouse: impressions, offline_features, serving_log, "
                     "labels, oracle and fault_manifest (docs/data.md). Refuses a non-empty "
                     "warehouse unless --replace."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _with_fault_table(parser)
    parser.add_argument("--warehouse", required=True, metavar="URL",
                        help="warehouse SQLAlchemy URL (sqlite:///path, postgresql+psycopg://...)")
    parser.add_argument("--start", required=True, metavar="YYYY-MM-DD", help="first partition")
    parser.add_argument("--days", required=True, type=_positive_int, metavar="N",
                        help="number of daily partitions; now = start + days at 00:00 UTC")
    parser.add_argument("--per-day", dest="per_day", required=True, type=_positive_int,
                        metavar="N", help="mean impressions a day (weekly pattern about +-10 %%)")
    parser.add_argument("--seed", required=True, type=_positive_int, metavar="S",
                        help="random seed (same seed, same warehouse)")
    parser.add_argument("--fault", dest="faults", action="append", default=[], metavar="SPEC",
                        help="NAME:key=value,... (repeatable; see the catalogue below)")
    parser.add_argument("--replace", action="store_true",
                        help="drop and rebuild the simulator's tables if they hold rows")
    parser.set_defaults(handler=_simulate, command_name="simulate")


def _simulate(args: argparse.Namespace) -> int:
    from funnelguard.simulator.build import simulate
    from funnelguard.simulator.catalogue import parse_fault
    from funnelguard.simulator.config import SimConfig
    from funnelguard.warehouse import connect, parse_date

    start = parse_date(args.start, flag="--start")
    faults = tuple(parse_fault(spec, start=start, days=args.days) for spec in args.faults)
    config = SimConfig(start=start, days=args.days, per_day=args.per_day, seed=args.seed,
                       faults=faults)
    engine = connect(args.warehouse, must_exist=False)
    try:
        summary = simulate(engine, config, replace=args.replace,
                           progress=args.days * args.per_day >= _PROGRESS_FROM_ROWS)
    finally:
        engine.dispose()
    if not getattr(args, "quiet", False):
        print(summary.describe())
    return 0
