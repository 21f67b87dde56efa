"""The results store: runs, findings, metrics, alert outbox and state, training runs, models.

``open_store(url)`` connects, brings the schema to the latest Alembic revision (own version
table, so it can share a database with Airflow) and returns a :class:`Store`. Each stored run
keeps its :class:`Provenance` (project file, contract file), which its alerts are addressed
from. Writes are race-free upserts per run key; a store that cannot be opened or written raises
:class:`StoreUnavailable` (exit 3), and :func:`record_or_spool` then keeps the run in the local
spool, which :func:`sync` (``funnelguard store sync``) writes to the store once. SQLite is the
embedded default (``sqlite:///.funnelguard/results.db``); PostgreSQL is the production one.
"""

from __future__ import annotations

from monitors.store.errors import StoreUnavailable
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
from monitors.store.spool import record_or_spool, sync
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
    "StoreUnavailable",
    "record_or_spool",
    "sync",
    "Base",
    "Run",
    "FindingRow",
    "MetricRow",
    "AlertOutbox",
    "AlertState",
    "TrainingRun",
    "ModelRow",
]
