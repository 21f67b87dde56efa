"""The labels' as-of rule, in one place for the gate and the training-set builder.

As of time A (``--as-of A`` = A 00:00 UTC) a task's outcome for an impression is *positive* if
its event was loaded before A (``{task}_loaded_at < A``), *negative* if not and the maturity
window has closed (``event_ts + window <= A``), and *unknown* otherwise. For training, only
outcomes whose window has closed are used (:func:`resolve_labels`). Impressions at or after
A do not exist yet. Timestamps may come naive (read as UTC) or tz-aware in any zone; both are
normalised to UTC before any comparison, so an impression at 23:30 UTC belongs to its UTC day.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from funnelguard.warehouse import TASKS, as_of_timestamp, require_columns
from monitors.maturity.errors import LabelFrameError, MaturityConfigError

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from contracts.spec import Contract

__all__ = [
    "as_of_instant",
    "maturity_windows",
    "matured_through",
    "read_label_frame",
    "normalise_label_frame",
    "resolve_labels",
]


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


def maturity_windows(contract: Contract | None, tasks: tuple[str, ...] = TASKS) -> dict[str, float]:
    """Per task, the maturity window in days (the labels contract's, else the defaults).

    Raises:
        MaturityConfigError: a window is not a positive finite number of days, or counts from a
            timestamp other than the impression's ``event_ts``.
    """
    from contracts.spec import DEFAULT_MATURITY_DAYS, MaturityWindow

    windows: dict[str, float] = {}
    for task in tasks:
        if contract is not None:
            window = contract.maturity_window(task)
        elif task in DEFAULT_MATURITY_DAYS:
            window = MaturityWindow(task, DEFAULT_MATURITY_DAYS[task])
        else:
            raise MaturityConfigError(
                f"expected a maturity window for task {task!r} (tasks {list(DEFAULT_MATURITY_DAYS)}), "
                "found none and no labels contract")
        where = f"labels contract {contract.path}" if contract is not None else "defaults"
        days = float(window.days)
        if not math.isfinite(days) or days <= 0:
            raise MaturityConfigError(
                f"{where}: expected a positive maturity window for task {task!r}, found {window.days!r}")
        if window.counts_from != "event_ts":
            raise MaturityConfigError(
                f"{where}: the maturity window of task {task!r} counts from {window.counts_from!r}; "
                "expected 'event_ts' (the impression time), the only anchor the as-of rule supports")
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


def normalise_label_frame(frame: pd.DataFrame, tasks: tuple[str, ...] = TASKS) -> pd.DataFrame:
    """A copy with UTC timestamps and a ``ds`` date per row (the UTC day of ``event_ts``).

    Args:
        frame: one row per impression with ``impression_id``, ``event_ts`` and, per task,
            ``{task}_loaded_at`` (``{task}_ts`` optional); ``ds`` is derived when absent.

    Raises:
        LabelFrameError: a required column is missing or holds non-timestamps.
    """
    needed = ["impression_id", "event_ts", *[f"{t}_loaded_at" for t in tasks]]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise LabelFrameError(
            f"labels frame: expected columns {missing} (one row per impression: impression_id, "
            f"event_ts and {{task}}_loaded_at per task); found {list(frame.columns)}")
    out = frame.copy()
    stamped = ["event_ts", *[f"{t}_{s}" for t in tasks for s in ("ts", "loaded_at")]]
    for col in stamped:
        if col in out.columns:
            out[col] = _to_utc(out[col], col)
    if out["event_ts"].isna().any():
        raise LabelFrameError(
            f"labels frame: expected event_ts on every impression, found "
            f"{int(out['event_ts'].isna().sum())} rows without one")
    out["ds"] = out["event_ts"].dt.date
    return out


def read_label_frame(engine: Engine, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Impressions with ``start <= ds <= end`` left-joined to their labels row, in one query.

    An impression without a labels row has no observed event for any task (its
    ``{task}_loaded_at`` are null); the count is kept in ``frame.attrs['missing_label_rows']``,
    and repeated impression ids (one row is kept) in ``frame.attrs['duplicate_label_rows']``.
    Timestamps are fetched raw and parsed vectorised (SQLite returns text).
    """
    import pandas as pd
    import sqlalchemy as sa

    from funnelguard.errors import EnvironmentFailure

    label_cols = [f"{t}_{s}" for t in TASKS for s in ("ts", "loaded_at")]
    require_columns(engine, "impressions", ["impression_id", "ds", "event_ts"])
    require_columns(engine, "labels", ["impression_id", "ds", *label_cols])
    stmt = sa.text(
        "SELECT i.impression_id, i.event_ts, "
        + ", ".join(f"l.{c}" for c in label_cols)
        + ", CASE WHEN l.impression_id IS NULL THEN 1 ELSE 0 END AS no_label_row"
        " FROM impressions i LEFT JOIN labels l ON l.impression_id = i.impression_id"
        " WHERE i.ds >= :start AND i.ds <= :end"
    ).bindparams(sa.bindparam("start", type_=sa.Date), sa.bindparam("end", type_=sa.Date))
    try:
        with engine.connect() as conn:
            frame = pd.read_sql(stmt, conn, params={"start": start, "end": end})
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"reading impressions and labels failed: {exc.orig}") from exc
    duplicates = int(frame["impression_id"].duplicated().sum())
    frame = frame.drop_duplicates("impression_id", keep="first")
    missing = int(frame.pop("no_label_row").sum())
    frame = normalise_label_frame(frame)
    frame.attrs["missing_label_rows"] = missing
    frame.attrs["duplicate_label_rows"] = duplicates
    return frame.reset_index(drop=True)


def resolve_labels(
    frame: pd.DataFrame,
    as_of: dt.date | dt.datetime,
    windows: Mapping[str, float],
    *,
    naive: bool = False,
) -> pd.DataFrame:
    """Apply the as-of rule: ``label_{task}`` (float 0/1) and ``mask_{task}`` (usable as of A).

    ``label_{task}`` is 1.0 when the event loaded before A. ``mask_{task}`` is True only where
    the task's maturity window has closed (``event_ts + window <= A``): there the label is
    final, positive or negative. An immature impression is masked *even when its event has
    already loaded*: keeping the early positives of immature cohorts while masking their
    negatives would inflate the task's rate (2x for conversion in docs/labels.md). Impressions
    at or after A are dropped (they do not exist yet).

    Args:
        frame: a normalised labels frame (:func:`normalise_label_frame`).
        as_of: the as-of date (A 00:00 UTC) or instant.
        windows: per task, the maturity window in days.
        naive: the *wrong* rule, for demonstrations only: every unknown outcome is counted as a
            negative and every mask is True.

    Returns:
        The rows before A with ``label_{task}`` and ``mask_{task}`` added per task.
    """
    import numpy as np

    instant = as_of_instant(as_of)
    out = frame.loc[frame["event_ts"] < instant].copy()
    for task, days in windows.items():
        loaded = out[f"{task}_loaded_at"]
        positive = (loaded.notna() & (loaded < instant)).to_numpy()
        matured = (out["event_ts"] + dt.timedelta(days=days) <= instant).to_numpy()
        out[f"label_{task}"] = positive.astype(np.float64)
        out[f"mask_{task}"] = np.ones(len(out), dtype=bool) if naive else matured
    return out
