"""Benchmark: drift, default rate and replay skew computed in the warehouse engine, against a full
Evidently ``DataDriftPreset`` run on the whole frames; the Arrow reader against ``pandas.read_sql``.

Data: a simulated warehouse of 14 days (days 8-13 each carry one fault, as in
``bench_monitors``), and a large SQLite warehouse built from it: one faulted partition's offline
and online rows resampled (pairs kept) to the benchmark size, and the 7 days before it to the
same size in all, written with ADBC bulk ingest into the contract's tables.

- speed, large warehouse: the engine path (``monitors.engine_monitors``: 4 profiles, 3 drift
  comparisons, default rates with root causes, replay skew) vs Evidently's full preset on the
  same day's frames (one comparison: online vs offline), both timed in this process;
- agreement: per-column drift decisions of the engine path vs the full preset, on every
  partition of the simulated warehouse (clean and faulted) x 3 comparisons, and on the large one;
- reading the large partition: ADBC -> Arrow -> pandas vs ``pandas.read_sql``, each in a fresh
  process (wall, client CPU, peak RSS), frames checked identical.

Run: ``python -m bench engine_monitors`` (``BENCH_ENGINE_ROWS``, default 1,000,000;
``BENCH_ENGINE_PER_DAY``, simulated impressions a day, default 10,000).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

BIG_DAY_INDEX = 13  # the unit_mismatch (income x12 on half the rows) partition
WINDOW = 7


def _timed(fn):
    started, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - started, time.process_time() - cpu


def _ingest(url: str, table: str, frame) -> None:
    """Append ``frame`` to ``table`` through ADBC (SQLite text conventions for dates/times)."""
    import pyarrow as pa
    from adbc_driver_sqlite import dbapi

    out = frame.copy()
    for col in out.columns:
        if str(out[col].dtype).startswith("datetime64"):
            out[col] = out[col].dt.tz_convert(None).dt.strftime("%Y-%m-%d %H:%M:%S.%f")
        elif len(out) and isinstance(out[col].iloc[0], dt.date):
            out[col] = out[col].astype(str)
    conn = dbapi.connect(url.removeprefix("sqlite:///"))
    with conn.cursor() as cur:
        cur.adbc_ingest(table, pa.Table.from_pandas(out, preserve_index=False), mode="append")
    conn.commit()
    conn.close()


def _big_warehouse(small_url: str, project, day: dt.date, rows: int) -> str:
    """The large warehouse: ``day`` and its window resampled to ``rows`` each side."""
    import sqlalchemy as sa

    from bench.bench_monitors import _resample
    from funnelguard.warehouse import connect, tables_for

    contract = project.features
    key = contract.key_column
    path = Path(tempfile.mkdtemp(prefix="bench_engine_")) / "big.db"
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    tables_for([contract]).create_all(engine)
    small = connect(small_url)
    per_day = rows // WINDOW
    for offset in range(WINDOW + 1):
        ds = day - dt.timedelta(days=offset)
        frames = [project.read(small, "features", env, ds) for env in ("offline", "online")]
        offline, online = _resample(*frames, rows if offset == 0 else per_day, offset)
        prefix = f"d{offset}_"
        for frame in (offline, online):
            frame[key] = prefix + frame[key].astype(str)
        _ingest(url, contract.table("offline"), offline)
        _ingest(url, contract.table("online"), online)
    return url


def _engine_path(project, engine, day: dt.date):
    """What ``funnelguard drift`` and ``skew`` compute in the engine, minus HTML."""
    from monitors import drift
    from monitors.engine_monitors import (
        default_rates_in_engine,
        profiles_in_engine,
        replay_skew_in_engine,
    )

    contract = project.features
    first, last = day - dt.timedelta(days=WINDOW), day - dt.timedelta(days=1)
    timings, results = {}, []
    started = time.perf_counter()
    targets = {env: drift.drift_targets(contract, (env,)) for env in ("offline", "online")}
    sides = {env: profiles_in_engine(project, engine, env, day, first, last, targets[env],
                                     sample_size=drift.DEFAULT_SAMPLE_SIZE)
             for env in ("offline", "online")}
    timings["drift profiles (2 days + 2 windows)"] = time.perf_counter() - started
    started = time.perf_counter()
    results += drift.compare_profiles(sides["offline"][0], sides["online"][0],
                                      drift.drift_targets(contract), "online_vs_offline")
    for env in ("offline", "online"):
        if sides[env][1] is not None:
            results += drift.compare_profiles(sides[env][1], sides[env][0], targets[env], env)
    timings["drift tests (3 comparisons)"] = time.perf_counter() - started
    _, timings["default rates + root causes"], _ = _timed(
        lambda: default_rates_in_engine(project, engine, day))
    _, timings["replay skew"], _ = _timed(lambda: replay_skew_in_engine(project, engine, day))
    return results, timings


def _full_decisions(project, engine, day: dt.date):
    """Evidently's full preset on the day's frames and windows (3 comparisons)."""
    from monitors import drift
    from monitors.drift_agreement import full_preset_decisions

    contract = project.features
    first, last = day - dt.timedelta(days=WINDOW), day - dt.timedelta(days=1)
    out = {}
    frames = {e: project.read(engine, "features", e, day) for e in ("offline", "online")}
    both = drift.drift_targets(contract)
    cols = [t.feature for t in both]
    out["online_vs_offline"] = full_preset_decisions(frames["offline"][cols],
                                                     frames["online"][cols], both)
    for env in ("offline", "online"):
        targets = drift.drift_targets(contract, (env,))
        cols = [t.feature for t in targets]
        window = project.read(engine, "features", env, first, last)
        out[env] = full_preset_decisions(window[cols], frames[env][cols], targets)
    return out


def _agreement(label, results, full):
    from monitors.drift_agreement import Agreement, compare_decisions

    total = Agreement(0, 0, 0)
    for env, decisions in full.items():
        total = total + compare_decisions(f"{label} {env}",
                                          [r for r in results if r.environment == env], decisions)
    return total


_READER = """
import json, os, resource, sys, time, datetime as dt
os.environ["FUNNELGUARD_ARROW_READ"] = sys.argv[2]
from funnelguard.warehouse import connect, read_partition
engine = connect(sys.argv[1])
cpu, wall = time.process_time(), time.perf_counter()
frame = read_partition(engine, sys.argv[3], dt.date.fromisoformat(sys.argv[4]),
                       partition_column=sys.argv[5], timestamps=sys.argv[6].split(",") if sys.argv[6] else ())
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
frame.to_pickle(sys.argv[7])
print(json.dumps({"rows": len(frame), "cpu": cpu, "wall": wall,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _read_in_process(url, arrow: bool, table, day, partition_column, timestamps, out):
    done = subprocess.run([sys.executable, "-c", _READER, url, "1" if arrow else "0", table,
                           day.isoformat(), partition_column, ",".join(timestamps), str(out)],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    import pandas as pd

    from bench.bench_monitors import DAYS, FAULT_DAYS, START, _simulate
    from bench.report import machine, write_section
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect
    from monitors.drift_agreement import Agreement

    rows = int(os.environ.get("BENCH_ENGINE_ROWS", 1_000_000))
    per_day = int(os.environ.get("BENCH_ENGINE_PER_DAY", 10_000))
    project = load_project()
    contract = project.features
    small_url, sim_s, _ = _timed(lambda: _simulate(per_day))
    print(f"simulated {DAYS} days x {per_day} in {sim_s:.0f} s", flush=True)

    # agreement on every partition of the simulated warehouse (clean and faulted)
    small = connect(small_url)
    agreement = Agreement(0, 0, 0)
    for index in range(8, DAYS + 1):
        day = START + dt.timedelta(days=index - 1)
        label = FAULT_DAYS.get(index, "clean").split(":")[0] + f" ({day})"
        results, _ = _engine_path(project, small, day)
        agreement = agreement + _agreement(label, results, _full_decisions(project, small, day))
        print(f"agreement so far {agreement.identical}/{agreement.decisions}", flush=True)

    big_day = START + dt.timedelta(days=BIG_DAY_INDEX - 1)
    big_url, build_s, _ = _timed(lambda: _big_warehouse(small_url, project, big_day, rows))
    print(f"built the {rows}-row warehouse in {build_s:.0f} s", flush=True)
    big = connect(big_url)
    _engine_path(project, small, big_day)  # warm imports
    (results, timings), engine_s, engine_cpu = _timed(lambda: _engine_path(project, big, big_day))
    print(f"engine path {engine_s:.1f} s", flush=True)

    from monitors import drift
    from monitors.drift_agreement import compare_decisions, full_preset_decisions

    frames, read_s, _ = _timed(lambda: {e: project.read(big, "features", e, big_day)
                                        for e in ("offline", "online")})
    both = drift.drift_targets(contract)
    cols = [t.feature for t in both]
    full, full_s, _ = _timed(lambda: full_preset_decisions(frames["offline"][cols],
                                                           frames["online"][cols], both))
    print(f"full preset {full_s:.1f} s", flush=True)
    big_agreement = compare_decisions("1M online_vs_offline",
                                      [r for r in results if r.environment == "online_vs_offline"],
                                      full)
    frames = None  # free the two 1M-row frames before the read measurements

    tmp = Path(tempfile.mkdtemp(prefix="bench_engine_read_"))
    reads = {}
    for name, arrow in (("pandas.read_sql", False), ("ADBC -> Arrow -> pandas", True)):
        reads[name] = _read_in_process(big_url, arrow, contract.table("online"), big_day,
                                       contract.partition_column,
                                       contract.timestamp_columns("online"), tmp / f"{arrow}.pkl")
    pd.testing.assert_frame_equal(pd.read_pickle(tmp / "True.pkl"), pd.read_pickle(tmp / "False.pkl"))

    total = agreement + big_agreement
    old, new = reads["pandas.read_sql"], reads["ADBC -> Arrow -> pandas"]
    lines = [
        "## Monitors in the engine: drift profiles, default rates, replay skew in SQL; Arrow reads",
        "",
        "```",
        "python -m bench engine_monitors   # BENCH_ENGINE_ROWS, BENCH_ENGINE_PER_DAY",
        "```",
        "",
        f"Machine: {machine()} (shared with other jobs; every comparison runs in this one "
        f"process, one after the other). Warehouse: SQLite, one partition of {rows:,} offline and "
        f"{rows:,} online rows (a simulator partition resampled, pairs kept) and a 7-day window "
        f"of {rows:,} rows per side; {len(cols)} drift-tested features, sample size "
        f"{drift.DEFAULT_SAMPLE_SIZE:,} per continuous column.",
        "",
        f"| step on {rows:,} rows | seconds |",
        "|---|---|",
        f"| full Evidently `DataDriftPreset`, online vs offline (one comparison, frames in memory) "
        f"| {full_s:.1f} |",
        f"| reading the two frames it needs (`read_partition`) | {read_s:.1f} |",
        *[f"| engine path: {k} | {v:.2f} |" for k, v in timings.items()],
        f"| engine path total (3 drift comparisons + default rates + replay skew; "
        f"client CPU {engine_cpu:.1f} s) | {engine_s:.2f} |",
        f"| **full preset (1 comparison) / whole engine path** | **{full_s / engine_s:.0f}x** |",
        f"| **full preset + its reads / whole engine path** | **{(full_s + read_s) / engine_s:.0f}x** |",
        "",
        f"Per-column decision agreement with the full preset: **{total.identical}/"
        f"{total.decisions} ({total.rate:.1%})** ({total.drifted} drifted in the full runs), "
        f"over {DAYS - 7} partitions of {per_day:,} rows (clean and {len(FAULT_DAYS)} faults) x 3 "
        f"comparisons plus the {rows:,}-row comparison above.",
    ]
    if total.disagreements:
        lines += ["", "| comparison | feature | method | engine | full | threshold |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {d.comparison} | {d.feature} | {d.method} | {d.sampled_score:.4f} | "
                  f"{d.full_score:.4f} | {d.threshold:g} |" for d in total.disagreements]
    lines += [
        "",
        f"Reading the {rows:,}-row online partition into pandas (each in a fresh process; "
        "identical frames):",
        "",
        "| reader | wall s | client CPU s | peak RSS MiB |",
        "|---|---|---|---|",
        *[f"| {name} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['rss_mib']:.0f} |"
          for name, r in reads.items()],
        f"| **ratio** | **{old['wall'] / new['wall']:.1f}x** | **{old['cpu'] / new['cpu']:.1f}x** | "
        f"**{old['rss_mib'] / new['rss_mib']:.1f}x** |",
        "",
        "On SQLite the engine path is bounded by moving rows, not by the SQL: each step stages its "
        "partitions once as Arrow into an in-process DuckDB (SQLite's own row-at-a-time "
        "evaluation of the pairing and grouping is slower still), and the steps do not share "
        "their staging yet (the day and window of each side for the profiles, the day of both "
        "sides again for default rates and for skew). On PostgreSQL and DuckDB warehouses no "
        "row moves except samples and examples. Peak RSS is measured after the frame is written "
        "to disk for the identity check, which dominates both readers.",
    ]
    write_section("engine_monitors", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
