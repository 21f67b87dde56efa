"""Helpers for the simulator tests: read a whole warehouse into frames, compare cells."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import sqlalchemy as sa

from funnelguard.warehouse import TASKS, TIMESTAMP_COLUMNS, connect, feature_names

TABLES = ("impressions", "offline_features", "serving_log", "labels", "oracle")
ENV_TABLE = {"offline": "offline_features", "online": "serving_log", "impressions": "impressions",
             "labels": "labels"}
SCORES = tuple(f"score_{t}" for t in TASKS)


def read_tables(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    """Every simulator table of a warehouse, sorted by impression_id (stable).

    Timestamps come back as ``datetime64[ns, UTC]``, ``ds`` as ``datetime.date``.
    """
    out = {}
    with engine.connect() as conn:
        for name in (*TABLES, "fault_manifest"):
            frame = pd.read_sql(sa.text(f"SELECT * FROM {name}"), conn)
            for col in TIMESTAMP_COLUMNS.get(name, ()):
                frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
            if len(frame):
                frame["ds"] = pd.to_datetime(frame["ds"]).dt.date
            if name != "fault_manifest":
                frame = frame.sort_values(["impression_id"], kind="stable").reset_index(drop=True)
            out[name] = frame
    return out


@functools.lru_cache(maxsize=16)
def read_warehouse(url: str) -> dict[str, pd.DataFrame]:
    """``read_tables`` of a warehouse URL, cached per test session (do not mutate)."""
    engine = connect(url)
    try:
        return read_tables(engine)
    finally:
        engine.dispose()


def cells_differ(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise "not the same value" treating NULL == NULL and inf == inf."""
    a_null, b_null = a.isna().to_numpy(), b.isna().to_numpy()
    if isinstance(a.dtype, pd.DatetimeTZDtype):
        a, b = a.dt.tz_convert(None), b.dt.tz_convert(None)
    with np.errstate(invalid="ignore"):
        equal = (a.to_numpy() == b.to_numpy())
    return ~((a_null & b_null) | (~a_null & ~b_null & equal))


__all__ = ["read_tables", "read_warehouse", "cells_differ", "TABLES", "ENV_TABLE", "SCORES",
           "feature_names"]


def changed_cells(clean: dict[str, pd.DataFrame], faulted: dict[str, pd.DataFrame]
                  ) -> tuple[dict[tuple[str, str, object], int], dict[str, np.ndarray]]:
    """Cells that differ between two warehouses with the same impressions.

    Duplicated rows of ``faulted`` (exact copies) are dropped first. Returns a count of changed
    rows per ``(table, column, ds)`` and, per table, the mask of rows with any changed cell.
    """
    counts: dict[tuple[str, str, object], int] = {}
    rows: dict[str, np.ndarray] = {}
    for name in TABLES:
        c = clean[name]
        f = faulted[name].drop_duplicates(ignore_index=True)
        assert len(c) == len(f), f"{name}: {len(f)} distinct rows, clean has {len(c)}"
        assert (c["impression_id"].to_numpy() == f["impression_id"].to_numpy()).all()
        any_row = np.zeros(len(c), dtype=bool)
        for col in c.columns:
            diff = cells_differ(c[col], f[col])
            any_row |= diff
            if diff.any():
                for ds, n in pd.Series(c["ds"][diff]).value_counts().items():
                    counts[(name, col, ds)] = int(n)
        rows[name] = any_row
    return counts, rows
