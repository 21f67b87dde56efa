"""Warehouse conventions: URLs, dates, missing tables and columns, UTC timestamps."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from funnelguard.errors import EnvironmentFailure, InputError
from funnelguard.warehouse import (
    as_of_timestamp,
    connect,
    metadata,
    parse_date,
    read_partition,
    require_columns,
)


def test_bad_url_is_input_error():
    with pytest.raises(InputError, match="expected a SQLAlchemy URL"):
        connect("not a url")


def test_missing_sqlite_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="no file at"):
        connect(f"sqlite:///{tmp_path / 'nope.db'}")


def test_unreachable_database_is_environment_failure():
    with pytest.raises(EnvironmentFailure, match="unreachable"):
        connect("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2")


def test_parse_date_names_the_flag():
    assert parse_date("2026-10-24") == dt.date(2026, 10, 24)
    with pytest.raises(InputError, match="--as-of: expected a date YYYY-MM-DD, found '24/10/2026'"):
        parse_date("24/10/2026", flag="--as-of")


def test_as_of_is_midnight_utc():
    assert as_of_timestamp(dt.date(2026, 10, 25)) == dt.datetime(2026, 10, 25, tzinfo=dt.UTC)


def test_missing_table_and_column_are_named(tmp_path):
    engine = connect(f"sqlite:///{tmp_path / 'w.db'}", must_exist=False)
    with pytest.raises(InputError, match="expected table 'impressions'"):
        require_columns(engine, "impressions")
    metadata.create_all(engine)
    with pytest.raises(InputError, match=r"expected columns \['nope'\] in table 'impressions'"):
        require_columns(engine, "impressions", ["impression_id", "nope"])


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_timestamps_round_trip_as_utc(backend, tmp_path, request):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'w.db'}"
        engine = connect(url, must_exist=False)
        schema = None
    else:
        schema = "core_test"
        with sa.create_engine(request.getfixturevalue("pg_url")).begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        # A schema of its own through the URL, as a user would point at one.
        engine = connect(request.getfixturevalue("pg_url") + f"?options=-csearch_path%3D{schema}")
    metadata.tables["impressions"].create(engine)
    # 23:30 in UTC-5 is 04:30 UTC the next day: ds follows the UTC date.
    local = dt.datetime(2026, 10, 23, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    with engine.begin() as conn:
        conn.execute(metadata.tables["impressions"].insert(), [dict(
            impression_id="i1", ds=dt.date(2026, 10, 24), request_id="r", user_id="u",
            item_id="it", merchant_id="m", event_ts=local, position=1, device_type="ios")])
    frame = read_partition(engine, "impressions", dt.date(2026, 10, 24), partition_column="ds",
                           timestamps=("event_ts",))
    assert len(frame) == 1
    assert str(frame["event_ts"].dt.tz) == "UTC"
    assert frame["event_ts"].iloc[0].to_pydatetime() == dt.datetime(2026, 10, 24, 4, 30, tzinfo=dt.UTC)
    assert frame["ds"].iloc[0] == dt.date(2026, 10, 24)
    if schema:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
