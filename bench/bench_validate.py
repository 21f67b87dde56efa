"""Validation speed and memory: Pandera (our compiled contract) vs Great Expectations 1.x.

``python -m bench validate`` (or ``python -m bench.bench_validate [ROWS]``). One run, side by
side: a synthetic offline partition (ROWS rows, default 1,000,000, the contract's columns with
~1 % legitimate defaults) is validated in memory by ``contracts.validate_frame`` and by an
equivalent GX suite (GX installed by this script into ``bench/.venv-gx``, not a project
dependency; it runs in a subprocess and only its validation is timed). Reading the partition
from SQLite is timed separately. Then peak memory of ``validate_partition`` (chunked) against a
whole-partition read while the partition grows 10x, each size in a fresh process.
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

import numpy as np
import pandas as pd

from bench.report import machine, write_section

__all__ = ["main", "make_partition", "gx_expectations"]

HERE = Path(__file__).resolve().parent
GX_VENV = HERE / ".venv-gx"
GX_VERSION = "1.24.1"
DS = dt.date(2026, 10, 1)


def make_partition(rows: int, seed: int = 0) -> pd.DataFrame:
    """An offline_features partition that meets the contract (about 1 % defaults)."""
    from funnelguard.warehouse import DEVICE_TYPES, ITEM_TYPES

    rng = np.random.default_rng(seed)

    def with_defaults(values: np.ndarray, default, share: float = 0.01) -> np.ndarray:
        values = values.astype(object if isinstance(default, str) else values.dtype)
        values[rng.random(rows) < share] = default
        return values

    return pd.DataFrame({
        "impression_id": np.char.add("imp", np.arange(rows).astype(str)).astype(object),
        "ds": [DS] * rows,
        "user_id": np.char.add("u", rng.zipf(1.3, rows).astype(str)).astype(object),
        "item_id": np.char.add("i", rng.integers(0, 5000, rows).astype(str)).astype(object),
        "merchant_id": np.char.add("m", rng.integers(0, 300, rows).astype(str)).astype(object),
        "credit_score": with_defaults(rng.integers(300, 851, rows).astype(float), -1.0),
        "credit_utilization": with_defaults(rng.random(rows), -1.0),
        "annual_income": with_defaults(rng.lognormal(11, 0.5, rows), -1.0),
        "num_open_accounts": rng.integers(0, 20, rows).astype(float),
        "num_recent_inquiries": rng.integers(0, 6, rows).astype(float),
        "account_age_days": rng.integers(0, 9000, rows).astype(float),
        "days_since_last_visit": rng.integers(0, 60, rows).astype(float),
        "user_ctr_30d": rng.beta(1, 30, rows),
        "item_type": rng.choice(np.array(ITEM_TYPES, dtype=object), rows),
        "item_apr": rng.uniform(3, 36, rows),
        "merchant_approval_rate_90d": rng.uniform(0.05, 0.9, rows),
        "approval_odds": with_defaults(rng.uniform(0.01, 1, rows), 0.0, 0.005),
        "hour_of_day": rng.integers(0, 24, rows).astype(float),
        "device_type": rng.choice(np.array(DEVICE_TYPES, dtype=object), rows),
        "position": rng.integers(1, 30, rows).astype(float),
    })


def gx_expectations(contract, environment: str = "offline") -> list[dict]:
    """The contract's checks as GX expectation specs (name + kwargs), one per Pandera check."""
    from contracts.runner import checks_for

    out = []
    for f in contract.fields_for(environment):
        for check in checks_for(f, environment):
            col = {"column": f.name}
            if check == "not_null":
                out.append({"type": "ExpectColumnValuesToNotBeNull", **col})
            elif check == "unique":
                out.append({"type": "ExpectColumnValuesToBeUnique", **col})
            elif check == "dtype" and f.is_numeric:
                out.append({"type": "ExpectColumnValuesToBeInTypeList", **col,
                            "type_list": ["float64", "int64", "Int64", "float", "int"]})
            elif check == "dtype" and f.logical_type == "string":
                out.append({"type": "ExpectColumnValuesToBeOfType", **col, "type_": "str"})
            elif check == "finite":
                out.append({"type": "ExpectColumnValuesToNotBeInSet", **col,
                            "value_set": ["inf", "-inf"]})
            elif check == "range":
                spec = {"type": "ExpectColumnValuesToBeBetween", **col,
                        "min_value": f.minimum, "max_value": f.maximum}
                if f.default is not None:
                    spec["row_condition"] = f"{f.name}!={f.default!r}"
                out.append(spec)
            elif check == "allowed_values":
                out.append({"type": "ExpectColumnValuesToBeInSet", **col,
                            "value_set": [*f.allowed_values, f.default]})
            elif check == "default_rate":
                out.append({"type": "ExpectColumnValuesToNotBeInSet", **col,
                            "value_set": [f.default], "mostly": 1 - f.max_default_rate[environment]})
    return out


def _time(fn, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


_GX_SCRIPT = r'''
import json, sys, time
import pandas as pd
import great_expectations as gx
import great_expectations.expectations as gxe

frame_path, specs_path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
frame = pd.read_parquet(frame_path)
read_s = time.perf_counter() - t0
context = gx.get_context(mode="ephemeral")
batch = (context.data_sources.add_pandas("bench").add_dataframe_asset("partition")
         .add_batch_definition_whole_dataframe("whole"))
suite = context.suites.add(gx.ExpectationSuite(name="ranking_features_offline"))
for spec in json.load(open(specs_path)):
    spec = dict(spec)
    kind = spec.pop("type")
    if "row_condition" in spec:
        spec["condition_parser"] = "pandas"
    if kind == "ExpectColumnValuesToNotBeInSet" and spec["value_set"] == ["inf", "-inf"]:
        spec["value_set"] = [float("inf"), float("-inf")]
    suite.add_expectation(getattr(gxe, kind)(**spec))
validation = context.validation_definitions.add(
    gx.ValidationDefinition(name="bench", data=batch, suite=suite))
validation.run(batch_parameters={"dataframe": frame.head(1000)})  # warm-up
times = []
for _ in range(2):
    t0 = time.perf_counter()
    result = validation.run(batch_parameters={"dataframe": frame})
    times.append(time.perf_counter() - t0)
print(json.dumps({"seconds": min(times), "read_seconds": read_s, "success": result.success,
                  "expectations": len(result.results), "version": gx.__version__}))
'''

_MEMORY_SCRIPT = r'''
import datetime as dt, json, sys, time
from contracts import load_contract, validate_partition
from funnelguard.warehouse import connect, read_partition
url, mode, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
engine = connect(url)
contract = load_contract("ranking_features")
t0 = time.perf_counter()
if mode == "chunked":
    result = validate_partition(contract, "offline", engine, dt.date(2026, 10, 1), chunk_rows=chunk)
else:
    frame = read_partition(engine, "offline_features", dt.date(2026, 10, 1), partition_column="ds")
# VmHWM (this process's peak RSS) resets at exec, unlike ru_maxrss, which would carry the
# parent's peak into the child on Linux.
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"peak_mib": int(hwm.split()[1]) / 1024,
                  "seconds": time.perf_counter() - t0}))
'''


def ensure_gx() -> Path:
    """Create ``bench/.venv-gx`` with GX (its own venv, never a project dependency)."""
    python = GX_VENV / "bin" / "python"
    probe = [str(python), "-c", "import great_expectations"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(GX_VENV)], check=True)
    (GX_VENV / ".gitignore").write_text("*\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"great_expectations=={GX_VERSION}",
                    "pandas>=2.2,<3", "pyarrow"], check=True)
    return python


def _write_sqlite(frame: pd.DataFrame, path: Path) -> str:
    from funnelguard.warehouse import connect, metadata, offline_features

    url = f"sqlite:///{path}"
    engine = connect(url, must_exist=False)
    metadata.create_all(engine, tables=[offline_features])
    with engine.begin() as conn:
        frame.to_sql("offline_features", conn, if_exists="append", index=False, chunksize=50_000)
    engine.dispose()
    return url


def _run_json(cmd: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(rows: int | None = None) -> None:
    """Both measurements at ``rows`` (default ``$FUNNELGUARD_BENCH_ROWS`` or 1,000,000)."""
    rows = rows or int(os.environ.get("FUNNELGUARD_BENCH_ROWS", 1_000_000))
    speed(rows)
    memory((rows // 10, rows))


def memory(sizes: tuple[int, ...]) -> None:
    """Peak memory of chunked validation vs a whole-partition read, each size in a fresh process."""
    frame = make_partition(max(sizes))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            url = _write_sqlite(frame.head(size), Path(tmp) / f"wh_{size}.db")
            chunked = _run_json([sys.executable, "-c", _MEMORY_SCRIPT, url, "chunked", "100000"])
            whole = _run_json([sys.executable, "-c", _MEMORY_SCRIPT, url, "whole", "0"])
            results.append((size, chunked, whole))
    lines = [
        "Command: `python -m bench.bench_validate --memory` (part of `python -m bench validate`). "
        "Each size in a fresh process; peak RSS is the process's VmHWM, imports included.",
        "",
        "| rows in partition | chunked validate: peak RSS MiB | seconds (read + validate) | "
        "whole read: peak RSS MiB | seconds (read only) |",
        "|---|---|---|---|---|",
    ]
    for size, chunked, whole in results:
        lines.append(f"| {size:,} | {chunked['peak_mib']:.0f} | {chunked['seconds']:.1f} | "
                     f"{whole['peak_mib']:.0f} | {whole['seconds']:.1f} |")
    text = ("## Contract validation in bounded memory\n\n`validate_partition` (100k-row chunks, "
            "uniqueness in SQL) vs `read_partition` of the whole partition, SQLite.\n\n"
            + "\n".join(lines))
    write_section("validate-memory", text)
    print(text)


def speed(rows: int) -> None:
    """Pandera vs GX on the same in-memory partition, back to back in one run."""
    from contracts import load_contract, validate_frame

    contract = load_contract("ranking_features")
    frame = make_partition(rows)
    specs = gx_expectations(contract)
    n_checks = sum(1 for f in validate_frame(contract, "offline", frame.head(1000)).findings
                   if f.check != "schema")
    pandera_s = _time(lambda: validate_frame(contract, "offline", frame))
    pandera_pass = validate_frame(contract, "offline", frame).status == "pass"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        frame.to_parquet(tmp / "frame.parquet")
        (tmp / "specs.json").write_text(json.dumps(specs))
        gx = _run_json([str(ensure_gx()), "-c", _GX_SCRIPT, str(tmp / "frame.parquet"),
                        str(tmp / "specs.json")])
    ratio = gx["seconds"] / pandera_s
    lines = [
        f"Command: `python -m bench validate` (rows: `FUNNELGUARD_BENCH_ROWS`, default 1,000,000). "
        f"Machine: {machine()}; measured {dt.date.today()} while other work shared the CPUs, so "
        "absolute times are inflated; the ratio is from one run, both sides back to back.",
        "",
        f"**Validation of an in-memory offline partition, {rows:,} rows**",
        "",
        "| engine | checks | verdict | seconds | ratio |",
        "|---|---|---|---|---|",
        f"| Pandera {_pandera_version()} (compiled contract, `validate_frame`) | {n_checks} | "
        f"{'pass' if pandera_pass else 'fail'} | {pandera_s:.2f} | 1.0 |",
        f"| Great Expectations {gx['version']} (equivalent suite, bench/.venv-gx) | "
        f"{gx['expectations']} | {'pass' if gx['success'] else 'fail'} | {gx['seconds']:.2f} | "
        f"{ratio:.1f}x slower |",
        "",
        "GX has no check for the `ds` date column's type, hence one expectation fewer.",
        "",
        f"Reading the partition is not in these times (GX's parquet read: {gx['read_seconds']:.2f} s).",
    ]
    write_section("validate", "## Contract validation\n\n" + "\n".join(lines))
    print("\n".join(lines))


def _pandera_version() -> str:
    import pandera

    return pandera.__version__


if __name__ == "__main__":
    if sys.argv[1:2] == ["--memory"]:
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
        memory((n // 10, n))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
