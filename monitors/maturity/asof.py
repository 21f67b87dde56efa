"""The labels' as-of rule, in one place for the gate and the training-set builder.

As of time A (``--as-of A`` = A 00:00 UTC) a stage's outcome for an impression is *positive* if
its event was loaded before A (loaded-at ``< A``), *negative* if not and the maturity window
has closed (event time ``+ window <= A``), and *unknown* otherwise. For training, only outcomes
whose window has closed are used (:func:`resolve_labels`). Impressions at or after A do not
exist yet. Timestamps may come naive (read as UTC) or tz-aware in any zone; both are normalised
to UTC before any comparison, so an impression at 23:30 UTC belongs to its UTC day.

Every column name comes from the project (:class:`LabelColumns`): the impressions contract's
key, partition and event time (the column ``maturityWindows.*.countsFrom`` names) and the labels
contract's loaded-at and event-time column of each stage.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from funnelguard.warehouse import as_of_timestamp, require_columns
from monitors.maturity.errors import LabelFrameError, MaturityConfigError

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from contracts.spec import Contract
    from funnelguard.project import Project

__all__ = [
    "LabelColumns",
    "as_of_instant",
    "maturity_windows",
    "matured_through",
    "read_label_frame",
    "normalise_label_frame",
    "resolve_labels",
    "select_tasks",
    "table_of",
]

# The indicator column of the join (never a column of the frame that comes back).
_NO_LABEL_ROW = "fg_no_label_row"


@dataclass(frozen=True)
class LabelColumns:
    """Where a labels frame keeps what the as-of rule reads: the project's own column names.

    Attributes:
        key: the impression key (the impressions contract's primary key).
        event_time: the impression time the maturity windows count from (``countsFrom``).
        day: the column holding each impression's cohort, the UTC day of ``event_time``
            (named after the impressions contract's partition column).
        loaded_at: stage -> when its outcome reached the warehouse, in funnel order.
        occurred_at: stage -> when its outcome happened (optional per stage).
    """

    key: str
    event_time: str
    day: str
    loaded_at: Mapping[str, str]
    occurred_at: Mapping[str, str] = field(default_factory=dict)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.loaded_at)

    def loaded(self, task: str) -> str:
        """The loaded-at column of ``task``.

        Raises:
            MaturityConfigError: the labels have no loaded-at column for ``task``.
        """
        try:
            return self.loaded_at[task]
        except KeyError:
            raise MaturityConfigError(
                f"expected a loaded-at column (role timestamp, task {task!r}) in the labels "
                f"contract, found loaded-at columns for {list(self.loaded_at)}") from None

    def timestamps(self) -> tuple[str, ...]:
        """Every timestamp column of the frame: event time, loaded-at and occurred-at."""
        return (self.event_time, *self.loaded_at.values(), *self.occurred_at.values())

    @classmethod
    def of(cls, project: Project, tasks: Sequence[str] | None = None) -> LabelColumns:
        """The columns of ``project`` for ``tasks`` (default: every stage, in funnel order).

        Raises:
            MaturityConfigError: a stage without a loaded-at column, an event time that is not
                a timestamp of the impressions contract, or two roles sharing one column name.
        """
        tasks = select_tasks(project, tasks)
        labels, impressions = project.labels, project.impressions
        event_time = project.event_time
        if event_time not in impressions.timestamp_columns():
            raise MaturityConfigError(
                f"labels contract {labels.path}: maturity windows count from {event_time!r}, "
                f"expected a timestamp property of the impressions contract {impressions.name} "
                f"({impressions.path}): {list(impressions.timestamp_columns())}")
        loaded = labels.loaded_at_columns
        missing = [t for t in tasks if t not in loaded]
        if missing:
            raise MaturityConfigError(
                f"labels contract {labels.path}: expected a loaded-at column (role timestamp with "
                f"a task) for stage(s) {missing}; found them for {list(loaded)}")
        occurred = labels.label_columns
        columns = cls(key=impressions.key_column, event_time=event_time,
                      day=impressions.partition_column,
                      loaded_at={t: loaded[t] for t in tasks},
                      occurred_at={t: occurred[t] for t in tasks if t in occurred})
        names = [columns.key, columns.event_time, columns.day, *columns.loaded_at.values(),
                 *columns.occurred_at.values()]
        shared = sorted({n for n in names if names.count(n) > 1})
        if shared:
            raise MaturityConfigError(
                f"labels contract {labels.path} and impressions contract {impressions.path}: "
                f"expected distinct key, partition, event-time and label columns, found "
                f"{shared} in two roles")
        return columns


def select_tasks(project: Project, tasks: Sequence[str] | None = None) -> tuple[str, ...]:
    """``tasks`` in funnel order (None or empty: every stage of the project, as ``model.tasks``).

    Raises:
        MaturityConfigError: a stage the labels contract lacks.
    """
    stages = project.tasks
    if not tasks:
        return stages
    if isinstance(tasks, str):
        tasks = (tasks,)
    unknown = [t for t in tasks if t not in stages]
    if unknown:
        raise MaturityConfigError(
            f"tasks: expected one or more stages of the labels contract {project.labels.path} "
            f"{list(stages)}, found {list(tasks)}")
    return tuple(t for t in stages if t in set(tasks))


def table_of(contract: Contract) -> str:
    """The contract's warehouse table (its ``offline`` one, else its only one).

    Raises:
        MaturityConfigError: several tables and none for ``offline``.
    """
    if "offline" in contract.tables:
        return contract.tables["offline"]
    if len(contract.tables) == 1:
        return next(iter(contract.tables.values()))
    raise MaturityConfigError(
        f"contract {contract.name} ({contract.path}): expected an `offline` table or a single "
        f"table in `environments`, found {dict(contract.tables)}")


def as_of_instant(as_of: dt.date | dt.datetime | str) -> pd.Timestamp:
    """The instant A of an as-of: a date means A 00:00 UTC; a naive datetime is UTC.

    Raises:
        LabelFrameError: ``as_of`` is not a date, a datetime or an ISO date string.
    """
    import pandas as pd

    if isinstance(as_of, str):
        try:
            as_of = dt.date.fromisoformat(as_of)
        except ValueError as exc:
            raise LabelFrameError(f"as_of: expected a date YYYY-MM-DD, found {as_of!r}") from exc
    if isinstance(as_of, dt.datetime):
        stamp = pd.Timestamp(as_of)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if isinstance(as_of, dt.date):
        return pd.Timestamp(as_of_timestamp(as_of))
    raise LabelFrameError(f"as_of: expected a date or datetime, found {type(as_of).__name__}")


def maturity_windows(contract: Contract, tasks: Sequence[str] | None = None, *,
                     event_time: str | None = None) -> dict[str, float]:
    """Per stage, the labels contract's maturity window in days.

    Args:
        contract: the labels contract (``maturityWindows``).
        tasks: the stages (default: all of the contract's, in funnel order).
        event_time: the impressions column every window must count from (default: the first
            stage's ``countsFrom``).

    Raises:
        MaturityConfigError: a stage without a window, a window that is not a positive finite
            number of days, or one that counts from another timestamp than ``event_time``.
    """
    tasks = contract.tasks if tasks is None else tuple(tasks)
    where = f"labels contract {contract.path}"
    if not tasks:
        raise MaturityConfigError(f"{where}: expected `maturityWindows` naming the funnel stages, "
                                  "found none")
    windows: dict[str, float] = {}
    for task in tasks:
        window = contract.maturity.get(task)
        if window is None:
            raise MaturityConfigError(
                f"{where}: expected a maturity window for stage {task!r}, found windows for "
                f"{list(contract.maturity)}")
        anchor = event_time or contract.maturity[tasks[0]].counts_from
        days = float(window.days)
        if not math.isfinite(days) or days <= 0:
            raise MaturityConfigError(
                f"{where}: expected a positive maturity window for stage {task!r}, found {window.days!r}")
        if window.counts_from != anchor:
            raise MaturityConfigError(
                f"{where}: the maturity window of stage {task!r} counts from "
                f"{window.counts_from!r}; expected {anchor!r} (the impression time every stage "
                "counts from, the only anchor the as-of rule supports)")
        windows[task] = days
    return windows


def matured_through(as_of: dt.date, days: float) -> dt.date:
    """The latest daily cohort D whose every impression has matured as of ``as_of``.

    Cohort D holds impressions in [D 00:00, D+1 00:00); all have matured once D+1 + window <= A.
    """
    # D 00:00 <= A - window - 1 day, so D is that instant's day (a fractional window floors).
    return (as_of_timestamp(as_of) - dt.timedelta(days=days) - dt.timedelta(days=1)).date()


def _one_utc(value):
    """One value as a UTC Timestamp: naive means UTC, aware is converted."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return pd.NaT
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _to_utc(series: pd.Series, column: str) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series):
        if getattr(series.dt, "tz", None) is None:
            return series.dt.tz_localize("UTC")
        return series.dt.tz_convert("UTC")
    try:
        return pd.to_datetime(series, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        pass  # mixed objects (naive and aware Timestamps): normalise one by one
    try:
        return pd.to_datetime(series.map(_one_utc), utc=True)
    except (ValueError, TypeError) as exc:
        raise LabelFrameError(
            f"column {column!r}: expected timestamps, found values such as "
            f"{series.dropna().head(3).tolist()} ({exc})") from exc


def normalise_label_frame(frame: pd.DataFrame, columns: LabelColumns) -> pd.DataFrame:
    """A copy with UTC timestamps and a cohort day per row (the UTC day of the event time).

    Args:
        frame: one row per impression with ``columns.key``, ``columns.event_time`` and each
            stage's loaded-at column (occurred-at columns optional); the day column
            (``columns.day``) is derived, replacing any given.
        columns: the project's column names (:meth:`LabelColumns.of`).

    Raises:
        LabelFrameError: a required column is missing or holds non-timestamps.
    """
    needed = [columns.key, columns.event_time, *columns.loaded_at.values()]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise LabelFrameError(
            f"labels frame: expected columns {missing} (one row per impression: "
            f"{columns.key}, {columns.event_time} and the loaded-at column of each stage "
            f"{list(columns.loaded_at.values())}); found {list(frame.columns)}")
    out = frame.copy()
    for col in columns.timestamps():
        if col in out.columns:
            out[col] = _to_utc(out[col], col)
    event = out[columns.event_time]
    if event.isna().any():
        raise LabelFrameError(
            f"labels frame: expected {columns.event_time} on every impression, found "
            f"{int(event.isna().sum())} rows without one")
    out[columns.day] = event.dt.date
    return out


def read_label_frame(project: Project, engine: Engine, start: dt.date, end: dt.date, *,
                     tasks: Sequence[str] | None = None) -> pd.DataFrame:
    """Impressions with partition in ``[start, end]`` left-joined to their labels, in one query.

    The impressions table, key, partition and event time come from the impressions contract;
    the labels table, its key and each stage's loaded-at and event-time columns from the labels
    contract. The frame's columns are :meth:`LabelColumns.of` ``(project, tasks)``. An
    impression without a labels row has no observed event for any stage (its loaded-at are
    null); the count is kept in ``frame.attrs['missing_label_rows']``, and repeated impression
    keys (one row is kept) in ``frame.attrs['duplicate_label_rows']``. Timestamps are fetched
    raw and parsed vectorised (SQLite returns text).

    Raises:
        InputError: a table or column the contracts name is missing from the warehouse.
        EnvironmentFailure: the query failed.
    """
    import pandas as pd
    import sqlalchemy as sa

    from funnelguard.errors import EnvironmentFailure

    columns = LabelColumns.of(project, tasks)
    imp_table, lab_table = table_of(project.impressions), table_of(project.labels)
    part, lab_key = project.impressions.partition_column, project.labels.key_column
    label_cols = [*columns.occurred_at.values(), *columns.loaded_at.values()]
    require_columns(engine, imp_table, [columns.key, part, columns.event_time])
    require_columns(engine, lab_table, [lab_key, *label_cols])
    imp = sa.table(imp_table, *(sa.column(c) for c in (columns.key, part, columns.event_time)))
    lab = sa.table(lab_table, *(sa.column(c) for c in (lab_key, *label_cols)))
    i, lb = imp.alias("i"), lab.alias("l")
    stmt = (
        sa.select(i.c[columns.key], i.c[columns.event_time], *(lb.c[c] for c in label_cols),
                  sa.case((lb.c[lab_key].is_(None), 1), else_=0).label(_NO_LABEL_ROW))
        .select_from(i.outerjoin(lb, lb.c[lab_key] == i.c[columns.key]))
        .where(i.c[part] >= sa.literal(start, sa.Date), i.c[part] <= sa.literal(end, sa.Date))
    )
    try:
        with engine.connect() as conn:
            frame = pd.read_sql(stmt, conn)
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"reading {imp_table} and {lab_table} failed: {exc.orig}") from exc
    duplicates = int(frame[columns.key].duplicated().sum())
    frame = frame.drop_duplicates(columns.key, keep="first")
    missing = int(frame.pop(_NO_LABEL_ROW).sum())
    frame = normalise_label_frame(frame, columns)
    frame.attrs["missing_label_rows"] = missing
    frame.attrs["duplicate_label_rows"] = duplicates
    return frame.reset_index(drop=True)


def resolve_labels(
    frame: pd.DataFrame,
    as_of: dt.date | dt.datetime,
    windows: Mapping[str, float],
    *,
    columns: LabelColumns,
    naive: bool = False,
) -> pd.DataFrame:
    """Apply the as-of rule: ``label_{task}`` (float 0/1) and ``mask_{task}`` (usable as of A).

    ``label_{task}`` is 1.0 when the event loaded before A. ``mask_{task}`` is True only where
    the stage's maturity window has closed (event time ``+ window <= A``): there the label is
    final, positive or negative. An immature impression is masked *even when its event has
    already loaded*: keeping the early positives of immature cohorts while masking their
    negatives would inflate the stage's rate (2x for a slow stage in docs/labels.md).
    Impressions at or after A are dropped (they do not exist yet).

    Args:
        frame: a normalised labels frame (:func:`normalise_label_frame`).
        as_of: the as-of date (A 00:00 UTC) or instant.
        windows: per stage, the maturity window in days.
        columns: the frame's column names.
        naive: the *wrong* rule, for demonstrations only: every unknown outcome is counted as a
            negative and every mask is True.

    Returns:
        The rows before A with ``label_{task}`` and ``mask_{task}`` added per stage.
    """
    import numpy as np

    instant = as_of_instant(as_of)
    event = columns.event_time
    out = frame.loc[frame[event] < instant].copy()
    for task, days in windows.items():
        loaded = out[columns.loaded(task)]
        positive = (loaded.notna() & (loaded < instant)).to_numpy()
        matured = (out[event] + dt.timedelta(days=days) <= instant).to_numpy()
        out[f"label_{task}"] = positive.astype(np.float64)
        out[f"mask_{task}"] = np.ones(len(out), dtype=bool) if naive else matured
    return out
