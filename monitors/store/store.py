"""Opening the store and writing runs into it (upserts keyed by command, dataset, env, partition).

Each run is stored with its provenance: the project file and the contract file its dataset
came from (:class:`Provenance`), so that its alerts are addressed from the contracts the run
actually used, whichever process flushes them later.

Concurrent writers are safe: a run is written in one transaction per run key that locks the key
before reading it (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory transaction lock), and a
lock timeout, serialization failure or deadlock is retried a bounded number of times; processes
opening a fresh store at once migrate it once, under the same kind of lock. Every failure to
open or write the store is a :class:`~monitors.store.errors.StoreUnavailable` (exit 3) naming
the store, password hidden; :mod:`monitors.store.spool` keeps the run until it can be written.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import os
import random
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from funnelguard.errors import ConnectionRejected, InputError, database_connect_error
from funnelguard.findings import Finding, RunResult
from monitors.store.errors import is_transient, shown_url, store_failure
from monitors.store.models import FindingRow, MetricRow, Run

if TYPE_CHECKING:
    from alembic.config import Config

    from funnelguard.project import Project

__all__ = ["open_store", "Store", "fingerprint_of", "VERSION_TABLE", "Provenance",
           "provenance_of", "recording_project", "WRITE_ATTEMPTS"]

VERSION_TABLE = "funnelguard_alembic_version"
# Execution option of the sessions that write: SQLite begins them with BEGIN IMMEDIATE.
WRITE_LOCK = "funnelguard_write_lock"
SQLITE_BUSY_TIMEOUT_S = 30.0
# A write that meets a concurrent writer's lock, a serialization failure or a deadlock is
# retried this many times in all, with a short random back-off.
WRITE_ATTEMPTS = 6
_MIGRATED: dict[str, Engine] = {}
_LOCK = threading.Lock()
_RECORDING: contextvars.ContextVar[Project | str | None] = contextvars.ContextVar(
    "funnelguard_recording_project", default=None)


@dataclass(frozen=True)
class Provenance:
    """Where a run's contracts came from.

    Attributes:
        project: the project file (absolute), or None when unknown.
        contract: the contract file of the run's dataset (absolute), or None.
    """

    project: str | None = None
    contract: str | None = None


@contextlib.contextmanager
def recording_project(project: Project | str | os.PathLike | None) -> Iterator[None]:
    """Runs stored in this block (``record_run`` without ``project=``) belong to ``project``.

    For callers that store through an edge they do not control (the DAG tasks call
    ``funnelguard.commands.execute``, which stores the result).
    """
    token = _RECORDING.set(project if project is None or not isinstance(project, os.PathLike)
                           else str(project))
    try:
        yield
    finally:
        _RECORDING.reset(token)


def provenance_of(result: RunResult, project: Project | str | os.PathLike | None = None
                  ) -> Provenance:
    """The project and contract file behind ``result``.

    Args:
        result: the run.
        project: the run's project (or its file). None: the one of :func:`recording_project`,
            else the project ``find_project`` resolves (``$FUNNELGUARD_PROJECT``,
            ``./funnelguard.yaml``, the packaged one) when it has the result's dataset.

    Never raises: a project that cannot be loaded gives an empty provenance (alerts then go
    to the packaged contract of the dataset's name, else the default owner).
    """
    from funnelguard.errors import FunnelguardError
    from funnelguard.project import Project, find_project, load_project

    explicit = project if project is not None else _RECORDING.get()
    try:
        if isinstance(explicit, Project):
            loaded = explicit
        else:
            loaded = load_project(explicit if explicit is not None else find_project(None))
    except (FunnelguardError, OSError):
        return Provenance(str(Path(explicit).resolve()) if isinstance(explicit, str) else None)
    contract = None
    for c in loaded.contracts.values():
        if result.dataset and c.name == result.dataset:
            contract = str(Path(c.path).resolve())
    if explicit is None and contract is None:
        return Provenance()  # the run is not about the project found by default
    return Provenance(str(Path(loaded.path).resolve()), contract)

def fingerprint_of(finding: Finding, dataset: str | None = None) -> str:
    """The identity of a problem across runs: check|dataset|environment|feature|task|segment."""
    parts = (finding.check, finding.dataset or dataset, finding.environment, finding.feature,
             finding.task, finding.segment)
    return "|".join(p or "" for p in parts)


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    cfg.set_main_option("version_table", VERSION_TABLE)
    return cfg


def _at_head(engine: Engine, cfg: Config) -> bool:
    """Whether the store is already at the latest revision (read only: no write lock taken, so
    a read-only store that is up to date still opens for reading)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as conn:
        current = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}).get_current_heads()
    return set(current) == set(ScriptDirectory.from_config(cfg).get_heads())


def _migrate(engine: Engine) -> None:
    """Upgrade to head under a lock, so processes opening a fresh store at once migrate it once:
    SQLite's write lock (``BEGIN IMMEDIATE``), a PostgreSQL advisory transaction lock."""
    from alembic import command

    cfg = _alembic_config()
    if _at_head(engine, cfg):
        return
    with engine.execution_options(**{WRITE_LOCK: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                         {"k": _lock_id("migrate", VERSION_TABLE)})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")  # reads the revision again, under the lock


def _lock_id(*parts: str) -> int:
    """A signed 64-bit advisory lock id for ``parts`` (PostgreSQL ``pg_advisory_xact_lock``)."""
    digest = hashlib.sha256("|".join(("funnelguard", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _engine(parsed: sa.engine.URL) -> Engine:
    """An engine for the store. SQLite: a writing transaction (:data:`WRITE_LOCK`) begins with
    ``BEGIN IMMEDIATE``, so two writers queue on the database lock instead of one failing when
    it upgrades its read lock; other transactions keep pysqlite's own deferred ``BEGIN``; the
    busy timeout is long enough for queued writers."""
    sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict = {"pool_pre_ping": True}
    if sqlite and "timeout" not in parsed.query:
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    engine = sa.create_engine(parsed, **kwargs)
    if sqlite:
        @sa.event.listens_for(engine, "begin")
        def _begin(conn) -> None:
            options = conn.get_execution_options()
            dbapi_connection = conn.connection.dbapi_connection
            if options.get(WRITE_LOCK):
                dbapi_connection.isolation_level = None  # pysqlite begins nothing itself
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif options.get("isolation_level") != "AUTOCOMMIT":
                dbapi_connection.isolation_level = ""  # pysqlite's default: BEGIN before DML
    return engine


def open_store(url: str) -> Store:
    """Connect to the results store at ``url`` and migrate it to the latest schema.

    Raises:
        InputError: a malformed URL.
        ConnectionRejected: the server refused the URL's user, password, database or an
            option (exit 2: a retry cannot fix it).
        StoreUnavailable: the store cannot be reached, opened or migrated (unreachable,
            a directory, not a SQLite file, corrupt, read-only and not yet migrated ...);
            an :class:`EnvironmentFailure`, exit 3.
    """
    with _LOCK:
        engine = _MIGRATED.get(url)
        if engine is None:
            try:
                parsed = sa.engine.make_url(url)
            except (sa.exc.ArgumentError, ValueError) as exc:  # ValueError: a port not a number
                raise InputError(f"--store: expected a SQLAlchemy URL such as "
                                 f"sqlite:///path/results.db or postgresql+psycopg://user@host/db"
                                 f", found {shown_url(url)!r}") from exc
            if parsed.drivername in ("postgres", "postgresql"):
                parsed = parsed.set(drivername="postgresql+psycopg")
            engine = None
            try:
                if (parsed.get_backend_name() == "sqlite" and not parsed.query.get("uri")
                        and parsed.database not in (None, "", ":memory:")):
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                engine = _engine(parsed)
                _migrate(engine)
            except Exception as exc:
                if engine is not None:
                    engine.dispose()  # no file handle or connection left open on a bad store
                if isinstance(exc, sa.exc.DBAPIError):  # a server that refused us: exit 2
                    refused = database_connect_error(exc, shown_url(parsed), what="results store")
                    if isinstance(refused, ConnectionRejected):
                        raise refused from exc
                if (isinstance(exc, (sa.exc.SQLAlchemyError, OSError))
                        or type(exc).__module__.startswith("alembic")):
                    raise store_failure(parsed, exc, writing=False) from exc
                raise
            _MIGRATED[url] = engine
    return Store(engine)


class Store:
    """Functions over one store database. Sessions are opened per call (at the edge).

    Attributes:
        engine: the store's engine.
        url: its URL with the password hidden (for messages and the spool).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = shown_url(engine.url)
        self._writer = engine.execution_options(**{WRITE_LOCK: True})

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def writer(self) -> Session:
        """A session whose transactions take the write lock when they begin (SQLite
        ``BEGIN IMMEDIATE``: a concurrent writer waits for it instead of failing when it
        upgrades a read lock). Use it for read-then-write transactions."""
        return Session(self._writer, expire_on_commit=False)

    def record_run(self, result: RunResult, *,
                   project: Project | str | os.PathLike | None = None,
                   provenance: Provenance | None = None,
                   recorded_at: dt.datetime | None = None) -> int:
        """Store a run, replacing an earlier run with the same key; returns the run id.

        One transaction per run key, safe against concurrent writers of the same key (see
        :meth:`_write`): every one of them succeeds and one row per key remains.

        Args:
            result: the run.
            project: the project whose contracts the run used (or its file); see
                :func:`provenance_of` for what None means. Its alerts are addressed from it.
            provenance: the run's provenance, already resolved (a spooled run's); replaces
                ``project``.
            recorded_at: when the run happened (default: now).

        Raises:
            StoreUnavailable: the store cannot be written (exit 3); nothing was written.
        """
        source = provenance if provenance is not None else provenance_of(result, project)
        run_id = self._write(result, source, recorded_at, keep_newer=False)
        assert run_id is not None
        return run_id

    def record_if_newer(self, result: RunResult, *, provenance: Provenance,
                        recorded_at: dt.datetime) -> int | None:
        """Store a run recorded at ``recorded_at`` unless the store already holds a run of the
        same key recorded then or later (a spooled run synced twice, or superseded by a rerun):
        then nothing is written and None is returned.

        Raises:
            StoreUnavailable: the store cannot be written (exit 3); nothing was written.
        """
        return self._write(result, provenance, recorded_at, keep_newer=True)

    def _write(self, result: RunResult, source: Provenance, recorded_at: dt.datetime | None,
               *, keep_newer: bool) -> int | None:
        """The upsert: lock the run key, replace its row, queue alerts, commit.

        The key is locked before it is read (SQLite: the database write lock of
        ``BEGIN IMMEDIATE``; PostgreSQL: an advisory transaction lock on the key), so
        concurrent writers of one key queue instead of both inserting. A lock timeout,
        serialization failure or deadlock is retried :data:`WRITE_ATTEMPTS` times in all.
        """
        key = dict(command=result.command, dataset=result.dataset or "",
                   environment=result.environment or "", partition=result.partition or "")
        what = "run " + " ".join(v for v in key.values() if v)
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self.writer() as s, s.begin():
                    return self._replace(s, key, result, source, recorded_at, keep_newer)
            except (sa.exc.SQLAlchemyError, OSError) as exc:
                if attempt < WRITE_ATTEMPTS and is_transient(exc):
                    time.sleep(random.uniform(0.02, 0.1) * attempt)
                    continue
                raise store_failure(self.engine.url, exc, writing=True, what=what) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _replace(self, s: Session, key: dict[str, str], result: RunResult, source: Provenance,
                 recorded_at: dt.datetime | None, keep_newer: bool) -> int | None:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                      {"k": _lock_id("fg_runs", *key.values())})
        old = s.scalars(sa.select(Run).filter_by(**key)).one_or_none()
        if old is not None:
            if keep_newer and recorded_at is not None and old.recorded_at >= recorded_at:
                return None
            s.delete(old)
            s.flush()
        run = Run(**key, status=result.status,
                  error_kind=result.error.kind if result.error else None,
                  error_message=result.error.message if result.error else None,
                  artifacts=dict(result.artifacts), project=source.project,
                  contract=source.contract)
        if recorded_at is not None:
            run.recorded_at = recorded_at
        run.findings = [self._finding_row(f, result) for f in result.findings]
        run.metrics = [
            MetricRow(name=m.name, partition=result.partition or "", feature=m.feature,
                      task=m.task, environment=m.environment, segment=m.segment,
                      value=None if m.value is None else float(m.value))
            for m in result.metrics
        ]
        s.add(run)
        s.flush()
        # Alerts are queued in the same transaction as the findings that cause them.
        from monitors.alerts.outbox import enqueue_for_run

        enqueue_for_run(s, run, result)
        return run.id

    @staticmethod
    def _finding_row(f: Finding, result: RunResult) -> FindingRow:
        doc = f.to_json()
        return FindingRow(
            check=f.check, dataset=f.dataset or result.dataset or "",
            environment=f.environment or "", partition=result.partition or "",
            feature=f.feature, task=f.task, segment=f.segment, severity=f.severity,
            passed=bool(f.passed), value=doc["value"], threshold=doc["threshold"], count=f.count,
            message=f.message, examples=doc["examples"],
            fingerprint=fingerprint_of(f, result.dataset),
        )

    def findings(self, *, partition: str | None = None, command: str | None = None,
                 failed_only: bool = False) -> list[FindingRow]:
        """Stored findings, optionally filtered."""
        stmt = sa.select(FindingRow).join(Run)
        if partition is not None:
            stmt = stmt.where(FindingRow.partition == partition)
        if command is not None:
            stmt = stmt.where(Run.command == command)
        if failed_only:
            stmt = stmt.where(FindingRow.passed.is_(False))
        with self.session() as s:
            return list(s.scalars(stmt.order_by(FindingRow.id)))

    def runs(self, *, partition: str | None = None, commands: Iterable[str] | None = None) -> list[Run]:
        stmt = sa.select(Run)
        if partition is not None:
            stmt = stmt.where(Run.partition == partition)
        if commands is not None:
            stmt = stmt.where(Run.command.in_(list(commands)))
        with self.session() as s:
            return list(s.scalars(stmt.order_by(Run.id)))

    def first_failing_partition(self, fingerprint: str, before_or_on: str) -> str | None:
        """The earliest partition of the unbroken streak of failures of ``fingerprint`` ending at
        ``before_or_on`` — what an alert means by "since 2026-10-21"."""
        stmt = (sa.select(FindingRow.partition, FindingRow.passed)
                .where(FindingRow.fingerprint == fingerprint, FindingRow.partition <= before_or_on)
                .order_by(FindingRow.partition.desc()))
        with self.session() as s:
            rows = s.execute(stmt).all()
        since = None
        for partition, passed in rows:
            if passed:
                break
            since = partition
        return since
