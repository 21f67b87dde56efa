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
                  "impressions"),
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
    run = {"drift": commands.run_drift, "skew": commands.run_skew,
           "freshness": commands.run_freshness}[args.command_name]
    try:
        return run(project, engine, partition, **options)
    finally:
        engine.dispose()
