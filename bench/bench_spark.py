"""Spark local mode against DuckDB over the same parquet files: pushed-down ``validate``,
the drift profile and the default rates of a 1,000,000-row partition.

``python -m bench spark`` (rows: ``BENCH_SPARK_ROWS``, default 1,000,000). A small simulated
warehouse is exported to parquet and each partition resampled to that many rows (fresh keys,
so the key stays unique); ``parquet:///dir`` (DuckDB) and ``spark+parquet:///dir``
(``local[2]``) then run the same job functions on the same files, one after the other, in this
process. Each step runs once to warm up, then once timed.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from bench.report import machine, write_section

START = dt.date(2026, 10, 1)
DAYS = 3
LAST = START + dt.timedelta(days=DAYS - 1)
ROWS_PER_FILE = 250_000


def _dataset(root: Path, rows: int) -> tuple[object, str]:
    """A parquet dataset whose offline partitions (reference day and last day) and online last
    partition hold ``rows`` rows each, resampled from a simulated warehouse."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from funnelguard.project import load_project
    from funnelguard.simulator import SimConfig, simulate
    from funnelguard.warehouse import connect
    from tests.engines.parquet_export import export_parquet

    project = load_project()
    engine = connect(f"sqlite:///{root / 'small.db'}", must_exist=False)
    simulate(engine, SimConfig(start=START, days=DAYS, per_day=4000, seed=7))
    small = Path(export_parquet(project, engine, root / "small"))
    engine.dispose()
    contract = project.features
    part, key = contract.partition_column, contract.key_column
    rng = np.random.default_rng(0)
    for env, days in (("offline", (LAST - dt.timedelta(days=1), LAST)), ("online", (LAST,))):
        table = contract.table(env)
        for day in days:
            folder = f"{part}={day.isoformat()}"
            source = pq.read_table(small / table / folder)
            picked = source.take(pa.array(rng.integers(0, len(source), rows)))
            fresh = pc.binary_join_element_wise(picked[key].cast(pa.string()),
                                                pa.array([str(i) for i in range(rows)]), "-")
            picked = picked.set_column(picked.schema.get_field_index(key), key, fresh)
            out = root / "big" / table / folder
            out.mkdir(parents=True)
            for i, offset in enumerate(range(0, rows, ROWS_PER_FILE)):
                pq.write_table(picked.slice(offset, ROWS_PER_FILE), out / f"part-{i}.parquet")
    return project, str((root / "big").resolve())


def _best(step, repeats: int = 1) -> tuple[float | None, object]:
    """(seconds, result) of ``step`` after a warm-up run; (None, the error) when it fails."""
    try:
        step()  # warm-up: plans, JIT, file metadata
    except Exception as exc:  # noqa: BLE001 - a step an engine cannot run is reported, not fatal
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = step()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _steps(project, engine, dialect: str) -> dict[str, tuple[float, object]]:
    from contracts.commands import run_validate
    from monitors.drift import compare_profiles, drift_targets
    from monitors.engine_profile import TableRange, profile_table
    from monitors.engine_rates import engine_default_rates

    contract = project.features
    targets = drift_targets(contract)
    columns = {env: [n for n, _ in engine.columns(contract.table(env))]
               for env in ("offline", "online")}

    def rng(env: str, day: dt.date) -> TableRange:
        return TableRange(contract.table(env), day, day, contract.partition_column,
                          contract.key_column, dialect)

    def validate():
        return run_validate(project, engine, LAST, environment="offline", dataset="features",
                            history_bounds=False, engine_checks=True)

    def drift():
        reference = profile_table(engine, rng("offline", LAST - dt.timedelta(days=1)), targets)
        current = profile_table(engine, rng("online", LAST), targets)
        return compare_profiles(reference, current, targets, "online")

    def rates():
        return engine_default_rates(engine, contract, LAST, segments=project.segments,
                                    offline_columns=columns["offline"],
                                    online_columns=columns["online"], dialect=dialect)

    return {"validate": _best(validate), "drift": _best(drift), "default_rate": _best(rates)}


def main(rows: int | None = None) -> None:
    import pyarrow.parquet as pq

    from funnelguard.engines import sql_engine
    from funnelguard.warehouse import connect

    rows = rows or int(os.environ.get("BENCH_SPARK_ROWS", "1000000"))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        project, root = _dataset(Path(tmp), rows)
        build_s = time.perf_counter() - t0
        # Bytes a row from the simulated partition itself: resampled rows repeat values and
        # compress better than real ones.
        partition = Path(tmp) / "small" / project.features.table("offline") / \
            f"{project.features.partition_column}={LAST.isoformat()}"
        files = list(partition.glob("*.parquet"))
        bytes_per_row = sum(f.stat().st_size for f in files) / sum(
            pq.read_metadata(f).num_rows for f in files)
        duck = connect(f"parquet:///{root}")
        duckdb = _steps(project, sql_engine(duck), "duckdb")
        duck.dispose()
        t0 = time.perf_counter()
        spark_engine = connect(f"spark+parquet:///{root}")
        start_s = time.perf_counter() - t0
        spark = _steps(project, spark_engine, "spark")
        spark_engine.dispose()
    ran = {step: duckdb[step][0] is not None and spark[step][0] is not None
           for step in duckdb}
    same_validate = ran["validate"] and \
        duckdb["validate"][1].findings == spark["validate"][1].findings
    n_drift = len(project.features.fields) if not ran["drift"] else len(spark["drift"][1])
    agree = sum((a.method, a.drifted) == (b.method, b.drifted)
                for a, b in zip(duckdb["drift"][1], spark["drift"][1], strict=True)) \
        if ran["drift"] else 0
    same_rates = ran["default_rate"] and duckdb["default_rate"][1] == spark["default_rate"][1]
    cores = 2
    lines = [
        f"Command: `python -m bench spark` (rows: `BENCH_SPARK_ROWS`, default 1,000,000). "
        f"Machine: {machine()}; measured {dt.date.today()} while other work shared the CPUs "
        f"(load average {os.getloadavg()[0]:.1f} at the end), so absolute times are inflated; "
        "both engines ran in this one process, one after the other, on the same parquet files "
        f"({rows:,} rows per partition; dataset built in {build_s:.0f} s). Each step timed once after a "
        f"warm-up run. Spark `local[2]`, started in {start_s:.1f} s (not in the times below).",
        "",
        "| step | DuckDB over parquet, s | Spark local[2], s | Spark / DuckDB | DuckDB rows/s/core "
        "| Spark rows/s/core | same result |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    what = {"validate": (f"`validate` features offline, pushed down ({rows:,} rows)", rows,
                         "identical findings" if same_validate else "**findings differ**"),
            "drift": (f"drift profile, online vs offline, {n_drift} features ({2 * rows:,} rows)",
                      2 * rows, f"{agree}/{n_drift} decisions"),
            "default_rate": (f"default rates per segment, offline + online ({2 * rows:,} rows)",
                             2 * rows, "identical" if same_rates else "**differ**")}
    failures = []
    for step, (label, scanned, same) in what.items():
        d, s = duckdb[step][0], spark[step][0]
        for name, (t, out) in (("DuckDB", duckdb[step]), ("Spark", spark[step])):
            if t is None:
                failures.append(f"{label}, {name}: {out}")
        cells = [f"{t:.2f}" if t is not None else "failed" for t in (d, s)]
        ratio = f"{s / d:.1f}x" if d and s else "–"
        rates = [f"{scanned / t / cores:,.0f}" if t else "–" for t in (d, s)]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {ratio} | {rates[0]} | {rates[1]} "
                     f"| {same if ran[step] else '–'} |")
    if failures:
        lines += ["", "Steps that failed: " + "; ".join(failures) + "."]
    lines += [
        "",
        "Drift samples of continuous columns are picked by each engine's own seeded hash "
        "(DuckDB `hash`, Spark `xxhash64`), so their scores differ a little; discrete columns "
        "are exact counts on both. Rows/s/core divides the rows scanned by the wall time and "
        "the 2 cores: the figure docs/scaling.md scales from. A simulated offline features "
        f"partition takes {bytes_per_row:.0f} bytes a row as parquet (pyarrow defaults, snappy; "
        f"{len(project.features.fields_for('offline'))} columns).",
    ]
    write_section("spark", "## Spark local mode vs DuckDB over parquet\n\n" + "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    import sys

    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
