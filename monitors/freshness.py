"""Freshness and volume: did the partition arrive, is its size normal, does it cover its day,
and since when has a problem been failing.

Pure functions over numbers the edge reads with cheap aggregate queries
(:func:`read_partition_facts`): :func:`arrival_finding` (rows present), :func:`volume_check`
(row count against the trailing history: with dates and two earlier partitions of the same
weekday, a weekday-factor model — the recent level of the deseasonalised counts times the
weekday's factor, with a band from the deseasonalised residuals — else the plain median and MAD
of the previous partitions), :func:`latest_event_finding` (the latest event time — the impressions
contract's ``countsFrom`` column — is close to the end of the day and no row lies outside its
day), and :func:`with_since`, which adds "(failing since YYYY-MM-DD)" to failing findings from
the results store's streaks (:func:`split_since` takes it off again). Table, partition column
and timestamp are always the caller's (from the contracts); nothing here names a table or
column.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from funnelguard.findings import Finding

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from monitors.store import Store

__all__ = [
    "VOLUME_K",
    "VOLUME_MIN_RELATIVE",
    "MIN_HISTORY",
    "VOLUME_HISTORY_DAYS",
    "WEEKDAY_MIN_RELATIVE",
    "MIN_SAME_WEEKDAY",
    "MAX_EVENT_GAP_HOURS",
    "PartitionFacts",
    "VolumeCheck",
    "read_partition_facts",
    "arrival_finding",
    "volume_check",
    "volume_finding",
    "latest_event_finding",
    "with_since",
    "split_since",
]

VOLUME_K = 3.0  # robust z-score limit: |count - median| / (1.4826 * MAD)
VOLUME_MIN_RELATIVE = 0.2  # never flag a change smaller than 20 % of the median
MIN_HISTORY = 3  # previous partitions needed before volume is judged
VOLUME_HISTORY_DAYS = 28  # earlier partitions counted: four of each weekday
WEEKDAY_MIN_RELATIVE = 0.1  # the weekday model's floor: its band is never narrower than ±10 %
MIN_SAME_WEEKDAY = 2  # earlier partitions of the day's weekday the weekday model needs
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_EVENT_GAP_HOURS = 2.0  # latest event time no earlier than this before the day ends


@dataclass(frozen=True)
class PartitionFacts:
    """What the freshness checks need from one table (cheap aggregates, no rows).

    Attributes:
        table: the table read.
        rows: rows in the partition.
        history: rows per earlier partition (date -> count), partitions with rows only.
        latest, earliest: the latest / earliest timestamp in the partition (UTC), if any.
        outside: rows whose timestamp is not on the partition's day.
        unparseable: rows whose timestamp is text that is not a timestamp (SQLite stores
            whatever it is given); they are left out of latest / earliest / outside.
    """

    table: str
    rows: int
    history: Mapping[dt.date, int]
    latest: dt.datetime | None = None
    earliest: dt.datetime | None = None
    outside: int = 0
    unparseable: int = 0


@dataclass(frozen=True)
class VolumeCheck:
    """A partition's row count against its trailing history.

    Attributes:
        rows: the partition's rows.
        median, mad: of the previous partitions' counts.
        n_history: how many previous partitions.
        low, high: the accepted range.
        judged: False when the history is too short to judge.
        model: ``weekday`` (the weekday-factor model) or ``plain`` (median and MAD).
        expected: the weekday model's expected count (None for ``plain``).
        weekday, factor: the partition's weekday and its factor (weekday model).
        note: why the weekday model was not used, when it was asked for.
    """

    rows: int
    median: float | None
    mad: float | None
    n_history: int
    low: float | None
    high: float | None
    judged: bool
    model: str = "plain"
    expected: float | None = None
    weekday: str | None = None
    factor: float | None = None
    note: str = ""

    @property
    def flagged(self) -> bool:
        return self.judged and not (self.low <= self.rows <= self.high)

    @property
    def relative_change(self) -> float | None:
        centre = self.expected if self.model == "weekday" else self.median
        return None if not centre else (self.rows - centre) / centre


def _utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def read_partition_facts(engine: Engine, table: str, partition: dt.date, *,
                         partition_column: str, history_days: int = VOLUME_HISTORY_DAYS,
                         timestamp: str | None = None) -> PartitionFacts:
    """Row counts of ``partition`` and the ``history_days`` before it, and (with ``timestamp``)
    the partition's latest / earliest timestamp and rows outside its day — aggregates only.

    Args:
        engine: the warehouse.
        table: the table to count (a contract's table for one environment).
        partition: the partition (a date).
        partition_column: the table's partition column (its contract's ``partitioned: true``).
        history_days: earlier partitions counted for the volume baseline.
        timestamp: an event-time column whose range within the partition is read.

    Raises:
        InputError: the table or a column is missing.
        EnvironmentFailure: the query failed.
    """
    import sqlalchemy as sa

    from funnelguard.errors import EnvironmentFailure
    from funnelguard.warehouse import UTCDateTime, require_columns

    require_columns(engine, table, [partition_column] + ([timestamp] if timestamp else []))
    try:
        tbl = sa.Table(table, sa.MetaData(), autoload_with=engine)
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"reading the columns of {table} failed: {exc.orig}") from exc
    part = tbl.c[partition_column]
    start = partition - dt.timedelta(days=history_days)
    counts = sa.select(part, sa.func.count()).where(part >= start, part <= partition).group_by(part)
    try:
        with engine.connect() as conn:
            by_day = {_as_date(d): int(n) for d, n in conn.execute(counts)}
            latest = earliest = None
            outside = unparseable = 0
            if timestamp and by_day.get(partition):
                # UTC on both dialects (naive UTC on SQLite, timestamptz on PostgreSQL).
                raw = tbl.c[timestamp]
                col = sa.type_coerce(raw, UTCDateTime())
                day_start = dt.datetime.combine(partition, dt.time(0), tzinfo=dt.UTC)
                day_end = day_start + dt.timedelta(days=1)
                valid = [part == partition]
                if engine.dialect.name == "sqlite":  # text cells that are not timestamps
                    parses = sa.func.julianday(raw).is_not(None)
                    unparseable = conn.execute(sa.select(sa.func.count()).where(
                        part == partition, raw.is_not(None), ~parses)).scalar_one()
                    valid.append(parses)
                latest, earliest = conn.execute(sa.select(sa.func.max(col), sa.func.min(col))
                                                .where(*valid)).one()
                outside = conn.execute(sa.select(sa.func.count()).where(
                    *valid, sa.or_(col < day_start, col >= day_end))).scalar_one()
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"reading row counts of {table} failed: {exc.orig}") from exc
    rows = by_day.pop(partition, 0)
    return PartitionFacts(table, rows, by_day, _utc(latest), _utc(earliest), int(outside),
                          int(unparseable))


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def arrival_finding(facts: PartitionFacts, partition: dt.date, *, environment: str | None,
                    dataset: str | None = None) -> Finding:
    """``freshness_arrival``: the partition has rows."""
    return Finding(
        check="freshness_arrival", passed=facts.rows > 0, environment=environment,
        value=facts.rows, threshold=1, count=facts.rows, dataset=dataset,
        message=(f"{facts.table} has {facts.rows} rows for {partition}" if facts.rows
                 else f"{facts.table} has no rows for {partition}: the partition has not arrived"))


def volume_check(history: Mapping[Any, int] | Sequence[int], rows: int, *, k: float = VOLUME_K,
                 min_relative: float = VOLUME_MIN_RELATIVE, min_history: int = MIN_HISTORY,
                 partition: dt.date | None = None) -> VolumeCheck:
    """Judge ``rows`` against earlier partitions' counts.

    With ``partition`` and a date-keyed history holding :data:`MIN_SAME_WEEKDAY` earlier
    partitions of its weekday, the weekday-factor model judges (:func:`_weekday_model`): the
    weekend swing no longer widens the band, so a 20 % loss on a weekday is flagged. Otherwise
    the plain band: ``median ± max(k * 1.4826 * MAD, min_relative * median)``, where MAD absorbs
    the weekly pattern and the relative floor keeps a flat history from flagging noise (with
    ``partition`` given, the check's ``note`` says why the weekday model was not used).
    Partitions with no rows are left out of the history (a missing partition is an arrival
    problem, not a volume baseline).
    """
    import numpy as np

    dated = isinstance(history, Mapping)
    counts = np.asarray([c for c in (history.values() if dated else history) if c > 0], dtype=float)
    if len(counts) < min_history:
        return VolumeCheck(rows, None, None, len(counts), None, None, judged=False)
    median = float(np.median(counts))
    mad = float(np.median(np.abs(counts - median)))
    note = ""
    if partition is not None:
        if dated:
            seasonal, note = _weekday_model(history, rows, partition, k)
            if seasonal is not None:
                return VolumeCheck(rows, median, mad, len(counts), *seasonal)
        else:
            note = "no dates in the history"
    half_width = max(k * 1.4826 * mad, min_relative * median)
    return VolumeCheck(rows, median, mad, len(counts), median - half_width, median + half_width,
                       True, note=note)


def _weekday_model(history: Mapping[Any, int], rows: int, partition: dt.date, k: float
                   ) -> tuple[tuple | None, str]:
    """The weekday-factor model's (low, high, judged, model, expected, weekday, factor), or
    None and why not.

    Factor of a weekday = median of its counts / median of all counts (weekdays seen at least
    :data:`MIN_SAME_WEEKDAY` times); each count divided by its weekday's factor is
    deseasonalised; the level is the median of the last seven deseasonalised counts (it follows
    a change of level within the history); expected = level × the day's factor. Band: ``k``
    robust standard deviations of the deseasonalised counts' relative residuals — inflated by
    sqrt(n / (n - 1)) for the n counts each factor is estimated from, which shrink them, and
    by the error of the expected count's own medians, and never below Poisson counting noise
    (1/sqrt(expected)) — never narrower than :data:`WEEKDAY_MIN_RELATIVE`.
    """
    import numpy as np

    by_weekday: dict[int, list[tuple[dt.date, float]]] = {}
    for day, count in history.items():
        if count > 0:
            day = _as_date(day)
            by_weekday.setdefault(day.weekday(), []).append((day, float(count)))
    weekday = partition.weekday()
    same = len(by_weekday.get(weekday, ()))
    if same < MIN_SAME_WEEKDAY:
        return None, (f"weekday pattern not used: {same} earlier {WEEKDAYS[weekday]} "
                      f"partition{'s' if same != 1 else ''}, {MIN_SAME_WEEKDAY} needed")
    usable = {w: days for w, days in by_weekday.items() if len(days) >= MIN_SAME_WEEKDAY}
    overall = float(np.median([c for days in usable.values() for _, c in days]))
    factors = {w: float(np.median([c for _, c in days])) / overall for w, days in usable.items()}
    deseasonalised = sorted((day, c / factors[w]) for w, days in usable.items() for day, c in days)
    values = np.asarray([v for _, v in deseasonalised])
    level = float(np.median(values[-7:]))
    residuals = values / float(np.median(values)) - 1.0
    n_per_factor = len(values) / len(usable)
    spread = 1.4826 * float(np.median(np.abs(residuals - np.median(residuals))))
    spread *= float(np.sqrt(n_per_factor / (n_per_factor - 1)))
    # The expected count is itself estimated: a median's variance is about pi/2 * sigma^2 / n,
    # for the day's factor (its weekday's counts) and for the level (seven counts).
    spread *= float(np.sqrt(1 + np.pi / 2 * (1 / same + 1 / min(len(values), 7))))
    expected = level * factors[weekday]
    # Never below counting noise: a count's relative standard deviation is at least 1/sqrt(n).
    spread = max(spread, 1.0 / float(np.sqrt(max(expected, 1.0))))
    half_width = expected * max(k * spread, WEEKDAY_MIN_RELATIVE)
    return (expected - half_width, expected + half_width, True, "weekday", expected,
            WEEKDAYS[weekday], factors[weekday]), ""


def volume_finding(check: VolumeCheck, table: str, *, environment: str | None,
                   dataset: str | None = None) -> Finding:
    """``volume``: a drop or a spike against the trailing history."""
    if not check.judged:
        return Finding(check="volume", passed=True, severity="info", environment=environment,
                       value=check.rows, count=check.rows, dataset=dataset,
                       message=(f"{table}: {check.rows} rows; only {check.n_history} earlier "
                                f"partitions, {MIN_HISTORY} needed to judge volume"))
    change = check.relative_change or 0.0
    kind = "drop" if change < 0 else "spike"
    verdict = f"{kind} of {abs(change):.0%}" if check.flagged else f"{change:+.0%}, normal"
    if check.model == "weekday":
        against = (f"expected {check.expected:.0f} for a {check.weekday}, weekday factor "
                   f"{check.factor:.2f} from the previous {check.n_history} partitions")
    else:
        against = f"median {check.median:.0f} of the previous {check.n_history} partitions"
    note = f"; {check.note}, the plain band" if check.note else ""
    return Finding(
        check="volume", passed=not check.flagged, environment=environment, value=check.rows,
        threshold=[round(check.low, 1), round(check.high, 1)], count=check.rows, dataset=dataset,
        message=(f"{table}: {check.rows} rows vs {against} ({verdict}; accepted "
                 f"{check.low:.0f}–{check.high:.0f}{note})"))


def latest_event_finding(facts: PartitionFacts, partition: dt.date, timestamp: str, *,
                         max_gap_hours: float = MAX_EVENT_GAP_HOURS, environment: str | None = None,
                         dataset: str | None = None) -> Finding:
    """``freshness_latest_event``: the partition covers its whole day and nothing outside it."""
    day_end = dt.datetime.combine(partition + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
    if facts.latest is None:
        bad = (f" ({facts.unparseable} of {facts.rows} rows hold text that is not a timestamp)"
               if facts.unparseable else "")
        return Finding(check="freshness_latest_event", passed=False, environment=environment,
                       threshold=max_gap_hours, count=facts.unparseable, dataset=dataset,
                       message=f"{facts.table} has no {timestamp} for {partition}{bad}")
    gap = (day_end - facts.latest).total_seconds() / 3600
    passed = gap <= max_gap_hours and facts.outside == 0 and facts.unparseable == 0
    problems = []
    if facts.unparseable:
        problems.append(f"{facts.unparseable} of {facts.rows} rows have {timestamp} text that is "
                        "not a timestamp")
    if gap > max_gap_hours:
        problems.append(f"the day's last {max_gap_hours:g} h are missing")
    if facts.outside:
        problems.append(f"{facts.outside} rows have {timestamp} outside {partition}")
    return Finding(
        check="freshness_latest_event", passed=passed, environment=environment,
        value=round(gap, 3), threshold=max_gap_hours, count=facts.outside, dataset=dataset,
        message=(f"latest {timestamp} in {facts.table} for {partition} is "
                 f"{facts.latest.isoformat()} ({gap:.2f} h before the day ends)"
                 + (": " + "; ".join(problems) if problems else "")))


_SINCE_NOTE = re.compile(r" \(failing since (\d{4}-\d{2}-\d{2})\)")


def with_since(findings: Iterable[Finding], store: Store, partition: str,
               dataset: str | None = None) -> list[Finding]:
    """Failing findings get "(failing since YYYY-MM-DD)" from the store's unbroken streak of
    earlier failures of the same fingerprint; a new failure is "since" this partition.

    A message that already carries the note (a finding annotated twice) keeps one: the
    earlier date. :func:`split_since` takes the note off again (alerts say "since" once).
    """
    from monitors.store import fingerprint_of

    previous = (dt.date.fromisoformat(partition) - dt.timedelta(days=1)).isoformat()
    out = []
    for f in findings:
        if f.passed:
            out.append(f)
            continue
        since = store.first_failing_partition(fingerprint_of(f, dataset), previous) or partition
        message, noted = split_since(f.message or "")
        since = min(since, noted) if noted else since
        out.append(f.with_(message=f"{message} (failing since {since})"))
    return out


def split_since(message: str) -> tuple[str, str | None]:
    """``message`` without the "(failing since YYYY-MM-DD)" note of :func:`with_since`, and
    the note's date (the earliest, if it is there more than once; None when it is not)."""
    dates = _SINCE_NOTE.findall(message)
    return _SINCE_NOTE.sub("", message), (min(dates) if dates else None)
