"""``funnelguard drift``, ``funnelguard skew`` and ``funnelguard freshness``: the CLI adapter.

Each handler parses its flags, loads the project (``--project``; ``--contract`` replaces its
features contract), connects to the warehouse (``--warehouse``, else the project's) and calls
the command function of :mod:`monitors.commands`, which does the work and returns a
:class:`~funnelguard.findings.RunResult`; the CLI edge stores it, writes ``--json`` and maps it
to the exit code. ``--html DIR`` defaults to ``.funnelguard/reports/<partition>/``. Nothing
heavy is imported at module level.
"""

from __future__ import annotations

import argparse

from funnelguard.project import FEATURES
from monitors.commands import REFERENCE_DAYS

__all__ = ["register", "REFERENCE_DAYS"]

_HELP = {
    "drift": ("feature drift (online vs offline, each vs the previous "
              f"{REFERENCE_DAYS} partitions) and default-value rates by segment"),
    "skew": "replay skew: offline vs online features of the same impressions (joined on the key)",
    "freshness": ("partition arrival, volume against history, latest event time of the "
                  "impressions, landing time against the contracts' latency SLA"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``drift``, ``skew`` and ``freshness`` to the ``funnelguard`` command."""
    from funnelguard.cli import add_common_flags

    for name, help_text in _HELP.items():
        parser = subparsers.add_parser(name, help=help_text, description=help_text[0].upper()
                                       + help_text[1:] + ".")
        add_common_flags(parser, contract=FEATURES)
        parser.add_argument("--html", default=None, metavar="DIR",
                            help="write HTML reports here (default .funnelguard/reports/<date>/)")
        if name == "drift":
            parser.add_argument("--sample-size", type=int, default=None, metavar="N",
                                help="rows per column the drift tests use (default 20000, > 1000)")
            parser.add_argument("--multivariate", action="store_true",
                                help="also a domain classifier, reference window vs the day, "
                                     "per environment (check drift_multivariate)")
        if name == "freshness":
            parser.add_argument("--observed-at", dest="observed_at", default=None,
                                metavar="YYYY-MM-DDTHH:MM",
                                help="when this run looks, UTC (default now): a table without a "
                                     "landing column arrived when freshness first saw its rows")
        parser.set_defaults(handler=_handle, command_name=name)


def _handle(args: argparse.Namespace):
    """Flags -> project, engine, partition -> the registered command function -> RunResult."""
    from funnelguard.cli import connect_warehouse, project_of, store_url_of
    from funnelguard.warehouse import parse_date
    from monitors import commands

    partition = parse_date(args.date)
    project = project_of(args, FEATURES)
    engine = connect_warehouse(args, project)
    options = {"store_url": store_url_of(args, project), "html_dir": args.html}
    if args.command_name == "drift":
        options["sample_size"] = args.sample_size
        if args.multivariate:
            options["multivariate"] = True
    if args.command_name == "freshness" and args.observed_at is not None:
        options["observed_at"] = _observed_at(args.observed_at)
    run = {"drift": commands.run_drift, "skew": commands.run_skew,
           "freshness": commands.run_freshness}[args.command_name]
    try:
        return run(project, engine, partition, **options)
    finally:
        engine.dispose()


def _observed_at(text: str):
    """``--observed-at``: an ISO date-time, UTC unless it names an offset."""
    import datetime as dt

    from funnelguard.errors import InputError

    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--observed-at: expected an ISO date-time such as 2026-10-25T03:00 "
                         f"(UTC), found {text!r}") from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
