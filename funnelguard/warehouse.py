"""The warehouse: its tables and columns, time conventions, and reading one partition.

These names are the product's interface (docs/data.md): DAGs, users' scripts and acceptance
checks rely on them. Timestamps are UTC: naive UTC on SQLite, ``timestamptz`` on PostgreSQL;
when read into pandas they are always ``datetime64[ns, UTC]``. Every table has ``ds`` (the UTC
date of the impression's ``event_ts``) and ``impression_id`` (text).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from funnelguard.errors import EnvironmentFailure, InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TASKS",
    "FEATURES",
    "FEATURE_BY_NAME",
    "ITEM_TYPES",
    "DEVICE_TYPES",
    "TIMESTAMP_COLUMNS",
    "FeatureSpec",
    "feature_names",
    "metadata",
    "UTCDateTime",
    "connect",
    "parse_date",
    "as_of_timestamp",
    "require_columns",
    "read_partition",
    "read_range",
]

TASKS: tuple[str, ...] = ("click", "application", "conversion", "approval")

Kind = Literal["int", "float", "category", "id"]


@dataclass(frozen=True)
class FeatureSpec:
    """A model feature as the warehouse stores it.

    Attributes:
        name: column name in ``offline_features`` and ``serving_log``.
        kind: ``int``, ``float``, ``category`` or ``id`` (high-cardinality id, hashed by the model).
        default: the sentinel a pipeline writes when it has no value.
        low, high: the legitimate range (the default is not counted as out of range).
        categories: allowed values of a categorical (the default excluded).
    """

    name: str
    kind: Kind
    default: float | int | str | None
    low: float | None = None
    high: float | None = None
    categories: tuple[str, ...] = ()


ITEM_TYPES = ("card", "personal_loan", "auto_loan", "mortgage", "insurance")
DEVICE_TYPES = ("ios", "android", "web")

FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("user_id", "id", "unknown"),
    FeatureSpec("item_id", "id", "unknown"),
    FeatureSpec("merchant_id", "id", "unknown"),
    FeatureSpec("credit_score", "int", -1, 300, 850),
    FeatureSpec("credit_utilization", "float", -1.0, 0.0, 1.0),
    FeatureSpec("annual_income", "float", -1.0, 0.0, None),
    FeatureSpec("num_open_accounts", "int", -1, 0, None),
    FeatureSpec("num_recent_inquiries", "int", -1, 0, None),
    FeatureSpec("account_age_days", "int", -1, 0, None),
    FeatureSpec("days_since_last_visit", "int", -1, 0, None),
    FeatureSpec("user_ctr_30d", "float", 0.0, 0.0, 1.0),
    FeatureSpec("item_type", "category", "unknown", categories=ITEM_TYPES),
    FeatureSpec("item_apr", "float", -1.0, 0.0, 40.0),
    FeatureSpec("merchant_approval_rate_90d", "float", -1.0, 0.0, 1.0),
    FeatureSpec("approval_odds", "float", 0.0, 0.0, 1.0),
    FeatureSpec("hour_of_day", "int", -1, 0, 23),
    FeatureSpec("device_type", "category", "unknown", categories=DEVICE_TYPES),
    FeatureSpec("position", "int", -1, 1, None),
)
FEATURE_BY_NAME = {f.name: f for f in FEATURES}


def feature_names(kinds: Sequence[str] | None = None) -> list[str]:
    """Feature column names, optionally only those of the given kinds."""
    return [f.name for f in FEATURES if kinds is None or f.kind in kinds]


class UTCDateTime(sa.types.TypeDecorator):
    """UTC timestamps: ``timestamptz`` on PostgreSQL, naive UTC elsewhere (SQLite).

    Python values are tz-aware UTC ``datetime`` going in and coming out.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):  # noqa: D401 - SQLAlchemy hook
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.DateTime(timezone=True))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if hasattr(value, "to_pydatetime"):
            value = value.to_pydatetime()
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _feature_column(spec: FeatureSpec) -> sa.Column:
    if spec.kind in ("category", "id"):
        return sa.Column(spec.name, sa.Text)
    if spec.kind == "int":
        return sa.Column(spec.name, sa.BigInteger)
    return sa.Column(spec.name, sa.Float(precision=53))


def _key_columns() -> list[sa.Column]:
    return [sa.Column("impression_id", sa.Text, nullable=False), sa.Column("ds", sa.Date, nullable=False)]


metadata = sa.MetaData()

impressions = sa.Table(
    "impressions",
    metadata,
    *_key_columns(),
    sa.Column("request_id", sa.Text, nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("item_id", sa.Text, nullable=False),
    sa.Column("merchant_id", sa.Text, nullable=False),
    sa.Column("event_ts", UTCDateTime, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("device_type", sa.Text, nullable=False),
    sa.Index("ix_impressions_ds", "ds"),
)

# No primary keys on the feature tables: duplicate_keys is a fault the monitors must see.
offline_features = sa.Table(
    "offline_features",
    metadata,
    *_key_columns(),
    *[_feature_column(f) for f in FEATURES],
    sa.Index("ix_offline_features_ds", "ds"),
)

serving_log = sa.Table(
    "serving_log",
    metadata,
    *_key_columns(),
    sa.Column("served_at", UTCDateTime, nullable=False),
    sa.Column("model_version", sa.Text, nullable=False),
    *[_feature_column(f) for f in FEATURES],
    *[sa.Column(f"score_{t}", sa.Float(precision=53)) for t in TASKS],
    sa.Index("ix_serving_log_ds", "ds"),
)

labels = sa.Table(
    "labels",
    metadata,
    *_key_columns(),
    *[
        col
        for t in TASKS
        for col in (sa.Column(f"{t}_ts", UTCDateTime), sa.Column(f"{t}_loaded_at", UTCDateTime))
    ],
    sa.Index("ix_labels_ds", "ds"),
)

oracle = sa.Table(
    "oracle",
    metadata,
    *_key_columns(),
    *[sa.Column(f"p_{t}", sa.Float(precision=53), nullable=False) for t in TASKS],
    sa.Index("ix_oracle_ds", "ds"),
)

fault_manifest = sa.Table(
    "fault_manifest",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fault", sa.Text, nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("feature", sa.Text),
    sa.Column("task", sa.Text),
    sa.Column("environment", sa.Text),
    sa.Column("ds", sa.Date),
    sa.Column("affected_rows", sa.BigInteger, nullable=False),
)

TIMESTAMP_COLUMNS = {
    "impressions": ("event_ts",),
    "serving_log": ("served_at",),
    "labels": tuple(f"{t}_{s}" for t in TASKS for s in ("ts", "loaded_at")),
}


def connect(url: str, *, must_exist: bool = True) -> Engine:
    """An engine for a SQLAlchemy URL, checked by connecting once.

    Raises:
        InputError: the URL is malformed, or (``must_exist``) a SQLite file is missing.
        EnvironmentFailure: the database cannot be reached.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise InputError(
            f"expected a SQLAlchemy URL such as sqlite:///path/warehouse.db or "
            f"postgresql+psycopg://user@host:5432/db, found {url!r}"
        ) from exc
    if parsed.drivername.startswith("postgres") and parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite") and must_exist:
        import os

        if parsed.database and parsed.database != ":memory:" and not os.path.exists(parsed.database):
            raise InputError(f"expected an existing SQLite database, found no file at {parsed.database}")
    try:
        engine = sa.create_engine(parsed, future=True)
    except (sa.exc.ArgumentError, ModuleNotFoundError) as exc:
        raise InputError(f"cannot use database URL {parsed.render_as_string(hide_password=True)}: {exc}") from exc
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(
            f"database unreachable at {parsed.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}"
        ) from exc
    return engine


def parse_date(value: str | dt.date, *, flag: str = "--date") -> dt.date:
    """Parse an ISO date, or raise an InputError naming the flag."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{flag}: expected a date YYYY-MM-DD, found {value!r}") from exc


def as_of_timestamp(as_of: dt.date) -> dt.datetime:
    """``--as-of A`` means the knowledge available at A 00:00 UTC."""
    return dt.datetime.combine(as_of, dt.time(0), tzinfo=dt.UTC)


def require_columns(engine: Engine, table: str, columns: Sequence[str] = ()) -> None:
    """Raise an InputError naming the missing table or columns (and the database)."""
    insp = sa.inspect(engine)
    where = engine.url.render_as_string(hide_password=True)
    if not insp.has_table(table):
        raise InputError(f"expected table {table!r} in warehouse {where}, found no such table")
    present = {c["name"] for c in insp.get_columns(table)}
    missing = [c for c in columns if c not in present]
    if missing:
        raise InputError(
            f"expected columns {missing} in table {table!r} of warehouse {where}; "
            f"found {sorted(present)}"
        )


def _to_frame(engine: Engine, stmt, table: str) -> pd.DataFrame:
    import pandas as pd

    try:
        with engine.connect() as conn:
            frame = pd.read_sql(stmt, conn)
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"reading {table} failed: {exc.orig}") from exc
    for col in TIMESTAMP_COLUMNS.get(table, ()):
        if col in frame.columns:
            frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    if "ds" in frame.columns:
        frame["ds"] = pd.to_datetime(frame["ds"]).dt.date
    return frame


def read_range(
    engine: Engine,
    table: str,
    start: dt.date,
    end: dt.date,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows of ``table`` with ``start <= ds <= end`` (inclusive), timestamps as UTC."""
    require_columns(engine, table, columns or ())
    tbl = sa.Table(table, sa.MetaData(), autoload_with=engine)
    cols = [tbl.c[c] for c in columns] if columns else [tbl]
    stmt = sa.select(*cols).where(tbl.c.ds >= start, tbl.c.ds <= end)
    return _to_frame(engine, stmt, table)


def read_partition(
    engine: Engine, table: str, ds: dt.date, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Partition ``ds`` of ``table`` (the rows whose ``ds`` is that date)."""
    return read_range(engine, table, ds, ds, columns)
