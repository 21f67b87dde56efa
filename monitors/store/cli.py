"""``funnelguard store sync``: write the runs kept in the local spool to the results store.

A run whose store could not take it (exit 3) waits in the spool (``$FUNNELGUARD_SPOOL``, else
``.funnelguard/spool``); the next run that reaches its store writes it, and so does this
command. Each run is written once (the run key's upsert; a run the store already holds from
the same time or later is not written again) and its file deleted after the commit. Exit 0 when
nothing is left for the store, 3 while the store still fails (the runs stay spooled), 2 when a
spool file is not a spooled run. Nothing heavy is imported until the handler runs.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(subparsers) -> None:
    """Add ``store sync`` to the ``funnelguard`` parser."""
    store = subparsers.add_parser(
        "store", help="the results store: write runs kept in the local spool (sync)",
        description='Write the runs kept in the local spool (a store that could not take them) to the results store, each once.')
    actions = store.add_subparsers(dest="store_action", metavar="ACTION",
                                   parser_class=type(store))
    actions.required = True
    sync = actions.add_parser(
        "sync", help="write the spooled runs meant for the store to it, each once "
                     "(exit 3 while the store fails)")
    sync.add_argument("--store", default=None, metavar="URL",
                      help="results store URL (default: $FUNNELGUARD_STORE, else the project's "
                           "`store:`, else sqlite:///.funnelguard/results.db)")
    sync.add_argument("--project", default=None, metavar="PATH",
                      help="project file (for its `store:`)")
    sync.add_argument("--spool", default=None, metavar="DIR",
                      help="spool folder (default: $FUNNELGUARD_SPOOL, else .funnelguard/spool)")
    sync.set_defaults(handler=_sync, command_name="store sync")


def _sync(args: argparse.Namespace) -> int:
    from funnelguard.cli import store_url_of
    from funnelguard.errors import (
        EXIT_INPUT,
        EXIT_PASS,
        ConnectionRejected,
        EnvironmentFailure,
    )
    from monitors.store.spool import (
        SyncReport,
        Unreadable,
        pending,
        spool_dir,
        store_identity,
        sync,
    )
    from monitors.store.store import open_store

    url = store_url_of(args)
    folder = spool_dir(args.spool)
    try:
        report = sync(open_store(url), url, directory=folder)
    except (EnvironmentFailure, ConnectionRejected) as exc:  # cannot open it: all stays
        report = SyncReport(store_identity(url), failure=exc)
        for entry in pending(folder):
            if isinstance(entry, Unreadable):
                report.unreadable.append(entry)
            elif entry.store == report.store:
                report.kept.append(entry)
            else:
                report.other_stores.append(entry)
    for entry, run_id in report.synced:
        ran = entry.recorded_at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"synced     {entry.describe():<60} run #{run_id} (ran {ran} UTC)")
    for entry in report.superseded:
        print(f"superseded {entry.describe():<60} the store holds a run of this key from then or "
              "later; spool file removed")
    for entry in report.kept:
        print(f"kept       {entry.describe():<60} {entry.path}")
    for entry in report.other_stores:
        print(f"other      {entry.describe():<60} meant for store {entry.store} (--store)")
    for bad in report.unreadable:
        print(f"unreadable {bad.path}: {bad.problem}")
    print(f"funnelguard store sync: {len(report.synced)} synced, {len(report.superseded)} "
          f"superseded, {len(report.kept)} kept, {len(report.other_stores)} for other stores; "
          f"store {report.store}, spool {folder}")
    if report.failure is not None:
        print(f"funnelguard store sync: {report.failure}", file=sys.stderr)
        return report.failure.exit_code
    return EXIT_INPUT if report.unreadable else EXIT_PASS
