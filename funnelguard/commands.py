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

import contextlib
import datetime as dt
import errno
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funnelguard.errors import (
    EXIT_FAIL,
    EXIT_PASS,
    EnvironmentFailure,
    FunnelguardError,
    InputError,
)
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
    "audit": "model.audit:run_audit",
    "estimate": "model.evaluation.estimate_commands:run_estimate",
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
    """Write the result document atomically (a reader never sees half a file).

    Raises:
        InputError: ``path`` cannot be written (a directory, under a regular file, no
            permission ...): exit 2.
        EnvironmentFailure: the disk is full or failing: exit 3.
    """
    out = Path(path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # unique: concurrent writers
    try:
        if out.is_dir():
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(out))
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(result.dumps() + "\n")
        tmp.replace(out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise _document_error(path, exc) from exc


def _document_error(path: str, exc: OSError) -> FunnelguardError:
    if isinstance(exc, IsADirectoryError) and Path(path).is_dir():
        found = "a directory"
    elif isinstance(exc, (FileExistsError, NotADirectoryError)):
        found = f"a regular file where its folder should be ({exc.filename})"
    else:
        found = f"{exc.strerror or exc} ({exc.filename or path})"
    message = f"--json {path}: expected a file path it can write, found {found}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
        return EnvironmentFailure(message)
    return InputError(message)


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
            project: Project | str | Callable[[], Project | str | None] | None = None,
            ) -> Executed:
    """Run one command's function at the edge.

    The ``--json`` document is written before the run is stored, so a store that fails (or
    hangs and is killed) never costs the document. A run the store cannot take is an
    environment failure (exit 3, one line on stderr naming the store) and is kept in the local
    spool (:mod:`monitors.store.spool`), which the next successful store write, or
    ``funnelguard store sync``, writes to the store once. A ``--json`` path that cannot be
    written is exit 2 (one line), and the run is still stored.

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
            environment resolves. A callable is asked after ``call`` ran (the CLI's handler
            knows the project it used, ``--contract`` included, only then).
    """
    try:
        outcome = call()
    except FunnelguardError as exc:
        result = RunResult(command=command, partition=_partition_text(partition),
                           error=ErrorInfo(kind=exc.kind, message=str(exc)),
                           environment=environment)
        if json_out:
            _document(command, json_out, result)
        if store_errors and store_url:
            _store(command, result, store_url, project)  # the original error is the one to report
        return Executed(exc.exit_code, result)
    if isinstance(outcome, int):
        return Executed(outcome, None)
    result = outcome
    unwritten = _document(command, json_out, result) if json_out else None
    stored = _store(command, result, store_url, project) if store_url else None
    # A document that cannot be written is the user's to fix (a retry cannot): it wins.
    failure = unwritten or stored
    if failure is not None:
        return Executed(failure.exit_code, result)
    return Executed(EXIT_FAIL if result.status == "fail" else EXIT_PASS, result)


def _document(command: str, json_out: str, result: RunResult) -> FunnelguardError | None:
    """Write ``--json``; on failure print one line and return the error (the run is still
    stored)."""
    try:
        write_json(json_out, result)
    except FunnelguardError as exc:
        print(f"funnelguard {command}: {exc}", file=sys.stderr)
        return exc
    return None


def _store(command: str, result: RunResult, store_url: str,
           project: Project | str | Callable[[], Project | str | None] | None,
           ) -> FunnelguardError | None:
    """Store the run (or spool it); print one line on stderr for what went wrong or what was
    synced from the spool. Returns the failure, None when the run is in the store."""
    from monitors.store.spool import record_or_spool

    if callable(project):
        project = project()
    stored = record_or_spool(result, store_url, project=project)
    if stored.failure is not None:
        kept = (f"; kept in the spool at {stored.spooled} (the next run that reaches the store, "
                "or `funnelguard store sync`, writes it)" if stored.spooled else "")
        print(f"funnelguard {command}: the result could not be stored: {stored.failure}{kept}",
              file=sys.stderr)
        return stored.failure
    synced = stored.synced
    if synced is not None and (synced.synced or synced.failure is not None):
        names = ", ".join(entry.describe() for entry, _ in synced.synced)
        line = f"funnelguard {command}: wrote {len(synced.synced)} spooled run(s) to the store"
        line += f" ({names})" if names else ""
        if synced.failure is not None:
            line += f"; {len(synced.kept)} still spooled: {synced.failure}"
        print(line, file=sys.stderr)
    return None
