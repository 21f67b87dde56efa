"""The results store: runs, findings, metrics, alert outbox and state, training runs, models.

``open_store(url)`` connects, brings the schema to the latest Alembic revision (own version
table, so it can share a database with Airflow) and returns a :class:`Store`. SQLite is the
embedded default (``sqlite:///.funnelguard/results.db``); PostgreSQL is the production one.
"""

from __future__ import annotations

from monitors.store.models import (
    AlertOutbox,
    AlertState,
    Base,
    FindingRow,
    MetricRow,
    ModelRow,
    Run,
    TrainingRun,
)
from monitors.store.store import Store, fingerprint_of, open_store

__all__ = [
    "open_store",
    "Store",
    "fingerprint_of",
    "Base",
    "Run",
    "FindingRow",
    "MetricRow",
    "AlertOutbox",
    "AlertState",
    "TrainingRun",
    "ModelRow",
]
