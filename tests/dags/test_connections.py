"""Airflow connections become SQLAlchemy URLs in one place."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from airflow.sdk import Connection

from funnelguard.orchestration.connections import (
    ConnectionConfigError,
    sqlalchemy_url,
    url_for_connection,
)


def _conn(uri: str, conn_id: str = "funnelguard_warehouse") -> Connection:
    return Connection.from_uri(uri, conn_id=conn_id)


def test_postgres_uri_becomes_psycopg_url():
    url = sqlalchemy_url(_conn("postgres://fg:p%40ss%2Fw@db.internal:5432/warehouse?sslmode=require&cursor=dictcursor"))
    assert url == "postgresql+psycopg://fg:p%40ss%2Fw@db.internal:5432/warehouse?sslmode=require"
    parsed = sa.engine.make_url(url)
    assert (parsed.drivername, parsed.password, parsed.database) == ("postgresql+psycopg", "p@ss/w", "warehouse")


def test_postgresql_json_connection_without_password():
    conn = Connection(conn_id="funnelguard_store", conn_type="postgresql", host="127.0.0.1",
                      login="postgres", port=5432, schema="test")
    assert sqlalchemy_url(conn) == "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def test_sqlite_uri_and_json_forms():
    assert sqlalchemy_url(_conn("sqlite:////data/warehouse.db")) == "sqlite:////data/warehouse.db"
    json_form = Connection(conn_id="w", conn_type="sqlite", host="/data/warehouse.db")
    assert sqlalchemy_url(json_form) == "sqlite:////data/warehouse.db"


def test_extra_sqlalchemy_url_is_used_as_given():
    conn = Connection(conn_id="w", conn_type="generic",
                      extra='{"sqlalchemy_url": "postgresql+psycopg://u@h/db"}')
    assert sqlalchemy_url(conn) == "postgresql+psycopg://u@h/db"


def test_unsupported_type_names_the_connection_and_what_was_expected():
    with pytest.raises(ConnectionConfigError, match=r"connection 'funnelguard_warehouse': expected "
                       r"conn_type postgres, postgresql or sqlite .* found conn_type 'mysql'"):
        sqlalchemy_url(_conn("mysql://u@h/db"))


def test_postgres_without_host_is_an_input_error():
    conn = Connection(conn_id="funnelguard_store", conn_type="postgres", schema="db")
    with pytest.raises(ConnectionConfigError, match="expected a host"):
        sqlalchemy_url(conn)


def test_lookup_from_the_environment(monkeypatch, pg_url):
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_STORE", "postgres://postgres@127.0.0.1:5432/test")
    url = url_for_connection("funnelguard_store")
    assert url == pg_url
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_missing_connection_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_FUNNELGUARD_NOPE", raising=False)
    with pytest.raises(ConnectionConfigError, match="AIRFLOW_CONN_FUNNELGUARD_NOPE"):
        url_for_connection("funnelguard_nope")
