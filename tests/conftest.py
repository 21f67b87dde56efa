"""Shared fixtures: simulated warehouses built once per test session, PostgreSQL, stores.

``warehouse`` builds (and caches for the session) a simulated SQLite warehouse for a given
configuration; tests ask for the faults they need instead of building their own.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START = dt.date(2026, 10, 1)
DAYS = 24
LAST = START + dt.timedelta(days=DAYS - 1)  # 2026-10-24
AS_OF = START + dt.timedelta(days=DAYS)  # 2026-10-25, the simulator's "now"


def _postgres_reachable() -> str | None:
    try:
        engine = sa.create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The PostgreSQL test database; skips with the reason unless FUNNELGUARD_REQUIRE_POSTGRES=1."""
    problem = _postgres_reachable()
    if problem:
        msg = f"PostgreSQL not reachable at {PG_URL}: {problem}"
        if os.environ.get("FUNNELGUARD_REQUIRE_POSTGRES") == "1":
            pytest.fail(msg + " (FUNNELGUARD_REQUIRE_POSTGRES=1)")
        pytest.skip(msg)
    return PG_URL


@pytest.fixture
def pg_schema_url(pg_url, request):
    """A PostgreSQL URL whose search_path is a fresh schema of this test's own (dropped after)."""
    import re

    schema = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{pg_url}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


class WarehouseFactory:
    """Builds simulated SQLite warehouses on demand, each configuration once per session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._built: dict[tuple, str] = {}

    def __call__(self, *faults: str, days: int = DAYS, per_day: int = 3000, seed: int = 7,
                 start: dt.date = START) -> str:
        key = (faults, days, per_day, seed, start)
        if key not in self._built:
            from funnelguard.simulator import SimConfig, parse_fault, simulate
            from funnelguard.warehouse import connect

            path = self.root / f"wh_{len(self._built)}.db"
            url = f"sqlite:///{path}"
            engine = connect(url, must_exist=False)
            config = SimConfig(start=start, days=days, per_day=per_day, seed=seed,
                               faults=tuple(parse_fault(f, start=start, days=days) for f in faults))
            simulate(engine, config)
            engine.dispose()
            self._built[key] = url
        return self._built[key]


@pytest.fixture(autouse=True)
def _own_spool(tmp_path, monkeypatch):
    """A test whose store write fails spools into its own folder, never the repository's."""
    monkeypatch.setenv("FUNNELGUARD_SPOOL", str(tmp_path / "spool"))


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> WarehouseFactory:
    """``warehouse("serving_default:feature=approval_odds", per_day=2000)`` -> SQLite URL."""
    return WarehouseFactory(tmp_path_factory.mktemp("warehouses"))


@pytest.fixture(scope="session")
def clean_warehouse(warehouse) -> str:
    """The default clean warehouse: 24 days from 2026-10-01, 3000 impressions a day, seed 7."""
    return warehouse()


@pytest.fixture
def store_url(tmp_path) -> str:
    """A fresh SQLite results store for one test."""
    return f"sqlite:///{tmp_path / 'results.db'}"


@pytest.fixture
def run_cli(tmp_path, monkeypatch):
    """Run ``funnelguard ...`` in-process; returns (exit code, RunResult | None)."""
    from funnelguard.cli import run

    monkeypatch.setenv("FUNNELGUARD_STORE", f"sqlite:///{tmp_path / 'cli-results.db'}")

    def _run(*argv: str):
        return run([str(a) for a in argv])

    return _run


# -- the second project: a lending marketplace with its own names (tests/byow/) ---------------


@pytest.fixture(scope="session")
def marketplace(tmp_path_factory):
    """The second project, clean, on SQLite (built once per session)."""
    from tests.byow.marketplace import build_marketplace

    return build_marketplace(tmp_path_factory.mktemp("marketplace"))


@pytest.fixture(scope="session")
def marketplace_faulted(tmp_path_factory):
    """The second project on SQLite with the online fault on its last partition: quoted_apr
    stuck at its sentinel -9.0 for 40 % of channel='app' rows."""
    from tests.byow.marketplace import build_marketplace

    return build_marketplace(tmp_path_factory.mktemp("marketplace_faulted"), fault=True)


@pytest.fixture(scope="session")
def marketplace_pg(tmp_path_factory, pg_url):
    """The second project, clean, on PostgreSQL (its own schema, dropped after the session)."""
    from tests.byow.marketplace import build_marketplace

    schema = f"fg_marketplace_{os.getpid()}"  # its own per session: runs may share the server
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    yield build_marketplace(tmp_path_factory.mktemp("marketplace_pg"), url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()
