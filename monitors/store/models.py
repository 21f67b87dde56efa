"""Tables of the results store (SQLAlchemy 2 declarative models).

Every part of funnelguard writes here: checks (runs, findings, metrics), alerts (outbox, alert
state), the gate, training (training runs) and published models. Migrations live in
``migrations/`` (Alembic, own version table ``funnelguard_alembic_version``), so the store can
share a database with Airflow's metadata.

Key columns that would be NULL (no dataset, no environment) hold ``''`` so that the unique keys
work on every database; :func:`monitors.store.Store.record_run` converts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from funnelguard.warehouse import UTCDateTime

__all__ = [
    "Base",
    "Run",
    "FindingRow",
    "MetricRow",
    "AlertOutbox",
    "AlertState",
    "TrainingRun",
    "ModelRow",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


class Run(Base):
    """One command's run on one (command, dataset, environment, partition); a rerun replaces it."""

    __tablename__ = "fg_runs"
    __table_args__ = (sa.UniqueConstraint("command", "dataset", "environment", "partition",
                                          name="uq_fg_runs_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    command: Mapped[str] = mapped_column(sa.String(64))
    dataset: Mapped[str] = mapped_column(sa.String(128), default="")
    environment: Mapped[str] = mapped_column(sa.String(32), default="")
    partition: Mapped[str] = mapped_column(sa.String(32), default="")
    status: Mapped[str] = mapped_column(sa.String(16))
    error_kind: Mapped[str | None] = mapped_column(sa.String(16))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    artifacts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Where the run's contracts came from (NULL for runs stored before revision 0002).
    project: Mapped[str | None] = mapped_column(sa.Text)
    contract: Mapped[str | None] = mapped_column(sa.Text)

    findings: Mapped[list[FindingRow]] = relationship(
        back_populates="run", cascade="all, delete-orphan")
    metrics: Mapped[list[MetricRow]] = relationship(
        back_populates="run", cascade="all, delete-orphan")


class FindingRow(Base):
    """A stored finding. ``fingerprint`` = check|dataset|environment|feature|task|segment."""

    __tablename__ = "fg_findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("fg_runs.id", ondelete="CASCADE"), index=True)
    check: Mapped[str] = mapped_column(sa.String(64))
    dataset: Mapped[str] = mapped_column(sa.String(128), default="")
    environment: Mapped[str] = mapped_column(sa.String(32), default="")
    partition: Mapped[str] = mapped_column(sa.String(32), default="", index=True)
    feature: Mapped[str | None] = mapped_column(sa.String(128))
    task: Mapped[str | None] = mapped_column(sa.String(32))
    segment: Mapped[str | None] = mapped_column(sa.String(128))
    severity: Mapped[str] = mapped_column(sa.String(16))
    passed: Mapped[bool] = mapped_column(sa.Boolean)
    value: Mapped[Any] = mapped_column(sa.JSON, nullable=True)
    threshold: Mapped[Any] = mapped_column(sa.JSON, nullable=True)
    count: Mapped[int | None] = mapped_column(sa.BigInteger)
    message: Mapped[str] = mapped_column(sa.Text, default="")
    examples: Mapped[Any] = mapped_column(sa.JSON, nullable=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(512), index=True)

    run: Mapped[Run] = relationship(back_populates="findings")


class MetricRow(Base):
    """A number kept over time: drift score, default rate, mismatch rate, loss, AUC ..."""

    __tablename__ = "fg_metrics"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("fg_runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    partition: Mapped[str] = mapped_column(sa.String(32), default="", index=True)
    feature: Mapped[str | None] = mapped_column(sa.String(128))
    task: Mapped[str | None] = mapped_column(sa.String(32))
    environment: Mapped[str | None] = mapped_column(sa.String(32))
    segment: Mapped[str | None] = mapped_column(sa.String(128))
    value: Mapped[float | None] = mapped_column(sa.Float(precision=53))

    run: Mapped[Run] = relationship(back_populates="metrics")


class AlertOutbox(Base):
    """A message waiting for (or done with) delivery. Written in the same transaction as the
    findings that caused it; delivered by ``funnelguard alerts flush``."""

    __tablename__ = "fg_alert_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16), default="alert")  # alert | resolution | training
    group_key: Mapped[str] = mapped_column(sa.String(512), index=True)
    dataset: Mapped[str] = mapped_column(sa.String(128), default="")
    environment: Mapped[str] = mapped_column(sa.String(32), default="")
    partition: Mapped[str] = mapped_column(sa.String(32), default="")
    severity: Mapped[str] = mapped_column(sa.String(16), default="error")
    fingerprints: Mapped[list[Any]] = mapped_column(default=list)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()
    # The project file and the dataset's contract file of the run that queued it: owners, PII
    # fields and the stages affected are read from them at flush time (NULL before 0002:
    # the packaged contract of the dataset's name).
    project: Mapped[str | None] = mapped_column(sa.Text)
    contract: Mapped[str | None] = mapped_column(sa.Text)


class AlertState(Base):
    """Per-fingerprint memory for dedup, repeat counts, mutes and resolution."""

    __tablename__ = "fg_alert_state"

    fingerprint: Mapped[str] = mapped_column(sa.String(512), primary_key=True)
    check: Mapped[str] = mapped_column(sa.String(64))
    dataset: Mapped[str] = mapped_column(sa.String(128), default="")
    environment: Mapped[str] = mapped_column(sa.String(32), default="")
    feature: Mapped[str | None] = mapped_column(sa.String(128))
    segment: Mapped[str | None] = mapped_column(sa.String(128))
    status: Mapped[str] = mapped_column(sa.String(16), default="open")  # open | resolved
    first_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)
    first_partition: Mapped[str | None] = mapped_column(sa.String(32))
    last_sent_at: Mapped[dt.datetime | None] = mapped_column()
    repeats_since_sent: Mapped[int] = mapped_column(default=0)
    muted_until: Mapped[dt.datetime | None] = mapped_column()
    mute_reason: Mapped[str | None] = mapped_column(sa.Text)
    last_message: Mapped[str | None] = mapped_column(sa.Text)


class TrainingRun(Base):
    """A training job: outcome, guard verdict and where its artefacts are."""

    __tablename__ = "fg_training_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[str] = mapped_column(sa.String(32), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))  # pass | fail | error
    out_dir: Mapped[str] = mapped_column(sa.Text)
    anomaly: Mapped[str | None] = mapped_column(sa.String(64))
    verdict: Mapped[str | None] = mapped_column(sa.String(32))
    bundle_path: Mapped[str | None] = mapped_column(sa.Text)
    steps: Mapped[int | None] = mapped_column()
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column()


class ModelRow(Base):
    """A published model directory; at most one champion."""

    __tablename__ = "fg_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(128), unique=True)
    path: Mapped[str] = mapped_column(sa.Text)
    as_of: Mapped[str] = mapped_column(sa.String(32))
    training_run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("fg_training_runs.id"))
    is_champion: Mapped[bool] = mapped_column(default=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
