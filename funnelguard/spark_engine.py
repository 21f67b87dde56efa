"""Spark SQL as a warehouse engine: the pushed-down checks and profiles on a Spark session.

``spark+parquet:///dir`` names a folder of ``<table>/<partition column>=<date>/*.parquet``
files (or ``<table>/*.parquet``), the layout the ``parquet:`` engine reads through DuckDB; each
table folder becomes a temporary view of that name, its partition column discovered from the
folder names (a ``YYYY-MM-DD`` value is a ``DATE``). :class:`SparkEngine` is a
:class:`funnelguard.engines.SqlEngine` of dialect ``spark``: the SQL the contract checks and
the monitors compile for Spark runs on it unchanged, and answers come back as Arrow tables.

The session is local by default (``local[2]``: two cores, a few shuffle partitions, no UI, the
driver bound to 127.0.0.1, its scratch and warehouse folders in a temporary folder, log4j at
ERROR). The URL's ``master`` parameter (or ``$FUNNELGUARD_SPARK_MASTER``) points the same code
at a cluster — ``spark+parquet:///mnt/lake?master=spark://spark-master:7077`` — whose executors
see the folder at the same path; ``shuffle_partitions`` sets ``spark.sql.shuffle.partitions``.
One Spark context serves a process (Spark allows no second one); every engine gets a session
of its own over it, so two warehouses' views never mix. ANSI mode is off: as on SQLite, a cast
that cannot be made or a division by zero is NULL, never an error that stops a count.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from funnelguard.errors import EnvironmentFailure, InputError

if TYPE_CHECKING:
    import pyarrow

__all__ = ["SPARK_SCHEME", "SparkTarget", "SparkEngine", "is_spark_url", "parse_spark_url",
           "connect_spark", "spark_session", "stop_spark"]

SPARK_SCHEME = "spark+parquet://"
DEFAULT_MASTER = "local[2]"
DEFAULT_SHUFFLE_PARTITIONS = 4
_MASTER_ENV = "FUNNELGUARD_SPARK_MASTER"
_PARAMETERS = ("master", "shuffle_partitions")

# ERROR and above, on stderr: Spark's INFO/WARN start-up chatter is not the user's business.
_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""

_KINDS = (("timestamp", "timestamp"), ("date", "date"), ("boolean", "boolean"),
          ("string", "string"), ("varchar", "string"), ("char", "string"),
          ("int", "number"), ("bigint", "number"), ("smallint", "number"),
          ("tinyint", "number"), ("double", "number"), ("float", "number"),
          ("decimal", "number"), ("long", "number"))


@dataclass(frozen=True)
class SparkTarget:
    """What a ``spark+parquet:`` URL names.

    Attributes:
        root: the folder of table folders.
        master: the Spark master (``local[2]``, ``spark://host:7077``, ``yarn`` ...).
        shuffle_partitions: ``spark.sql.shuffle.partitions``.
    """

    root: Path
    master: str
    shuffle_partitions: int


def is_spark_url(url: object) -> bool:
    """Whether ``url`` names a Spark warehouse (``spark+parquet:///dir``)."""
    return str(url).startswith(SPARK_SCHEME)


def parse_spark_url(url: str) -> SparkTarget:
    """The folder, master and shuffle partitions of a ``spark+parquet:`` URL.

    ``spark+parquet:///rel/dir`` is relative to the working folder (like ``sqlite:///rel.db``),
    ``spark+parquet:////abs/dir`` absolute.

    Raises:
        InputError: not that scheme, a host, an unknown parameter, a bad partition count, or
            a folder that is missing.
    """
    if not is_spark_url(url):
        raise InputError(f"expected a URL of the form {SPARK_SCHEME}/DIR, found {url!r}")
    parts = urlsplit(url)
    if parts.netloc:
        raise InputError(f"expected {SPARK_SCHEME}/DIR (no host; a cluster is the 'master' "
                         f"parameter), found host {parts.netloc!r} in {url!r}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(_PARAMETERS))
    if unknown:
        raise InputError(f"{url!r}: expected only the parameters {', '.join(_PARAMETERS)}, "
                         f"found {', '.join(unknown)}")
    master = (query.get("master") or [os.environ.get(_MASTER_ENV) or DEFAULT_MASTER])[-1]
    raw = (query.get("shuffle_partitions") or [str(DEFAULT_SHUFFLE_PARTITIONS)])[-1]
    if not raw.isdigit() or int(raw) < 1:
        raise InputError(f"{url!r}: expected shuffle_partitions to be a whole number >= 1, "
                         f"found {raw!r}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    root = Path(path or ".")
    if not root.is_dir():
        found = "no such folder" if not root.exists() else "a file"
        raise InputError(f"expected a folder of <table>/<partition>=<date>/*.parquet files, "
                         f"found {found} at {root} ({url})")
    return SparkTarget(root.resolve(), master, int(raw))


# -- the process's Spark context ----------------------------------------------------------------

_lock = threading.Lock()
_base: dict[str, Any] = {}  # "session", "master", "scratch"


def spark_session(master: str = DEFAULT_MASTER, *,
                  shuffle_partitions: int = DEFAULT_SHUFFLE_PARTITIONS):
    """The process's base ``SparkSession`` (started on first use, stopped at exit).

    Raises:
        InputError: a session with another master already runs in this process.
        EnvironmentFailure: the JVM could not start (no Java 17+, say).
    """
    with _lock:
        if "session" in _base:
            if _base["master"] != master:
                raise InputError(f"a Spark session with master {_base['master']!r} already runs "
                                 f"in this process; expected {master!r} (one Spark context "
                                 "per process)")
            return _base["session"]
        scratch = Path(tempfile.mkdtemp(prefix="funnelguard-spark-"))
        log_config = scratch / "log4j2.properties"
        log_config.write_text(_LOG4J2)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        try:
            from pyspark.sql import SparkSession

            builder = (SparkSession.builder.master(master).appName("funnelguard")
                       .config("spark.ui.enabled", "false")
                       .config("spark.ui.showConsoleProgress", "false")
                       .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
                       .config("spark.sql.session.timeZone", "UTC")
                       .config("spark.sql.ansi.enabled", "false")
                       .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
                       .config("spark.local.dir", str(scratch / "local"))
                       .config("spark.driver.extraJavaOptions",
                               f"-Dderby.system.home={scratch / 'derby'} "
                               f"-Dlog4j2.configurationFile=file:{log_config}"))
            if master.startswith("local"):
                builder = (builder.config("spark.driver.host", "127.0.0.1")
                           .config("spark.driver.bindAddress", "127.0.0.1"))
            session = builder.getOrCreate()
        except ImportError as exc:
            raise EnvironmentFailure(f"the spark engine needs pyspark: {exc}") from exc
        except Exception as exc:  # py4j / the JVM: whatever stops the gateway from starting
            raise EnvironmentFailure(f"cannot start Spark (master {master}): expected a Java 17+ "
                                     f"runtime and a reachable master, found "
                                     f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                                     ) from exc
        session.sparkContext.setLogLevel("ERROR")
        # pyspark logs every refused query with the JVM's stack trace before raising it; the
        # raised error (an InputError naming the query's problem) is the report.
        import logging

        logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
        _base.update(session=session, master=master, scratch=scratch)
        return session


def stop_spark() -> None:
    """Stop the process's Spark context (the next :func:`spark_session` starts a fresh one)."""
    import shutil

    with _lock:
        session = _base.pop("session", None)
        scratch = _base.pop("scratch", None)
        _base.pop("master", None)
        if session is not None:
            session.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


atexit.register(stop_spark)


# -- the engine ---------------------------------------------------------------------------------

def _table_folders(root: Path) -> dict[str, Path]:
    """Table name -> folder, for each folder under ``root`` that holds parquet files."""
    return {sub.name: sub for sub in sorted(p for p in root.iterdir() if p.is_dir())
            if any(sub.rglob("*.parquet"))}


def _kind(type_name: str) -> str:
    name = type_name.lower()
    for prefix, kind in _KINDS:
        if name.startswith(prefix):
            return kind
    return "other"


@dataclass
class SparkEngine:
    """:class:`funnelguard.engines.SqlEngine` over a Spark session with one view per table.

    Attributes:
        session: this engine's own ``SparkSession`` (its temporary views are its tables).
        tables: table name -> its folder.
        where: the URL, for messages.
        dialect: always ``spark``.
    """

    session: Any
    tables: dict[str, Path]
    where: str
    dialect: str = field(default="spark")

    def query(self, sql: str) -> pyarrow.Table:
        """Run one statement; its rows as an Arrow table.

        Raises:
            InputError: Spark refused the statement (a table or column the contract names is
                not in the parquet files).
            EnvironmentFailure: Spark failed while running it.
        """
        from pyspark.errors import AnalysisException, ParseException

        try:
            return self.session.sql(sql).toArrow()
        except (AnalysisException, ParseException) as exc:
            first = str(exc).strip().splitlines()[0][:500]
            raise InputError(f"querying warehouse {self.where}: Spark refused the query "
                             f"({first})") from exc
        except Exception as exc:  # a lost executor, the JVM gone: the environment failed
            first = (str(exc).strip().splitlines() or [""])[0][:500]
            raise EnvironmentFailure(f"querying warehouse {self.where} failed: "
                                     f"{type(exc).__name__}: {first}") from exc

    def columns(self, table: str) -> list[tuple[str, str]] | None:
        """``(name, kind)`` of each column of ``table`` (partition column last, as Spark
        discovers it); None when there is no such table."""
        if table not in self.tables:
            return None
        schema = self.session.table(f"`{table}`").schema
        return [(f.name, _kind(f.dataType.simpleString())) for f in schema.fields]

    def close(self) -> None:
        """Drop this engine's views (the process's Spark context stays for the next one)."""
        for name in self.tables:
            self.session.catalog.dropTempView(name)

    dispose = close  # what a command's edge calls on any warehouse engine when it is done


def connect_spark(url: str) -> SparkEngine:
    """A :class:`SparkEngine` for a ``spark+parquet:`` URL, each table folder a view.

    Raises:
        InputError: the URL is malformed, or its folder holds no table folders of parquet files.
        EnvironmentFailure: Spark could not start.
    """
    target = parse_spark_url(url)
    folders = _table_folders(target.root)
    if not folders:
        raise InputError(f"expected table folders of parquet files under {target.root} ({url}), "
                         "found none")
    base = spark_session(target.master, shuffle_partitions=target.shuffle_partitions)
    session = base.newSession()
    session.conf.set("spark.sql.shuffle.partitions", str(target.shuffle_partitions))
    for name, folder in folders.items():
        try:
            session.read.parquet(str(folder)).createOrReplaceTempView(name)
        except Exception as exc:  # unreadable files, mixed schemas: the folder is at fault
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise InputError(f"cannot read the parquet files of table {name!r} under {folder}: "
                             f"{first}") from exc
    return SparkEngine(session, folders, url)
