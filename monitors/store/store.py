"""Opening the store and writing runs into it (upserts keyed by command, dataset, env, partition)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from funnelguard.errors import EnvironmentFailure, InputError
from funnelguard.findings import Finding, RunResult
from monitors.store.models import FindingRow, MetricRow, Run

__all__ = ["open_store", "Store", "fingerprint_of", "VERSION_TABLE"]

VERSION_TABLE = "funnelguard_alembic_version"
_MIGRATED: dict[str, Engine] = {}
_LOCK = threading.Lock()

def fingerprint_of(finding: Finding, dataset: str | None = None) -> str:
    """The identity of a problem across runs: check|dataset|environment|feature|task|segment."""
    parts = (finding.check, finding.dataset or dataset, finding.environment, finding.feature,
             finding.task, finding.segment)
    return "|".join(p or "" for p in parts)


def _migrate(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    here = Path(__file__).resolve().parent
    cfg = Config()
    cfg.set_main_option("script_location", str(here / "migrations"))
    cfg.set_main_option("version_table", VERSION_TABLE)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_store(url: str) -> Store:
    """Connect to the results store at ``url`` and migrate it to the latest schema.

    Raises:
        InputError: a malformed URL.
        EnvironmentFailure: the database cannot be reached.
    """
    with _LOCK:
        engine = _MIGRATED.get(url)
        if engine is None:
            try:
                parsed = sa.engine.make_url(url)
            except sa.exc.ArgumentError as exc:
                raise InputError(f"--store: expected a SQLAlchemy URL, found {url!r}") from exc
            if parsed.drivername in ("postgres", "postgresql"):
                parsed = parsed.set(drivername="postgresql+psycopg")
            if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(parsed)
            try:
                _migrate(engine)
            except sa.exc.OperationalError as exc:
                raise EnvironmentFailure(
                    f"results store unreachable at {parsed.render_as_string(hide_password=True)}: "
                    f"{exc.orig}") from exc
            _MIGRATED[url] = engine
    return Store(engine)


class Store:
    """Functions over one store database. Sessions are opened per call (at the edge)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def record_run(self, result: RunResult) -> int:
        """Store a run, replacing an earlier run with the same key; returns the run id."""
        key = dict(command=result.command, dataset=result.dataset or "",
                   environment=result.environment or "", partition=result.partition or "")
        with self.session() as s, s.begin():
            old = s.scalars(sa.select(Run).filter_by(**key)).one_or_none()
            if old is not None:
                s.delete(old)
                s.flush()
            run = Run(**key, status=result.status,
                      error_kind=result.error.kind if result.error else None,
                      error_message=result.error.message if result.error else None,
                      artifacts=dict(result.artifacts))
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
