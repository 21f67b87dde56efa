"""The local spool: runs that could not be stored wait here, then go to the store exactly once.

When the results store cannot be opened or written (:class:`StoreUnavailable`: unreachable,
read-only, not a SQLite file, corrupt, a directory, the connection lost mid-write),
:func:`record_or_spool` writes the run to ``$FUNNELGUARD_SPOOL`` (default
``.funnelguard/spool`` in the working directory): one JSON file per (store, run key), written
atomically, holding the whole result (findings, metrics, artifacts), its provenance (project and
contract file, so its alerts are addressed from the contracts it used), the store it was meant
for (password hidden) and when it ran. A later rerun of the same key replaces the file.

:func:`sync` writes a store's spooled runs: each file is claimed by renaming it, written with
the run key's upsert (:meth:`Store.record_if_newer`: a run the store already holds from that
time or later is not written again) and deleted only after the commit. It runs after every
successful store write and from ``funnelguard store sync``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from funnelguard.errors import ConnectionRejected, EnvironmentFailure, FunnelguardError
from funnelguard.findings import ErrorInfo, Finding, Metric, RunResult
from monitors.store.errors import shown_url
from monitors.store.store import Provenance, Store, open_store, provenance_of

if TYPE_CHECKING:
    from funnelguard.project import Project

__all__ = ["SPOOL_ENV", "DEFAULT_SPOOL", "SPOOL_FORMAT", "SpooledRun", "Unreadable",
           "SyncReport", "Stored", "spool_dir", "store_identity", "spool_run", "pending",
           "sync", "record_or_spool"]

SPOOL_ENV = "FUNNELGUARD_SPOOL"
DEFAULT_SPOOL = ".funnelguard/spool"
SPOOL_FORMAT = 1
_CLAIM = ".claimed-"
_RESULT_KEYS = ("command", "partition", "status", "findings", "error", "dataset", "environment",
                "artifacts")


def spool_dir(directory: str | os.PathLike | None = None) -> Path:
    """``directory``, else ``$FUNNELGUARD_SPOOL``, else ``.funnelguard/spool`` (absolute)."""
    return Path(directory or os.environ.get(SPOOL_ENV) or DEFAULT_SPOOL).resolve()


def store_identity(url: str) -> str:
    """The store a URL names, as the spool records it: password hidden, ``postgresql://`` read
    as psycopg, a relative SQLite path made absolute (from the working directory)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return shown_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    database = parsed.database
    if (parsed.get_backend_name() == "sqlite" and database not in (None, "", ":memory:")
            and not database.startswith("file:")):
        parsed = parsed.set(database=str(Path(database).resolve()))
    return shown_url(parsed)


@dataclass(frozen=True)
class SpooledRun:
    """A run waiting in the spool.

    Attributes:
        path: its file.
        store: the store it is meant for (:func:`store_identity`).
        result: the run.
        provenance: its project and contract file.
        recorded_at: when it ran (UTC); stored as the run's ``recorded_at``.
        reason: why it could not be stored.
    """

    path: Path
    store: str
    result: RunResult
    provenance: Provenance
    recorded_at: dt.datetime
    reason: str

    def describe(self) -> str:
        r = self.result
        return " ".join(x for x in (r.command, r.dataset, r.environment, r.partition) if x)


@dataclass(frozen=True)
class Unreadable:
    """A spool file that is not a spooled run (edited, or written by another version)."""

    path: Path
    problem: str


@dataclass
class SyncReport:
    """What :func:`sync` did: runs written, runs the store already had from that time or later
    (their files deleted), runs kept (store failed), runs meant for other stores, bad files."""

    store: str
    synced: list[tuple[SpooledRun, int]] = field(default_factory=list)
    superseded: list[SpooledRun] = field(default_factory=list)
    kept: list[SpooledRun] = field(default_factory=list)
    other_stores: list[SpooledRun] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    failure: FunnelguardError | None = None


@dataclass(frozen=True)
class Stored:
    """What :func:`record_or_spool` did.

    Attributes:
        run_id: the stored run's id (None when not stored).
        failure: why it was not stored (None when stored).
        spooled: the spool file keeping it (None when stored, or when the spool failed too).
        synced: the earlier spooled runs written after it (None when no sync ran).
    """

    run_id: int | None = None
    failure: FunnelguardError | None = None
    spooled: Path | None = None
    synced: SyncReport | None = None


def _file_name(store: str, result: RunResult) -> str:
    key = (result.command, result.dataset or "", result.environment or "", result.partition or "")
    digest = hashlib.sha256("\x1f".join((store, *key)).encode()).hexdigest()[:12]
    readable = "__".join(re.sub(r"[^A-Za-z0-9_.-]+", "-", k) or "-" for k in key)
    return f"{readable[:150]}__{digest}.json"


def _metric_json(metric: Metric) -> dict[str, Any]:
    doc = dataclasses.asdict(metric)
    if doc["value"] is not None:
        value = float(doc["value"])
        doc["value"] = value if math.isfinite(value) else str(value)  # 'nan', 'inf', '-inf'
    return doc


def _document(result: RunResult, store: str, provenance: Provenance,
              recorded_at: dt.datetime, reason: str) -> dict[str, Any]:
    return {
        "spool_format": SPOOL_FORMAT,
        "store": store,
        "recorded_at": recorded_at.astimezone(dt.UTC).isoformat(),
        "reason": reason,
        "project": provenance.project,
        "contract": provenance.contract,
        "result": result.to_json(),
        "metrics": [_metric_json(m) for m in result.metrics],
    }


def spool_run(result: RunResult, store_url: str, provenance: Provenance, reason: str, *,
              recorded_at: dt.datetime | None = None,
              directory: str | os.PathLike | None = None) -> Path:
    """Keep ``result`` in the spool for the store at ``store_url``; returns its file.

    The file is written beside its final name and renamed into place (readers never see half a
    file), readable by its owner only. An earlier spooled run of the same key is replaced.

    Raises:
        OSError: the spool folder cannot be created or written.
    """
    folder = spool_dir(directory)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = store_identity(store_url)
    when = recorded_at or dt.datetime.now(dt.UTC)
    target = folder / _file_name(store, result)
    tmp = folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    text = json.dumps(_document(result, store, provenance, when, reason), indent=1)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _result_of(doc: dict[str, Any], metrics: Iterable[dict[str, Any]]) -> RunResult:
    error = doc.get("error")
    return RunResult(
        command=doc["command"], partition=doc.get("partition"),
        findings=tuple(Finding.from_json(f) for f in doc.get("findings") or ()),
        error=ErrorInfo(error["kind"], error["message"]) if error else None,
        dataset=doc.get("dataset"), environment=doc.get("environment"),
        metrics=tuple(Metric(**{**m, "value": None if m.get("value") is None
                                else float(m["value"])}) for m in metrics),
        artifacts=doc.get("artifacts") or {},
        details={k: v for k, v in doc.items() if k not in _RESULT_KEYS})


def _read(path: Path) -> SpooledRun | Unreadable:
    try:
        doc = json.loads(path.read_text())
        if doc.get("spool_format") != SPOOL_FORMAT:
            return Unreadable(path, f"expected spool_format {SPOOL_FORMAT}, found "
                                    f"{doc.get('spool_format')!r}")
        return SpooledRun(path, doc["store"], _result_of(doc["result"], doc.get("metrics", ())),
                          Provenance(doc.get("project"), doc.get("contract")),
                          dt.datetime.fromisoformat(doc["recorded_at"]), doc.get("reason", ""))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return Unreadable(path, f"expected a spooled run (JSON), found {type(exc).__name__}: {exc}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _orphaned_claim(path: Path) -> bool:
    """A claimed file whose claiming process is gone (killed between claim and delete)."""
    try:
        pid = int(path.name.rsplit(_CLAIM, 1)[1].split(".", 1)[0])
    except (IndexError, ValueError):
        return False
    return pid != os.getpid() and not _alive(pid)


def pending(directory: str | os.PathLike | None = None) -> list[SpooledRun | Unreadable]:
    """Every spooled run (and every unreadable spool file), oldest first."""
    folder = spool_dir(directory)
    if not folder.is_dir():
        return []
    paths = [p for p in folder.iterdir() if not p.name.startswith(".")
             and (p.name.endswith(".json") or (_CLAIM in p.name and _orphaned_claim(p)))]
    entries = [_read(p) for p in paths]
    runs = sorted((e for e in entries if isinstance(e, SpooledRun)),
                  key=lambda e: (e.recorded_at, e.path.name))
    return [*runs, *sorted((e for e in entries if isinstance(e, Unreadable)),
                           key=lambda e: e.path.name)]


def _claim(path: Path) -> Path | None:
    """Rename the file to one only this process uses; None when another process took it."""
    base = path.name.split(_CLAIM, 1)[0]
    claimed = path.with_name(f"{base}{_CLAIM}{os.getpid()}.{secrets.token_hex(4)}")
    try:
        os.rename(path, claimed)
    except FileNotFoundError:
        return None
    return claimed


def _release(claimed: Path) -> None:
    """Put a claimed file back; a newer spooled run of the key written meanwhile wins."""
    original = claimed.with_name(claimed.name.split(_CLAIM, 1)[0])
    try:
        os.link(claimed, original)
    except FileExistsError:
        pass
    except OSError:  # no hard links here: rename, unless a newer file took the name
        if not original.exists():
            os.replace(claimed, original)
            return
    claimed.unlink(missing_ok=True)


def sync(store: Store, store_url: str, *,
         directory: str | os.PathLike | None = None) -> SyncReport:
    """Write the spooled runs meant for this store to it, each once, oldest first.

    Args:
        store: the open store.
        store_url: its URL (which spooled runs are meant for it: :func:`store_identity`).
        directory: the spool folder (default :func:`spool_dir`).

    Never raises for a store failure: the run being written and the ones after it are kept,
    and the report's ``failure`` says why.
    """
    report = SyncReport(store_identity(store_url))
    for entry in pending(directory):
        if isinstance(entry, Unreadable):
            report.unreadable.append(entry)
            continue
        if entry.store != report.store:
            report.other_stores.append(entry)
            continue
        if report.failure is not None:
            report.kept.append(entry)
            continue
        claimed = _claim(entry.path)
        if claimed is None:
            continue  # another process is syncing it
        try:
            run_id = store.record_if_newer(entry.result, provenance=entry.provenance,
                                           recorded_at=entry.recorded_at)
        except FunnelguardError as exc:
            _release(claimed)
            report.failure = exc
            report.kept.append(entry)
            continue
        except BaseException:
            _release(claimed)
            raise
        claimed.unlink(missing_ok=True)  # only after the commit
        if run_id is None:
            report.superseded.append(entry)
        else:
            report.synced.append((entry, run_id))
    return report


def record_or_spool(result: RunResult, store_url: str, *,
                    project: Project | str | os.PathLike | None = None,
                    directory: str | os.PathLike | None = None) -> Stored:
    """Store ``result``; if the store fails, keep it in the spool. Then sync the spool.

    Args:
        result: the run.
        store_url: the store.
        project: the run's project (or its file), for its provenance (:func:`provenance_of`).
        directory: the spool folder (default :func:`spool_dir`).

    Returns:
        What happened. ``failure`` is a :class:`StoreUnavailable` (exit 3; the run is spooled
        unless the spool failed too, which the failure's message then says), a
        :class:`ConnectionRejected` (exit 2: the server refused the URL's credentials or
        database; spooled too, for a sync once the connection is fixed) or an
        :class:`InputError` for a malformed URL (exit 2; nothing spooled: no store to sync to).
    """
    recorded_at = dt.datetime.now(dt.UTC)
    source = provenance_of(result, project)
    try:
        store = open_store(store_url)
        run_id = store.record_run(result, provenance=source, recorded_at=recorded_at)
    except (EnvironmentFailure, ConnectionRejected) as exc:
        try:
            path = spool_run(result, store_url, source, str(exc), recorded_at=recorded_at,
                             directory=directory)
        except OSError as spool_exc:
            both = (f"{exc}; and the run could not be kept in the spool "
                    f"{spool_dir(directory)}: {spool_exc.strerror or spool_exc}")
            return Stored(failure=ConnectionRejected(both)
                          if isinstance(exc, ConnectionRejected) else EnvironmentFailure(both))
        return Stored(failure=exc, spooled=path)
    except FunnelguardError as exc:
        return Stored(failure=exc)
    return Stored(run_id=run_id, synced=sync(store, store_url, directory=directory))
