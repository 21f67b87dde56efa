"""Faults the training-set audit and the history bounds must catch, written with SQL on a copy
of a built warehouse (the session's warehouses are shared; a copy is this module's own)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import sqlalchemy as sa

__all__ = ["copy_warehouse", "poison_extreme", "leak_label"]


def copy_warehouse(url: str, folder: Path, name: str) -> str:
    """A copy of a SQLite warehouse under ``folder``; returns its URL."""
    source = Path(url.removeprefix("sqlite:///"))
    target = folder / f"{name}.db"
    shutil.copyfile(source, target)
    return f"sqlite:///{target}"


def poison_extreme(url: str, table: str, column: str, partition: str, day: dt.date, *,
                   every: int = 200, value: float = 1e30, default: float | None = None) -> int:
    """Set ``column`` to ``value`` on every ``every``-th row (by rowid) of one partition whose
    value is a legitimate one (not NULL, not the default): 0.5 % of the day for 200."""
    skip = "" if default is None else f" AND {column} != {default}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        n = conn.execute(sa.text(
            f"UPDATE {table} SET {column} = :v WHERE {partition} = :d AND {column} IS NOT NULL"
            f"{skip} AND rowid % {every} = 0"), {"v": value, "d": day.isoformat()}).rowcount
    engine.dispose()
    return n


def leak_label(url: str, *, features: str, feature: str, key: str, partition: str,
               labels: str, label_column: str, since: dt.date, hit: float, miss: float) -> int:
    """Target leakage: from ``since`` on, the offline ``feature`` is ``hit`` where the outcome
    ``label_column`` happened and ``miss`` where it did not."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the copy's own index: the correlated lookup stays linear
        conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS ix_leak_{labels} ON {labels} ({key})"))
        n = conn.execute(sa.text(
            f"UPDATE {features} SET {feature} = CASE WHEN (SELECT l.{label_column} FROM {labels} l "
            f"WHERE l.{key} = {features}.{key}) IS NOT NULL THEN :hit ELSE :miss END "
            f"WHERE {partition} >= :since"),
            {"hit": hit, "miss": miss, "since": since.isoformat()}).rowcount
    engine.dispose()
    return n
