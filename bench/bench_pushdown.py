"""Contract checks inside the warehouse engine vs today's in-memory path vs a bare scan.

``python -m bench pushdown`` (or ``python -m bench.bench_pushdown [ROWS]``). One run, side by
side, on one partition of ROWS rows (default 1,000,000) of the packaged contract's offline
table, generated in DuckDB SQL from the contract (ranges, allowed values, ~1 % defaults), then
loaded into SQLite, PostgreSQL (schema ``bench_pushdown``) and a parquet folder:

- **in memory**: ``validate_partition`` (chunked reads, Pandera), today's path;
- **in the engine**: ``validate_partition_in_engine`` (one aggregate query, a segments query
  and an examples query);
- **bare scan**: ``SELECT COUNT(*), SUM(x), COUNT(s) ...`` of the same columns, same engine.

Both validations must give the same ``--json`` document (checked). Then peak RSS (``/usr/bin/time
-v``) of the engine path at ROWS and 10 x ROWS (parquet and PostgreSQL), each in a fresh process.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import machine, write_section

__all__ = ["main", "generator_sql"]

DS = dt.date(2026, 10, 1)
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_SCHEMA = "bench_pushdown"
HERE = Path(__file__).resolve().parent


def _extension(name: str) -> str:
    import importlib

    package = importlib.import_module(f"duckdb_extension_{name}")
    return str(next(Path(package.__file__).parent.rglob(f"{name}.duckdb_extension")))


def generator_sql(contract, environment: str, rows: int) -> str:
    """DuckDB SQL producing ``rows`` rows that meet the contract (about 1 % defaults)."""
    items = []
    for f in contract.fields_for(environment):
        q = f'"{f.name}"'
        if f.partitioned:
            value = f"DATE '{DS.isoformat()}'"
        elif f.primary_key:
            value = "'k' || i"
        elif f.allowed_values is not None:
            choices = ", ".join("'" + str(v).replace("'", "''") + "'" for v in f.allowed_values)
            value = f"([{choices}])[1 + CAST(floor(random() * {len(f.allowed_values)}) AS INT)]"
        elif f.is_numeric:
            low = f.minimum if f.minimum is not None else 0.0
            high = f.maximum if f.maximum is not None else low + 100.0
            value = (f"floor({low} + random() * {high - low + 1})" if f.logical_type == "integer"
                     else f"{low} + random() * {high - low}")
        elif f.logical_type == "timestamp":
            value = f"TIMESTAMPTZ '{DS.isoformat()} 00:00:00+00' + to_seconds(i % 86400)"
        else:
            value = "'v' || (i % 5000)"
        if f.default is not None and f.max_default_rate and not f.partitioned:
            default = (repr(float(f.default)) if f.is_numeric
                       else "'" + str(f.default).replace("'", "''") + "'")
            value = f"CASE WHEN random() < 0.01 THEN {default} ELSE {value} END"
        if f.logical_type == "integer":
            value = f"CAST({value} AS BIGINT)"
        items.append(f"{value} AS {q}")
    return f"SELECT {', '.join(items)} FROM range({rows}) AS t(i)"


def _load(contract, rows: int, folder: Path, *, sqlite: bool = True) -> dict[str, str]:
    """The partition as parquet, in SQLite (unless not ``sqlite``) and in PostgreSQL; engine
    name -> URL."""
    import duckdb
    import sqlalchemy as sa

    from funnelguard.warehouse import tables_for

    table, part = contract.table("offline"), contract.partition_column
    lake = folder / "lake" / table / f"{part}={DS.isoformat()}"
    lake.mkdir(parents=True)
    con = duckdb.connect()
    con.execute("SELECT setseed(0.42)")
    con.execute(f"COPY ({generator_sql(contract, 'offline', rows)}) TO '{lake / 'part-0.parquet'}' "
                "(FORMAT parquet)")
    source = f"read_parquet('{lake / 'part-0.parquet'}')"
    metadata = tables_for([contract])
    urls = {"parquet": f"parquet:///{folder / 'lake'}"}
    if sqlite:
        sqlite_path = folder / "warehouse.db"
        lite = sa.create_engine(f"sqlite:///{sqlite_path}")
        metadata.create_all(lite, tables=[metadata.tables[table]])
        lite.dispose()
        con.execute(f"LOAD '{_extension('sqlite_scanner')}'")
        con.execute(f"ATTACH '{sqlite_path}' AS lite (TYPE sqlite)")
        con.execute(f"INSERT INTO lite.{table} SELECT * FROM {source}")
        con.execute("DETACH lite")
        urls["sqlite"] = f"sqlite:///{sqlite_path}"
    pg = sa.create_engine(PG_URL)
    with pg.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {PG_SCHEMA}"))
    pg_url = f"{PG_URL}?options=-csearch_path%3D{PG_SCHEMA}"
    schema_engine = sa.create_engine(pg_url)
    metadata.create_all(schema_engine, tables=[metadata.tables[table]])
    schema_engine.dispose()
    pg.dispose()
    con.execute(f"LOAD '{_extension('postgres_scanner')}'")
    con.execute("ATTACH 'dbname=test host=127.0.0.1 port=5432 user=postgres' AS pg "
                f"(TYPE postgres, SCHEMA '{PG_SCHEMA}')")
    con.execute(f"INSERT INTO pg.{PG_SCHEMA}.{table} SELECT * FROM {source}")
    con.close()
    with sa.create_engine(pg_url).begin() as conn:
        conn.execute(sa.text(f"ANALYZE {table}"))
    urls["postgres"] = pg_url
    return urls


def _bare_scan_sql(contract, dialect: str) -> str:
    """COUNT(*), SUM of every number column, COUNT of every other column, of the partition."""
    from contracts.pushdown import compile_plan, dialect_of

    plan = compile_plan(contract, "offline", dialect_of(dialect), DS)
    items = ["COUNT(*) AS n"] + [
        f'SUM("{f.name}") AS s{i}' if f.is_numeric else f'COUNT("{f.name}") AS s{i}'
        for i, f in enumerate(contract.fields_for("offline"))]
    return f"SELECT {', '.join(items)} {plan.source}"


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def speed(contract, urls: dict[str, str]) -> list[dict]:
    """Seconds of the three ways, per engine, back to back."""
    from contracts.pushdown import validate_partition_in_engine
    from contracts.runner import validate_partition
    from funnelguard.engines import sql_engine
    from funnelguard.warehouse import connect

    results = []
    for name in ("sqlite", "postgres", "parquet"):
        engine = connect(urls[name])
        try:
            sql = sql_engine(engine)
            bare_sql = _bare_scan_sql(contract, sql.dialect)
            bare, _ = _best(lambda sql=sql, q=bare_sql: sql.query(q), 3)
            pushed, fast = _best(lambda e=engine: validate_partition_in_engine(
                contract, "offline", e, DS), 2)
            memory, slow = _best(lambda e=engine: validate_partition(contract, "offline", e, DS),
                                 1)
        finally:
            engine.dispose()
        results.append({"engine": name, "memory": memory, "pushdown": pushed, "bare": bare,
                        "same": fast.to_json() == slow.to_json(), "status": fast.status})
        print(results[-1], flush=True)
    return results


_RSS_SCRIPT = r'''
import datetime as dt, sys
from contracts import load_contract
from contracts.pushdown import validate_partition_in_engine
from funnelguard.warehouse import connect
engine = connect(sys.argv[1])
result = validate_partition_in_engine(load_contract("ranking_features"), "offline", engine,
                                      dt.date(2026, 10, 1))
print(result.status)
'''


def peak_rss(url: str) -> float:
    """Peak RSS (MiB) of a fresh process running the engine path once."""
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    out = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", _RSS_SCRIPT, url],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    return kib / 1024


def main(rows: int | None = None) -> None:
    """Speed at ``rows`` (default ``$FUNNELGUARD_BENCH_ROWS`` or 1,000,000), then memory."""
    from contracts import load_contract

    rows = rows or int(os.environ.get("FUNNELGUARD_BENCH_ROWS", 1_000_000))
    contract = load_contract("ranking_features")
    with tempfile.TemporaryDirectory() as tmp:
        urls = _load(contract, rows, Path(tmp) / "small")
        results = speed(contract, urls)
        rss = {"parquet": [peak_rss(urls["parquet"])], "postgres": [peak_rss(urls["postgres"])]}
        big = _load(contract, rows * 10, Path(tmp) / "big", sqlite=False)
        for name in rss:
            rss[name].append(peak_rss(big[name]))
    _write(rows, contract, results, rss)


def _sqlite_default(results: list[dict]) -> list[str]:
    """The line that backs ``funnelguard.engines.IN_ENGINE_BY_DEFAULT`` for SQLite."""
    from funnelguard.engines import IN_ENGINE_BY_DEFAULT

    lite = next((r for r in results if r["engine"] == "sqlite"), None)
    if lite is None:
        return []
    default = "sqlite" in IN_ENGINE_BY_DEFAULT
    faster = lite["pushdown"] <= lite["memory"]
    return [f"SQLite default (`funnelguard.engines.IN_ENGINE_BY_DEFAULT`): "
            f"{'in the engine' if default else 'in memory'}; measured here the engine path is "
            f"{'not slower' if faster else 'slower'} than in memory "
            f"({lite['pushdown']:.1f} s vs {lite['memory']:.1f} s)"
            f"{'' if default == faster else ' -- the default does not match this run'}."]


def _write(rows: int, contract, results: list[dict], rss: dict[str, list[float]]) -> None:
    n_checks = sum(1 for f in contract.fields_for("offline")
                   for _ in __import__("contracts.runner").runner.checks_for(f, "offline"))
    lines = [
        "Command: `python -m bench pushdown` (rows: `FUNNELGUARD_BENCH_ROWS`, default 1,000,000). "
        f"Machine: {machine()}; measured {dt.date.today()} while other work shared the CPUs, so "
        "absolute times are inflated; each row's three timings are from one run, back to back.",
        "",
        f"**`validate` of one offline partition, {rows:,} rows, {n_checks} checks (the packaged "
        "contract), generated from the contract in DuckDB SQL**",
        "",
        "| engine | in memory (today) s | in the engine s | bare scan s | in memory / in engine "
        "| in engine / bare scan | goal met | same findings | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        faster, over = r["memory"] / r["pushdown"], r["pushdown"] / r["bare"]
        met = [part for part, ok in (("≥ 20x", faster >= 20), ("≤ 3x", over <= 3)) if ok]
        lines.append(f"| {r['engine']} | {r['memory']:.2f} | {r['pushdown']:.2f} | {r['bare']:.2f} "
                     f"| {faster:.1f}x | {over:.1f}x | {', '.join(met) or 'no'} | "
                     f"{'yes' if r['same'] else 'NO'} | {r['status']} |")
    lines += [
        "",
        "Goal: in the engine at least 20x faster than in memory and at most 3x the bare scan. "
        "In the engine: one aggregate query over a subquery that computes, once per row, a small "
        "failure code per column (one `CASE` testing the column's guards once: null, not a "
        "number, NaN, ±inf; a bit per failed check; integer-typed columns of typed engines skip "
        "the NaN/±inf/fraction guards) and a default flag per field; the outer query sums the "
        "bits per check, counts rows with any code, sums the defaults and counts repeated keys "
        "(`GROUP BY key HAVING COUNT(*) > 1`). Defaults by segment: one statement "
        "(`GROUPING SETS`; SQLite a `UNION ALL` of `GROUP BY`s); examples: one query when a "
        "check fails. Bare scan: `COUNT(*)`, `SUM` of every number column and `COUNT` of every "
        "other column of the same partition. parquet is read by an in-memory DuckDB "
        "(`parquet:///dir`).",
        "",
        *_sqlite_default(results),
        "",
        "**Peak RSS of the engine path (fresh process, `/usr/bin/time -v`, imports included)**",
        "",
        f"| engine | {rows:,} rows MiB | {rows * 10:,} rows MiB |",
        "|---|---|---|",
    ]
    for name, (small, big) in rss.items():
        lines.append(f"| {name} | {small:.0f} | {big:.0f} |")
    text = "## Contract checks in the warehouse engine\n\n" + "\n".join(lines)
    write_section("validate-pushdown", text)
    print(text)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
