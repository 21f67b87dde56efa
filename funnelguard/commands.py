"""The typed command layer: one plain function per check or job, one registry of their names.

Every check or job is a plain function ``(project, engine, partition-or-as-of, *, options) ->
RunResult`` living in its package (``contracts.commands.run_validate`` ...). Two thin adapters
call them: the CLI (each package's ``cli`` module parses flags, then calls the function) and the
DAG tasks (:mod:`funnelguard.orchestration.jobs` calls the function by its registered name).
Neither builds an argv for the other. :func:`execute` is the one edge both share: it turns a
raised :class:`~funnelguard.errors.FunnelguardError` into an error result, stores the run,
writes ``--json`` and returns the documented exit code.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funnelguard.errors import EXIT_FAIL, EXIT_PASS, FunnelguardError, InputError
from funnelguard.findings import ErrorInfo, RunResult

if TYPE_CHECKING:
    from funnelguard.project import Project

__all__ = [
    "JOBS",
    "DEFAULT_STORE",
    "job",
    "resolve_store_url",
    "resolve_warehouse_url",
    "execute",
    "write_json",
]

# The registry: command name -> "module:function". The names are the CLI's subcommands and the
# ``command`` of every stored run (docs/results.md); DAG tasks look functions up here.
JOBS: Mapping[str, str] = {
    "validate": "contracts.commands:run_validate",
    "drift": "monitors.commands:run_drift",
    "skew": "monitors.commands:run_skew",
    "freshness": "monitors.commands:run_freshness",
    "gate": "monitors.maturity.commands:run_gate",
    "train": "model.commands:run_train",
    "evaluate": "model.evaluation.commands:run_evaluate",
    "replay": "model.evaluation.commands:run_replay",
    "explain": "model.evaluation.commands:run_explain",
}

DEFAULT_STORE = "sqlite:///.funnelguard/results.db"


def job(name: str) -> Callable[..., RunResult]:
    """The registered function of command ``name``.

    Raises:
        InputError: ``name`` is not a registered command.
    """
    try:
        module, func = JOBS[name].split(":")
    except KeyError:
        raise InputError(f"expected a command of {sorted(JOBS)}, found {name!r}") from None
    return getattr(importlib.import_module(module), func)


def resolve_store_url(flag: str | None, project: Project | None) -> str:
    """``--store``, else ``$FUNNELGUARD_STORE``, else the project's ``store:``, else the default."""
    return (flag or os.environ.get("FUNNELGUARD_STORE")
            or (project.store if project is not None else None) or DEFAULT_STORE)


def resolve_warehouse_url(flag: str | None, project: Project) -> str:
    """``--warehouse``, else the project's ``warehouse:``.

    Raises:
        InputError: neither names a warehouse.
    """
    url = flag or project.warehouse
    if not url:
        raise InputError(f"--warehouse: expected a warehouse URL (the flag, or `warehouse:` in "
                         f"project {project.path}), found neither")
    return url


def write_json(path: str, result: RunResult) -> None:
    """Write the result document atomically (a reader never sees half a file)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(result.dumps() + "\n")
    tmp.replace(out)


def _partition_text(partition: Any) -> str | None:
    if isinstance(partition, dt.date):
        return partition.isoformat()
    return str(partition) if partition else None


@dataclass(frozen=True)
class Executed:
    """What :func:`execute` did: the exit code and the result (None for non-check commands)."""

    code: int
    result: RunResult | None


def execute(command: str, call: Callable[[], RunResult | int], *, partition: Any = None,
            store_url: str | None = None, json_out: str | None = None,
            environment: str | None = None, store_errors: bool = False,
            project: Project | str | None = None) -> Executed:
    """Run one command's function at the edge.

    Args:
        command: the command's name (for an error result).
        call: runs the command; returns a RunResult, or an int exit code (non-check commands).
        partition: the partition or as-of date, for an error result.
        store_url: store the result here (None: do not store).
        json_out: write the result document here.
        environment: recorded on an error result that names none.
        store_errors: store error results too (the DAG tasks do, so the nightly job sees
            "could not run" rather than "not run yet").
        project: the project (or its file) the command ran on: stored with the run, so its
            alerts are addressed from that project's contracts. None: the project the
            environment resolves.
    """
    try:
        outcome = call()
    except FunnelguardError as exc:
        result = RunResult(command=command, partition=_partition_text(partition),
                           error=ErrorInfo(kind=exc.kind, message=str(exc)),
                           environment=environment)
        code = exc.exit_code
        if store_errors and store_url:
            _store_error(result, store_url, project)
    else:
        if isinstance(outcome, int):
            return Executed(outcome, None)
        result = outcome
        if store_url:
            from monitors.store import open_store

            try:
                open_store(store_url).record_run(result, project=project)
            except FunnelguardError as exc:
                # The check ran: its result is kept in --json even when the store is down.
                if json_out:
                    write_json(json_out, result)
                print(f"funnelguard {command}: the result could not be stored: {exc}",
                      file=sys.stderr)
                return Executed(exc.exit_code, result)
        code = EXIT_FAIL if result.status == "fail" else EXIT_PASS
    if json_out:
        write_json(json_out, result)
    return Executed(code, result)


def _store_error(result: RunResult, store_url: str, project: Project | str | None) -> None:
    from monitors.store import open_store

    try:
        open_store(store_url).record_run(result, project=project)
    except Exception as exc:  # noqa: BLE001 - the original error is the one to report
        print(f"funnelguard: could not store the error run: {exc}")
