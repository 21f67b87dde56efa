"""The results store: runs, findings, metrics, alert outbox and state, training runs, models.

``open_store(url)`` connects, brings the schema to the latest Alembic revision (own version
table, so it can share a database with Airflow) and returns a :class:`Store`. Each stored run
keeps its :class:`Provenance` (project file, contract file), which its alerts are addressed
from. SQLite is the
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
from monitors.store.store import (
    Provenance,
    Store,
    fingerprint_of,
    open_store,
    provenance_of,
    recording_project,
)

__all__ = [
    "open_store",
    "Store",
    "fingerprint_of",
    "Provenance",
    "provenance_of",
    "recording_project",
    "Base",
    "Run",
    "FindingRow",
    "MetricRow",
    "AlertOutbox",
    "AlertState",
    "TrainingRun",
    "ModelRow",
]
