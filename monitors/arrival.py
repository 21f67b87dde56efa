"""Arrival against the SLA: when a partition's rows landed, and how that compares with its
contract's latency (ODCS ``slaProperties`` ``latency``, ``Contract.freshness_hours``).

The tables: the features contract's, and those of the impressions contract that name a landing
column (:func:`arrival_sources`). A landing column is a property of role ``timestamp`` that is
neither a stage's loaded-at (it has no ``task``) nor the project's event time (``countsFrom``),
e.g. a serving log's served-at: the partition landed when :data:`ARRIVAL_QUANTILE` of its rows
had (a stray late row does not make a day late). A table without one is *observed*: the first
``freshness`` run that sees the partition with rows says when it arrived, and a run that finds
it empty after its deadline records that too. Both observations are metrics of the freshness
run (``arrival_first_seen``, ``arrival_last_absent``; epoch seconds, ``feature`` = the table),
read back from the results store by later runs, so a rerun keeps the first sighting. A first
sighting more than :data:`OBSERVATION_HORIZON_HOURS` past the deadline, with no run that found
the partition missing before, is not judged: it is a backfill or a first run, and says nothing
about when the rows came.

Check ``freshness_sla``: value = hours after the day ended, threshold = the SLA's hours; the
message names dataset, environment, partition, how late and the contract's owner. Tables,
columns and SLAs are always the contracts'.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from funnelguard.findings import Finding, Metric

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from contracts.spec import Contract, Owner
    from funnelguard.project import Project

__all__ = [
    "ARRIVAL_QUANTILE",
    "OBSERVATION_HORIZON_HOURS",
    "FIRST_SEEN",
    "LAST_ABSENT",
    "ARRIVAL_HOURS",
    "ArrivalSource",
    "Landing",
    "landing_columns",
    "arrival_sources",
    "read_landing_time",
    "earlier_observations",
    "observed_landing",
    "sla_finding",
    "arrival_metrics",
    "check_arrivals",
]

ARRIVAL_QUANTILE = 0.99  # the partition has landed when this share of its rows has
OBSERVATION_HORIZON_HOURS = 48.0  # a first sighting later than this past the deadline: not judged
FIRST_SEEN, LAST_ABSENT, ARRIVAL_HOURS = "arrival_first_seen", "arrival_last_absent", "arrival_hours"


@dataclass(frozen=True)
class ArrivalSource:
    """One table whose arrival is judged, as its contract describes it.

    Attributes:
        dataset: the contract's name.
        environment: the contract's environment of the table.
        table: the physical table.
        partition_column: its partition column.
        column: the landing column (None: observed by freshness runs).
        sla_hours: the contract's latency in hours after the day ends (None: no SLA).
        owner: the contract's owner (named in the finding).
    """

    dataset: str
    environment: str
    table: str
    partition_column: str
    column: str | None
    sla_hours: float | None
    owner: Owner


@dataclass(frozen=True)
class Landing:
    """When one partition of one table landed.

    Attributes:
        source: the table.
        partition: the partition.
        rows: rows in the partition now.
        method: ``column`` (read from the landing column) or ``observed`` (freshness runs).
        landed_at: the landing column's :data:`ARRIVAL_QUANTILE` quantile, or the first run
            that saw rows; None when the partition has no rows (or no readable landing time).
        latest_at: the landing column's maximum (``column`` only).
        absent_at: the last run that found the partition empty before it landed (observed).
        observed_at: this run's time.
        earlier_sighting: an earlier run had already seen rows (observed).
    """

    source: ArrivalSource
    partition: dt.date
    rows: int
    method: str
    landed_at: dt.datetime | None
    latest_at: dt.datetime | None = None
    absent_at: dt.datetime | None = None
    observed_at: dt.datetime | None = None
    earlier_sighting: bool = False

    @property
    def day_end(self) -> dt.datetime:
        return dt.datetime.combine(self.partition + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)

    @property
    def deadline(self) -> dt.datetime | None:
        hours = self.source.sla_hours
        return None if hours is None else self.day_end + dt.timedelta(hours=hours)

    @property
    def hours_after_day(self) -> float | None:
        """Hours between the end of the partition's day and the landing."""
        if self.landed_at is None:
            return None
        return (self.landed_at - self.day_end).total_seconds() / 3600

    @property
    def too_late_to_tell(self) -> bool:
        """First observed long after the deadline, and no run found it missing before: the
        sighting bounds nothing (a backfill or a first run)."""
        if self.method != "observed" or self.absent_at is not None \
                or self.deadline is None or self.landed_at is None:
            return False
        return self.landed_at > self.deadline + dt.timedelta(hours=OBSERVATION_HORIZON_HOURS)

    @property
    def late(self) -> bool:
        hours = self.hours_after_day
        return (hours is not None and self.source.sla_hours is not None
                and not self.too_late_to_tell and hours > self.source.sla_hours)


def _utc(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _epoch(value: float | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromtimestamp(value, dt.UTC)


def landing_columns(contract: Contract, environment: str, event_time: str | None = None
                    ) -> tuple[str, ...]:
    """The contract's landing columns in ``environment``: role ``timestamp``, no ``task`` (a
    stage's loaded-at is the label gate's), not the project's event time."""
    return tuple(f.name for f in contract.fields_for(environment)
                 if f.role == "timestamp" and not f.task and f.name != event_time
                 and f.logical_type == "timestamp")


def arrival_sources(project: Project) -> list[ArrivalSource]:
    """The tables whose arrival is judged: every table of the features contract (by its landing
    column, else observed), and the impressions contract's tables that have a landing column.

    Freshness runs when the feature tables land (the snapshot DAG waits for their assets), so
    its sightings say when *they* arrived; the impressions land earlier, on their own, and a
    sighting would only repeat the features' time.
    """
    out = []
    for contract in (project.features, project.impressions):
        if contract is not project.features and contract.name == project.features.name:
            continue
        for env, table in contract.tables.items():
            columns = landing_columns(contract, env, project.event_time)
            if not columns and contract is not project.features:
                continue
            out.append(ArrivalSource(contract.name, env, table, contract.partition_column,
                                     columns[0] if columns else None, contract.freshness_hours,
                                     contract.owner))
    return out


def read_landing_time(engine: Engine, table: str, partition: dt.date, *, partition_column: str,
                      column: str, quantile: float = ARRIVAL_QUANTILE
                      ) -> tuple[dt.datetime | None, dt.datetime | None, int]:
    """(``quantile`` of ``column``, its maximum, rows with a readable value) in ``partition``,
    by aggregate and one ordered offset query (no rows read).

    Raises:
        InputError: the table or a column is missing.
        EnvironmentFailure: the query failed.
    """
    import sqlalchemy as sa

    from funnelguard.errors import EnvironmentFailure
    from funnelguard.warehouse import UTCDateTime, require_columns

    require_columns(engine, table, [partition_column, column])
    try:
        tbl = sa.Table(table, sa.MetaData(), autoload_with=engine)
        raw = tbl.c[column]
        col = sa.type_coerce(raw, UTCDateTime())
        valid = [tbl.c[partition_column] == partition, raw.is_not(None)]
        order = raw
        if engine.dialect.name == "sqlite":  # text that is not a timestamp sorts nowhere
            valid.append(sa.func.julianday(raw).is_not(None))
            order = sa.func.julianday(raw)
        with engine.connect() as conn:
            n, latest = conn.execute(sa.select(sa.func.count(), sa.func.max(col)).where(*valid)).one()
            if not n:
                return None, None, 0
            offset = int(math.floor(quantile * (int(n) - 1)))
            at = conn.execute(sa.select(col).where(*valid).order_by(order)
                              .offset(offset).limit(1)).scalar_one()
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"reading {column} of {table} failed: {exc.orig}") from exc
    return _utc(at), _utc(latest), int(n)


def earlier_observations(store_url: str | None, partition: dt.date
                         ) -> dict[str, tuple[float | None, float | None]]:
    """Table -> (earliest first sighting, latest absence) recorded by earlier freshness runs
    of ``partition`` in the results store (epoch seconds); empty without a store."""
    if store_url is None:
        return {}
    import sqlalchemy as sa

    from monitors.store import open_store
    from monitors.store.models import MetricRow, Run

    store = open_store(store_url)
    stmt = (sa.select(MetricRow.feature, MetricRow.name, MetricRow.value).join(Run)
            .where(Run.command == "freshness", MetricRow.partition == partition.isoformat(),
                   MetricRow.name.in_((FIRST_SEEN, LAST_ABSENT))))
    with store.session() as s:
        rows = s.execute(stmt).all()
    out: dict[str, tuple[float | None, float | None]] = {}
    for table, name, value in rows:
        first, absent = out.get(table or "", (None, None))
        if value is None:
            continue
        if name == FIRST_SEEN:
            first = value if first is None else min(first, value)
        else:
            absent = value if absent is None else max(absent, value)
        out[table or ""] = (first, absent)
    return out


def observed_landing(source: ArrivalSource, partition: dt.date, rows: int,
                     observed_at: dt.datetime,
                     earlier: tuple[float | None, float | None] = (None, None)) -> Landing:
    """The landing a freshness run observes: the first run that saw rows (this one, unless an
    earlier one did), and the last run before it that found none."""
    first, absent = _epoch(earlier[0]), _epoch(earlier[1])
    landed = None
    if rows:
        landed = first if first is not None and first <= observed_at else observed_at
    if absent is not None and landed is not None and absent >= landed:
        absent = None  # an emptied partition seen again: the absence is not before its landing
    return Landing(source, partition, rows, "observed", landed, absent_at=absent,
                   observed_at=observed_at, earlier_sighting=first is not None and first < observed_at)


def sla_finding(landing: Landing) -> Finding:
    """``freshness_sla``: the partition landed within its contract's latency."""
    src = landing.source
    where = f"{src.table} ({src.dataset}, {src.environment}) partition {landing.partition}"
    owner = f"owner {src.owner.team}" + (f" {src.owner.mention}" if src.owner.slack else "")
    base = dict(check="freshness_sla", environment=src.environment, dataset=src.dataset,
                threshold=src.sla_hours, count=landing.rows)
    hours = landing.hours_after_day
    if hours is None:
        return Finding(passed=True, severity="info", **base,
                       message=f"{where}: no landing time (no rows yet); not judged")
    how = _how(landing)
    if src.sla_hours is None:
        return Finding(passed=True, severity="info", value=round(hours, 3), **base,
                       message=f"{where} landed {hours:.1f} h after the day ended ({how}); "
                               "the contract has no latency SLA")
    if landing.too_late_to_tell:
        return Finding(passed=True, severity="info", value=round(hours, 3), **base,
                       message=(f"{where} first observed {hours:.1f} h after the day ended, "
                                f"more than {OBSERVATION_HORIZON_HOURS:g} h past its "
                                f"{src.sla_hours:g} h SLA, and no freshness run found it "
                                "missing before (a backfill or a first run): arrival not judged"))
    when = (f"{hours:.1f} h after the day ended" if hours >= 0
            else f"{-hours:.1f} h before the day ended")
    if landing.late:
        verdict = (f"landed {when}, {hours - src.sla_hours:.1f} h late against its "
                   f"{src.sla_hours:g} h SLA")
    else:
        verdict = f"landed {when}, within its {src.sla_hours:g} h SLA"
    return Finding(passed=not landing.late, value=round(hours, 3), **base,
                   message=f"{where} {verdict} ({how}); {owner}")


def _how(landing: Landing) -> str:
    if landing.method == "column":
        latest = landing.latest_at.isoformat() if landing.latest_at else "?"
        return (f"{ARRIVAL_QUANTILE:.0%} of rows by {landing.source.column} "
                f"{landing.landed_at.isoformat()}, the last {latest}")
    run = "an earlier freshness run" if landing.earlier_sighting else "freshness"
    seen = f"first seen by {run} at {landing.landed_at.isoformat()}"
    if landing.absent_at is not None:
        seen += f", absent at {landing.absent_at.isoformat()}"
    return seen


def arrival_metrics(landings: Iterable[Landing]) -> list[Metric]:
    """``arrival_hours`` per table, and the observations later runs read back."""
    out = []
    for landing in landings:
        env, table = landing.source.environment, landing.source.table
        if landing.hours_after_day is not None and not landing.too_late_to_tell:
            out.append(Metric(ARRIVAL_HOURS, round(landing.hours_after_day, 4), feature=table,
                              environment=env))
        if landing.method != "observed":
            continue
        if landing.landed_at is not None:
            out.append(Metric(FIRST_SEEN, landing.landed_at.timestamp(), feature=table,
                              environment=env))
        absent = landing.absent_at
        if landing.rows == 0 and landing.deadline is not None and landing.observed_at is not None \
                and landing.observed_at > landing.deadline:
            absent = landing.observed_at  # empty after the deadline: late, whenever it comes
        if absent is not None:
            out.append(Metric(LAST_ABSENT, absent.timestamp(), feature=table, environment=env))
    return out


def check_arrivals(project: Project, engine: Engine, partition: dt.date, rows: Mapping[str, int],
                   *, store_url: str | None = None, observed_at: dt.datetime | None = None,
                   skip: Sequence[str] = ()) -> tuple[list[Finding], list[Metric]]:
    """``freshness_sla`` of every table of the features and impressions contracts.

    Args:
        project: the project.
        engine: the warehouse.
        partition: the partition.
        rows: rows in the partition per table, as the caller counted them (tables not in it
            are counted here).
        store_url: the results store earlier observations are read from (None: none).
        observed_at: this run's time (default: now, UTC).
        skip: tables not to judge (not in the warehouse).
    """
    from monitors.freshness import read_partition_facts

    now = _utc(observed_at) if observed_at is not None else dt.datetime.now(dt.UTC)
    earlier = earlier_observations(store_url, partition)
    landings = []
    for src in arrival_sources(project):
        if src.table in skip:
            continue
        n = rows.get(src.table)
        if n is None:
            n = read_partition_facts(engine, src.table, partition, history_days=0,
                                     partition_column=src.partition_column).rows
        if src.column is not None:
            at, latest, _ = (read_landing_time(engine, src.table, partition, column=src.column,
                                               partition_column=src.partition_column)
                             if n else (None, None, 0))
            landings.append(Landing(src, partition, n, "column", at, latest, observed_at=now))
        else:
            landings.append(observed_landing(src, partition, n, now,
                                             earlier.get(src.table, (None, None))))
    return [sla_finding(x) for x in landings], arrival_metrics(landings)
