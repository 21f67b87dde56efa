"""Airflow connections as SQLAlchemy URLs: the one place a connection becomes a database URL.

The DAGs name three connections (``funnelguard_warehouse``, ``funnelguard_store``,
``funnelguard_slack``); tasks resolve them at run time, never at parse time. Airflow's
``postgres`` connections render as ``postgres://...``, which SQLAlchemy 2 rejects, and its
``sqlite`` connections keep the file path in ``schema`` (URI form) or ``host`` (JSON form), so
:func:`sqlalchemy_url` builds the URL from the connection's fields instead of ``get_uri()``:
``postgres``/``postgresql`` → ``postgresql+psycopg://``, ``sqlite`` stays ``sqlite:///PATH``, and
any connection whose extra has ``sqlalchemy_url`` uses that URL as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

from funnelguard.errors import InputError

__all__ = [
    "WAREHOUSE_CONN_ID",
    "STORE_CONN_ID",
    "SLACK_CONN_ID",
    "ConnectionFields",
    "ConnectionConfigError",
    "ConnectionMissing",
    "sqlalchemy_url",
    "url_for_connection",
]

WAREHOUSE_CONN_ID = "funnelguard_warehouse"
STORE_CONN_ID = "funnelguard_store"
SLACK_CONN_ID = "funnelguard_slack"

# libpq parameters an Airflow postgres connection may carry in its extra; the rest
# (cursor, iam, aws_conn_id ...) mean something to Airflow's hook only.
_LIBPQ_EXTRAS = (
    "sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name",
    "options", "target_session_attrs", "keepalives", "keepalives_idle",
)


class ConnectionFields(Protocol):
    """What :func:`sqlalchemy_url` reads: the fields of an Airflow ``Connection``."""

    conn_id: str | None
    conn_type: str | None
    host: str | None
    login: str | None
    password: str | None
    port: int | None
    schema: str | None

    @property
    def extra_dejson(self) -> Mapping[str, Any]: ...


class ConnectionConfigError(InputError):
    """An Airflow connection is missing or cannot be used as a database URL (exit 2)."""


class ConnectionMissing(ConnectionConfigError):
    """No Airflow connection of that id (the DAG tasks then use the project's URL)."""


def _env_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def _postgres_url(conn: ConnectionFields) -> str:
    if not conn.host:
        raise ConnectionConfigError(
            f"connection {conn.conn_id!r}: expected a host for a {conn.conn_type} connection, "
            f"found none (set it with {_env_name(conn.conn_id or '')}="
            "postgres://USER:PASSWORD@HOST:5432/DB)"
        )
    auth = ""
    if conn.login:
        auth = quote(conn.login, safe="")
        if conn.password:
            auth += ":" + quote(conn.password, safe="")
        auth += "@"
    port = f":{conn.port}" if conn.port else ""
    database = f"/{quote(conn.schema, safe='')}" if conn.schema else ""
    extra = conn.extra_dejson or {}
    query = "&".join(
        f"{key}={quote(str(extra[key]), safe='')}" for key in _LIBPQ_EXTRAS if key in extra
    )
    return f"postgresql+psycopg://{auth}{conn.host}{port}{database}" + (f"?{query}" if query else "")


def _sqlite_url(conn: ConnectionFields) -> str:
    # URI form (sqlite:////abs/path.db) puts the path in schema; JSON form and Airflow's
    # SqliteHook use host.
    path = conn.host or conn.schema
    if not path:
        raise ConnectionConfigError(
            f"connection {conn.conn_id!r}: expected the SQLite file path (host, or the path of "
            f"a sqlite:////abs/path.db URI), found none"
        )
    return "sqlite:///:memory:" if path == ":memory:" else f"sqlite:///{path}"


def sqlalchemy_url(conn: ConnectionFields) -> str:
    """The SQLAlchemy URL of an Airflow connection.

    Args:
        conn: an Airflow ``Connection`` (or anything with its fields).

    Returns:
        ``postgresql+psycopg://user:password@host:port/db`` for ``postgres``/``postgresql``
        connections (libpq extras such as ``sslmode`` become query parameters),
        ``sqlite:///PATH`` for ``sqlite`` ones, or the extra's ``sqlalchemy_url`` as given.

    Raises:
        ConnectionConfigError: the connection type is not a database we read, or a field is missing.
    """
    extra = conn.extra_dejson or {}
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    kind = (conn.conn_type or "").lower()
    if kind in ("postgres", "postgresql"):
        return _postgres_url(conn)
    if kind == "sqlite":
        return _sqlite_url(conn)
    raise ConnectionConfigError(
        f"connection {conn.conn_id!r}: expected conn_type postgres, postgresql or sqlite (or an "
        f"extra 'sqlalchemy_url'), found conn_type {conn.conn_type!r}"
    )


def url_for_connection(conn_id: str) -> str:
    """Look up an Airflow connection (metadata DB, secrets backend or ``AIRFLOW_CONN_*``) and
    return its SQLAlchemy URL. Imports Airflow, so call it at run time only.

    Raises:
        ConnectionMissing: no such connection.
        ConnectionConfigError: it is not a usable database connection.
    """
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException as exc:
        raise ConnectionMissing(
            f"expected an Airflow connection {conn_id!r} (airflow connections add {conn_id} ..., "
            f"or the environment variable {_env_name(conn_id)}), found none"
        ) from exc
    return sqlalchemy_url(conn)
