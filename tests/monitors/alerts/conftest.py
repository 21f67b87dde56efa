"""Fixtures for the alerts tests: a live fake Slack, a movable clock, settings, owners from
the real contracts, and stores on SQLite and in a private PostgreSQL schema."""

from __future__ import annotations

import socket
import uuid

import pytest
from alert_cases import SECRET, Clock, FakeSlack, connection_json


@pytest.fixture
def slack(monkeypatch):
    """A live fake Slack; ``AIRFLOW_CONN_FUNNELGUARD_SLACK`` points at it."""
    fake = FakeSlack()
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", connection_json(fake.url))
    yield fake
    fake.close()


@pytest.fixture
def refused_url() -> str:
    """A webhook URL on a port nobody listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/services/{SECRET}"


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """The time the outbox sees (``record_run``) and flushes are given."""
    c = Clock()
    monkeypatch.setattr("monitors.alerts.outbox.utcnow", c)
    return c


@pytest.fixture
def settings():
    from monitors.alerts.settings import AlertSettings

    return AlertSettings(base_url="https://funnelguard.example.com", timeout=0.5,
                         max_rate_limit_wait=0.0, default_owner="<!subteam^S0MLPLATFORM>")


@pytest.fixture
def directory(settings):
    from contracts import load_contract
    from monitors.alerts.owners import OwnerDirectory

    return OwnerDirectory(settings.default_owner,
                          {n: load_contract(n) for n in ("ranking_features", "impressions",
                                                         "labels")})


@pytest.fixture
def store(store_url):
    from monitors.store import open_store

    return open_store(store_url)


@pytest.fixture
def pg_store_url(pg_url):
    """A private schema in the shared PostgreSQL database, dropped afterwards."""
    import sqlalchemy as sa

    schema = f"fg_alerts_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    yield f"{pg_url}?options=-csearch_path%3D{schema}"
    from monitors.store.store import _MIGRATED

    for url in [u for u in _MIGRATED if schema in u]:
        _MIGRATED.pop(url).dispose()
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()
