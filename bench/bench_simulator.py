"""Simulator build speed: our bulk writer vs SQLAlchemy Core inserts, SQLite vs PostgreSQL COPY.

``python -m bench simulator`` (or ``python -m bench.bench_simulator [IMPRESSIONS]``, default
1,000,000). One run, side by side:

1. generating the world in memory (impressions, both feature paths, outcomes) and injecting
   three faults;
2. writing one table (``offline_features``, first 100,000 rows) with our writer and with the
   textbook ``conn.execute(table.insert(), list_of_dicts)``, both on SQLite;
3. ``simulate()`` end to end (generation + writes, one transaction) for IMPRESSIONS impressions
   on SQLite and on PostgreSQL (COPY), when the server is reachable.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.report import machine, write_section

__all__ = ["main"]

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_SCHEMA = "fg_bench_simulator"
START, DAYS = dt.date(2026, 10, 1), 24
FAULTS = ("serving_default:feature=approval_odds,share=0.3", "nan_burst:feature=item_apr,share=0.05",
          "label_lag:days=3")


def _config(impressions: int):
    from funnelguard.simulator import SimConfig, parse_fault

    return SimConfig(START, DAYS, max(1, impressions // DAYS), 7,
                     tuple(parse_fault(f, start=START, days=DAYS) for f in FAULTS))


def _timed(fn):
    began = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - began


def _writer_vs_core(world, rows: int) -> tuple[float, float]:
    from funnelguard.simulator.writer import write_table
    from funnelguard.warehouse import metadata

    frame = world.offline.iloc[:rows]
    table = metadata.tables["offline_features"]
    records = frame.drop(columns="_row").assign(
        ds=lambda f: [dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in f["ds"]]
    ).to_dict("records")
    with tempfile.TemporaryDirectory() as tmp:
        ours = sa.create_engine(f"sqlite:///{tmp}/ours.db")
        core = sa.create_engine(f"sqlite:///{tmp}/core.db")
        for engine in (ours, core):
            metadata.create_all(engine, tables=[table])
        with ours.begin() as conn:
            _, t_ours = _timed(lambda: write_table(conn, table, frame))
        with core.begin() as conn:
            _, t_core = _timed(lambda: conn.execute(table.insert(), records))
        ours.dispose()
        core.dispose()
    return t_ours, t_core


def _pg_engine():
    try:
        admin = sa.create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {PG_SCHEMA}"))
        admin.dispose()
    except sa.exc.OperationalError:
        return None
    return sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={PG_SCHEMA}"})


def _drop_pg_schema() -> None:
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
    admin.dispose()


def _in_memory(config) -> tuple[float, float, int, int, float, float]:
    from funnelguard.simulator.inject import apply_faults
    from funnelguard.simulator.tables import build_clean_world

    world, t_world = _timed(lambda: build_clean_world(config))
    _, t_faults = _timed(lambda: apply_faults(world))
    n = len(world.impressions)
    slice_rows = min(100_000, n)
    t_ours, t_core = _writer_vs_core(world, slice_rows)
    return t_world, t_faults, n, slice_rows, t_ours, t_core


def main(impressions: int = 1_000_000) -> None:
    import os

    from funnelguard.simulator import simulate

    load = os.getloadavg()[0]

    config = _config(impressions)
    t_world, t_faults, n, slice_rows, t_ours, t_core = _in_memory(config)
    with tempfile.TemporaryDirectory() as tmp:
        small = sa.create_engine(f"sqlite:///{Path(tmp) / 'default.db'}")
        _, t_default = _timed(lambda: simulate(small, _config(72_000)))
        small.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        lite = sa.create_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        _, t_sqlite = _timed(lambda: simulate(lite, config, progress=True))
        size_mb = (Path(tmp) / "bench.db").stat().st_size / 2**20
        lite.dispose()
    pg = _pg_engine()
    t_pg = None
    if pg is not None:
        _, t_pg = _timed(lambda: simulate(pg, config, progress=True))
        pg.dispose()
        _drop_pg_schema()
    rows = [
        f"| generate the world in memory | {t_world:.1f} s | |",
        f"| inject 3 faults | {t_faults:.2f} s | |",
        f"| write {slice_rows:,} offline_features rows, SQLite: our writer vs Core insert(dicts) "
        f"| {t_ours:.2f} s vs {t_core:.2f} s | {t_core / t_ours:.1f}x faster |",
        f"| `simulate()` default test size (24 days x 3000), SQLite | {t_default:.1f} s | |",
        f"| `simulate()` end to end, SQLite ({size_mb:,.0f} MiB file) | {t_sqlite:.1f} s "
        f"| {n / t_sqlite:,.0f} impressions/s |",
    ]
    if t_pg is not None:
        rows.append(f"| `simulate()` end to end, PostgreSQL (COPY) | {t_pg:.1f} s "
                    f"| {t_sqlite / t_pg:.2f}x SQLite's speed |")
    else:
        rows.append("| `simulate()` end to end, PostgreSQL | not run (server unreachable) | |")
    write_section("simulator", "\n".join([
        "## Simulator build",
        "",
        f"`python -m bench.bench_simulator {impressions}` — {n:,} impressions ({DAYS} days x "
        f"{config.per_day:,}/day, seed 7, faults {', '.join(f'`{f}`' for f in FAULTS)}); "
        f"each impression writes one row to each of 5 tables. Machine: {machine()}, load average "
        f"{load:.1f} at start (shared with other jobs: absolute times are inflated, ratios hold).",
        "",
        "| step | time | ratio / rate |",
        "|---|---|---|",
        *rows,
    ]))
    print("\n".join(rows))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
