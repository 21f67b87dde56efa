"""Opening the store and writing runs into it (upserts keyed by command, dataset, env, partition).

Each run is stored with its provenance: the project file and the contract file its dataset
came from (:class:`Provenance`), so that its alerts are addressed from the contracts the run
actually used, whichever process flushes them later.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from funnelguard.errors import EnvironmentFailure, InputError
from funnelguard.findings import Finding, RunResult
from monitors.store.models import FindingRow, MetricRow, Run

if TYPE_CHECKING:
    from funnelguard.project import Project

__all__ = ["open_store", "Store", "fingerprint_of", "VERSION_TABLE", "Provenance",
           "provenance_of", "recording_project"]

VERSION_TABLE = "funnelguard_alembic_version"
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

    def record_run(self, result: RunResult, *,
                   project: Project | str | os.PathLike | None = None) -> int:
        """Store a run, replacing an earlier run with the same key; returns the run id.

        Args:
            result: the run.
            project: the project whose contracts the run used (or its file); see
                :func:`provenance_of` for what None means. Its alerts are addressed from it.
        """
        key = dict(command=result.command, dataset=result.dataset or "",
                   environment=result.environment or "", partition=result.partition or "")
        source = provenance_of(result, project)
        with self.session() as s, s.begin():
            old = s.scalars(sa.select(Run).filter_by(**key)).one_or_none()
            if old is not None:
                s.delete(old)
                s.flush()
            run = Run(**key, status=result.status,
                      error_kind=result.error.kind if result.error else None,
                      error_message=result.error.message if result.error else None,
                      artifacts=dict(result.artifacts), project=source.project,
                      contract=source.contract)
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
