"""Contract checks run inside the warehouse's own engine (SQLite, PostgreSQL, DuckDB, Spark).

The contract's checks for one environment compile to SQL over one partition
(:func:`compile_plan`, dialect-specific leaves in :mod:`contracts.pushdown.dialects`); the
runner (:func:`validate_partition_in_engine`) sends one aggregate query, one query for all
segment columns and one examples query to any :class:`funnelguard.engines.SqlEngine`, and
fills the same tally as the in-memory Pandera path, so both give the same findings, messages and JSON.
"""

from __future__ import annotations

from contracts.pushdown.dialects import Dialect, dialect_of
from contracts.pushdown.plan import CheckSql, Plan, compile_plan
from contracts.pushdown.run import table_kinds, validate_partition_in_engine

__all__ = ["Dialect", "dialect_of", "CheckSql", "Plan", "compile_plan", "table_kinds",
           "validate_partition_in_engine"]
