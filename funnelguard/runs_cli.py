"""``funnelguard runs list|show``: read runs back from the results store.

``runs list`` prints the stored runs, newest first, filtered by command, dataset, partition or
status; ``runs show ID`` one run with its findings, failures first. Both take ``--json`` (a
document on stdout) and ``--store``. They only read the store; nothing heavy is imported at
module level.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register", "list_runs", "show_run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``runs list`` and ``runs show``."""
    runs = subparsers.add_parser("runs", help="read stored runs back from the results store",
                                 description='Read stored runs back from the results store: list them (newest first) or show one with its findings.')
    sub = runs.add_subparsers(dest="runs_command", metavar="ACTION", parser_class=type(runs))
    sub.required = True
    ls = sub.add_parser("list", help="stored runs, newest first")
    ls.add_argument("--command", dest="run_command", default=None, help="only this command")
    ls.add_argument("--dataset", default=None, help="only this dataset (contract name)")
    ls.add_argument("--partition", default=None, metavar="YYYY-MM-DD", help="only this partition")
    ls.add_argument("--status", choices=("pass", "fail", "error"), default=None)
    ls.add_argument("--limit", type=int, default=50, metavar="N", help="at most N runs (default 50)")
    show = sub.add_parser("show", help="one run with its findings")
    show.add_argument("run_id", type=int, metavar="ID")
    for p in (ls, show):
        p.add_argument("--store", default=None, metavar="URL",
                       help="results store URL (default: $FUNNELGUARD_STORE, else the project's "
                            "`store:`, else sqlite:///.funnelguard/results.db)")
        p.add_argument("--project", default=None, metavar="PATH", help="project file (for its store)")
        p.add_argument("--json", dest="as_json", action="store_true", help="a JSON document on stdout")
    ls.set_defaults(handler=_list, command_name="runs list")
    show.set_defaults(handler=_show, command_name="runs show")


def _store(args: argparse.Namespace):
    from funnelguard.cli import store_url_of
    from monitors.store import open_store

    return open_store(store_url_of(args))


def _run_json(run) -> dict[str, Any]:
    return {"id": run.id, "command": run.command, "dataset": run.dataset,
            "environment": run.environment, "partition": run.partition, "status": run.status,
            "error": ({"kind": run.error_kind, "message": run.error_message}
                      if run.error_kind else None),
            "recorded_at": run.recorded_at.isoformat() if run.recorded_at else None,
            "artifacts": run.artifacts or {}}


def list_runs(store, *, command: str | None = None, dataset: str | None = None,
              partition: str | None = None, status: str | None = None,
              limit: int = 50) -> list[dict[str, Any]]:
    """Stored runs as documents, newest first."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from monitors.store.models import Run

    stmt = sa.select(Run).order_by(Run.partition.desc(), Run.recorded_at.desc(), Run.id.desc())
    for column, value in ((Run.command, command), (Run.dataset, dataset),
                          (Run.partition, partition), (Run.status, status)):
        if value is not None:
            stmt = stmt.where(column == value)
    with Session(store.engine) as s:
        return [_run_json(r) for r in s.scalars(stmt.limit(limit))]


def show_run(store, run_id: int) -> dict[str, Any]:
    """One stored run with its findings (failures first) and metrics count.

    Raises:
        InputError: no run has this id.
    """
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from funnelguard.errors import InputError
    from monitors.store.models import FindingRow, MetricRow, Run

    with Session(store.engine) as s:
        run = s.get(Run, run_id)
        if run is None:
            newest = s.scalar(sa.select(sa.func.max(Run.id)))
            raise InputError(f"runs show: expected a stored run id, found no run {run_id} "
                             f"(the newest is {newest})")
        doc = _run_json(run)
        rows = s.scalars(sa.select(FindingRow).where(FindingRow.run_id == run_id)
                         .order_by(FindingRow.passed, FindingRow.severity, FindingRow.id))
        doc["findings"] = [{"check": f.check, "passed": f.passed, "severity": f.severity,
                            "environment": f.environment or None, "feature": f.feature,
                            "task": f.task, "segment": f.segment, "value": f.value,
                            "threshold": f.threshold, "count": f.count, "message": f.message,
                            "examples": f.examples} for f in rows]
        doc["metrics"] = s.scalar(sa.select(sa.func.count()).select_from(MetricRow)
                                  .where(MetricRow.run_id == run_id))
    return doc


def _list(args: argparse.Namespace) -> int:
    from funnelguard.errors import EXIT_PASS, InputError

    if args.limit < 1:
        raise InputError(f"--limit: expected a positive number, found {args.limit}")
    runs = list_runs(_store(args), command=args.run_command, dataset=args.dataset,
                     partition=args.partition, status=args.status, limit=args.limit)
    if args.as_json:
        print(json.dumps({"runs": runs}, indent=2))
        return EXIT_PASS
    if not runs:
        print("no stored runs match", file=sys.stderr)
    for r in runs:
        about = " ".join(x for x in (r["dataset"], r["environment"]) if x)
        print(f"{r['id']:>6}  {r['partition'] or '-':<10}  {r['status']:<5}  "
              f"{r['command']:<10}  {about}")
    return EXIT_PASS


def _show(args: argparse.Namespace) -> int:
    from funnelguard.errors import EXIT_PASS

    doc = show_run(_store(args), args.run_id)
    if args.as_json:
        print(json.dumps(doc, indent=2, default=str))
        return EXIT_PASS
    print(f"run {doc['id']}: {doc['command']} {doc['partition']} "
          f"{doc['dataset']} {doc['environment']}: {doc['status']}")
    if doc["error"]:
        print(f"  {doc['error']['kind']} error: {doc['error']['message']}")
    passed = [f for f in doc["findings"] if f["passed"]]
    for f in doc["findings"]:
        if not f["passed"]:
            mark = "FAIL" if f["severity"] == "error" else "WARN"
            where = " ".join(x for x in (f["environment"], f["feature"], f["task"], f["segment"]) if x)
            print(f"{mark} {f['check']:<22} {where:<40} {f['message']}")
    print(f"ok   {len(passed)} checks passed; {doc['metrics']} metrics")
    for name, path in doc["artifacts"].items():
        print(f"  {name}: {path}")
    return EXIT_PASS
