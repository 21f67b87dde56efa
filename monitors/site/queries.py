"""What the site reads from the results store: plain rows, a few aggregate queries each.

Every function takes a SQLAlchemy ``Session`` and returns frozen dataclasses or plain dicts, so
the page renderers never touch the database. Queries select columns (not ORM entities) and
aggregate in SQL: a store of 10,000 runs is read in a handful of statements.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitors.store.models import FindingRow, MetricRow, ModelRow, Run, TrainingRun

__all__ = ["RunSummary", "FindingView", "MetricPoint", "VolumePoint", "run_summaries",
           "findings_of", "metrics_of", "trend_metrics", "volume_points", "training_runs",
           "models", "CHUNK"]

CHUNK = 500  # ids per IN (...) list: well under every database's parameter limit


@dataclass(frozen=True)
class RunSummary:
    """One stored run with its failing checks tallied.

    Attributes:
        failing: ``{(check, severity): count}`` of the run's failing findings.
        findings: how many findings the run has.
    """

    id: int
    command: str
    dataset: str
    environment: str
    partition: str
    status: str
    error_kind: str | None
    error_message: str | None
    recorded_at: dt.datetime | None
    project: str | None
    contract: str | None
    artifacts: dict[str, Any]
    failing: dict[tuple[str, str], int] = field(default_factory=dict)
    findings: int = 0

    @property
    def stamp(self) -> str:
        """What identifies this version of the run: its id and when it was recorded."""
        return f"{self.id}@{self.recorded_at.isoformat() if self.recorded_at else ''}"

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.command, self.dataset, self.environment, self.partition)

    @property
    def failed(self) -> int:
        return sum(self.failing.values())


@dataclass(frozen=True)
class FindingView:
    """A stored finding as the run page shows it (examples as stored: already redacted).

    ``value``, ``threshold`` and ``examples`` are decoded from their stored JSON text when
    read: most findings of a store pass and are only counted, never shown one by one.
    """

    check: str
    passed: bool
    severity: str
    environment: str
    feature: str | None
    task: str | None
    segment: str | None
    value_json: str | None
    threshold_json: str | None
    count: int | None
    message: str
    examples_json: str | None

    @property
    def value(self) -> Any:
        return _decode(self.value_json)

    @property
    def threshold(self) -> Any:
        return _decode(self.threshold_json)

    @property
    def examples(self) -> Any:
        return _decode(self.examples_json)


@dataclass(frozen=True)
class MetricPoint:
    """One stored metric value, with its run's dataset and command."""

    dataset: str
    command: str
    partition: str
    name: str
    feature: str | None
    task: str | None
    environment: str | None
    segment: str | None
    value: float | None


@dataclass(frozen=True)
class VolumePoint:
    """A stored volume finding: rows of a partition and the accepted band."""

    dataset: str
    partition: str
    environment: str
    rows: float | None
    low: float | None
    high: float | None


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield list(ids[i:i + CHUNK])


def run_summaries(s: Session) -> list[RunSummary]:
    """Every stored run, with its failing checks tallied (two queries)."""
    counts: dict[int, int] = defaultdict(int)
    failing: dict[int, dict[tuple[str, str], int]] = defaultdict(dict)
    tally = (sa.select(FindingRow.run_id, FindingRow.check, FindingRow.severity,
                       FindingRow.passed, sa.func.count())
             .group_by(FindingRow.run_id, FindingRow.check, FindingRow.severity,
                       FindingRow.passed))
    for run_id, check, severity, passed, n in s.connection().execute(tally):
        counts[run_id] += n
        if not passed:
            failing[run_id][(check, severity)] = n
    cols = (Run.id, Run.command, Run.dataset, Run.environment, Run.partition, Run.status,
            Run.error_kind, Run.error_message, Run.recorded_at, Run.project, Run.contract,
            Run.artifacts)
    out = []
    for row in s.connection().execute(sa.select(*cols).order_by(Run.id)):
        out.append(RunSummary(*row[:-1], artifacts=dict(row[-1] or {}),
                              failing=failing.get(row[0], {}), findings=counts.get(row[0], 0)))
    return out


def _json_text(column):
    """A JSON column read as its text (decoded here, only where shown: far cheaper than the
    type's per-value result processing over hundreds of thousands of rows)."""
    return sa.cast(column, sa.Text)


def _decode(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def findings_of(s: Session, run_ids: Sequence[int] | None) -> dict[int, list[FindingView]]:
    """Findings per run (all runs when ``run_ids`` is None), failures first within a run:
    failing errors, failing warnings and infos, then passing checks, each in stored order."""
    cols = (FindingRow.run_id, FindingRow.check, FindingRow.passed, FindingRow.severity,
            FindingRow.environment, FindingRow.feature, FindingRow.task, FindingRow.segment,
            _json_text(FindingRow.value), _json_text(FindingRow.threshold), FindingRow.count,
            FindingRow.message, _json_text(FindingRow.examples))
    stmts = ([sa.select(*cols)] if run_ids is None else
             [sa.select(*cols).where(FindingRow.run_id.in_(chunk)) for chunk in _chunks(run_ids)])
    out: dict[int, list[FindingView]] = defaultdict(list)
    for stmt in stmts:
        ordered = stmt.order_by(FindingRow.run_id, FindingRow.id)
        for (run_id, check, passed, severity, env, feature, task, segment, value, threshold,
             count, message, examples) in s.connection().execute(ordered):
            out[run_id].append(FindingView(check, bool(passed), severity, env, feature, task,
                                           segment, value, threshold, count, message, examples))
    rank = {"error": 0, "warning": 1}
    for views in out.values():
        views.sort(key=lambda f: (f.passed, rank.get(f.severity, 2)))  # stable: stored order
    return out


def metrics_of(s: Session, run_ids: Sequence[int], *, names: Sequence[str] | None = None,
               overall_only: bool = False) -> dict[int, list[MetricPoint]]:
    """Metrics of the given runs (the evaluation pages).

    Args:
        names: only these metric names.
        overall_only: only metrics without a segment.
    """
    out: dict[int, list[MetricPoint]] = defaultdict(list)
    cols = (MetricRow.run_id, Run.dataset, Run.command, MetricRow.partition, MetricRow.name,
            MetricRow.feature, MetricRow.task, MetricRow.environment, MetricRow.segment,
            MetricRow.value)
    for chunk in _chunks(list(run_ids)):
        stmt = (sa.select(*cols).join(Run, Run.id == MetricRow.run_id)
                .where(MetricRow.run_id.in_(chunk)).order_by(MetricRow.id))
        if names is not None:
            stmt = stmt.where(MetricRow.name.in_(list(names)))
        if overall_only:
            stmt = stmt.where(MetricRow.segment.is_(None))
        for row in s.connection().execute(stmt):
            out[row[0]].append(MetricPoint(*row[1:]))
    return out


def trend_metrics(s: Session, names: Sequence[str], since: str) -> list[MetricPoint]:
    """Metrics named ``names`` of partitions ``>= since``, oldest first."""
    cols = (Run.dataset, Run.command, MetricRow.partition, MetricRow.name, MetricRow.feature,
            MetricRow.task, MetricRow.environment, MetricRow.segment, MetricRow.value)
    stmt = (sa.select(*cols).join(Run, Run.id == MetricRow.run_id)
            .where(MetricRow.name.in_(list(names)), MetricRow.partition >= since)
            .order_by(MetricRow.partition, MetricRow.id))
    return [MetricPoint(*row) for row in s.connection().execute(stmt)]


def volume_points(s: Session, check: str, since: str) -> list[VolumePoint]:
    """Rows per partition and the accepted band, from the stored ``check`` findings whose
    threshold is a ``[low, high]`` pair."""
    stmt = (sa.select(FindingRow.dataset, FindingRow.partition, FindingRow.environment,
                      FindingRow.value, FindingRow.threshold)
            .where(FindingRow.check == check, FindingRow.partition >= since)
            .order_by(FindingRow.partition, FindingRow.id))
    out = []
    for dataset, partition, env, value, threshold in s.connection().execute(stmt):
        band = threshold if isinstance(threshold, list) and len(threshold) == 2 else (None, None)
        out.append(VolumePoint(dataset, partition, env, _number(value), _number(band[0]),
                               _number(band[1])))
    return out


def _number(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def training_runs(s: Session) -> list[TrainingRun]:
    """Every training run, newest first (detached rows)."""
    stmt = sa.select(TrainingRun).order_by(TrainingRun.as_of.desc(), TrainingRun.id.desc())
    return list(s.scalars(stmt))


def models(s: Session) -> list[ModelRow]:
    """Published models, newest first (detached rows)."""
    return list(s.scalars(sa.select(ModelRow).order_by(ModelRow.as_of.desc(), ModelRow.id.desc())))
