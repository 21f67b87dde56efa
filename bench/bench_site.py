"""Results-site build time on a store of 10,000 runs: full build, then incremental rebuilds.

``python -m bench site`` (or ``python -m bench.bench_site [RUNS]``; default
``FUNNELGUARD_BENCH_RUNS`` or 10,000). A fresh SQLite store is filled directly through the
store's models (no checks run): per partition and per each of two datasets, ``validate``
offline and online, ``drift``, ``skew`` and ``freshness`` runs with findings (failing ones with
examples) and metrics shaped like the real commands' (drift scores per feature and environment,
default rates per feature, environment and segment, row counts, mismatch rates, volume bands).
Then ``build_site`` is timed: a full build into an empty folder, a rebuild with nothing
changed, and a rebuild after one new night (10 new runs). The largest page is reported.
Results go to the "Build time" section of docs/site.md. Tests never assert these times.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "fill_store"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "site.md"
START = dt.date(2024, 1, 1)
FEATURES = tuple(f"feature_{i}" for i in range(8))
SEGMENTS = tuple(f"segment_{k}={v}" for k in ("a", "b", "c") for v in range(3))
DATASETS = ("bench_features", "bench_events")
RUNS_PER_NIGHT = 5 * len(DATASETS)


def _night(rng: np.random.Generator, dataset: str, partition: str, recorded: dt.datetime):
    """(run row, findings, metrics) for each run of one dataset and partition."""
    faulty = rng.random() < 0.1
    out = []

    def findings(n: int, check: str, *, failing: int = 0, env: str = "", segmented=False):
        rows = []
        for i in range(n):
            bad = i < failing
            rows.append(dict(check=check, dataset=dataset, environment=env, partition=partition,
                             feature=FEATURES[i % len(FEATURES)], task=None,
                             segment=SEGMENTS[i % len(SEGMENTS)] if segmented and i >= 8 else None,
                             severity="error", passed=not bad, value=float(rng.random()),
                             threshold=0.05, count=int(rng.integers(0, 1000)),
                             message=f"{check} on {FEATURES[i % len(FEATURES)]}: synthetic",
                             examples=[{"key": f"k-{j:06d}", "value": -1.0} for j in range(5)]
                             if bad else None,
                             fingerprint=f"{check}|{dataset}|{env}|{i}"))
        return rows

    def metric(name, value, *, feature=None, env=None, segment=None):
        return dict(name=name, partition=partition, feature=feature, task=None, environment=env,
                    segment=segment, value=float(value))

    for env in ("offline", "online"):
        fails = 2 if faulty and env == "online" else 0
        mets = [metric("default_rate", rng.random() * 0.02, feature=f, env=env) for f in FEATURES]
        mets += [metric("row_count", rng.integers(9000, 11000), env=env),
                 metric("failing_rows", fails * 10, env=env)]
        out.append(("validate", env, findings(40, "range", failing=fails, env=env), mets))
    drift_mets = [metric("drift_score", rng.random(), feature=f, env=e)
                  for f in FEATURES for e in ("offline", "online", "online_vs_offline")]
    drift_mets += [metric("default_rate", rng.random() * 0.02, feature=f, env=e, segment=s)
                   for f in FEATURES for e in ("offline", "online") for s in SEGMENTS]
    out.append(("drift", "", findings(30, "drift", failing=4 if faulty else 0, segmented=True),
                drift_mets))
    out.append(("skew", "", findings(16, "replay_skew", failing=3 if faulty else 0,
                                     segmented=True),
                [metric("mismatch_rate", rng.random() * 0.01, feature=f, env="online_vs_offline")
                 for f in FEATURES for _ in (0, 1)]))
    vol = []
    for env in ("offline", "online"):
        rows = float(rng.integers(9000, 11000))
        vol.append(dict(check="volume", dataset=dataset, environment=env, partition=partition,
                        severity="error", passed=True, value=rows, threshold=[8000.0, 12000.0],
                        count=int(rows), message=f"{rows:.0f} rows", fingerprint=f"volume|{env}"))
    out.append(("freshness", "", vol + findings(3, "freshness_arrival"), []))
    return [(dict(command=c, dataset=dataset, environment=e, partition=partition,
                  status="fail" if any(not f["passed"] for f in fs) else "pass",
                  artifacts={}, recorded_at=recorded), fs, ms) for c, e, fs, ms in out]


def fill_store(url: str, runs: int, *, seed: int = 0, first_night: int = 0) -> int:
    """Insert about ``runs`` synthetic runs (whole nights) into the store at ``url``.

    Returns:
        the number of runs inserted.
    """
    import sqlalchemy as sa

    from monitors.store import FindingRow, MetricRow, Run, open_store

    store = open_store(url)
    rng = np.random.default_rng(seed + first_night)
    nights = max(1, runs // RUNS_PER_NIGHT)
    inserted = 0
    with store.session() as s, s.begin():
        next_id = (s.scalar(sa.select(sa.func.max(Run.id))) or 0) + 1
        run_rows, finding_rows, metric_rows = [], [], []
        for night in range(first_night, first_night + nights):
            partition = (START + dt.timedelta(days=night)).isoformat()
            recorded = dt.datetime.combine(START + dt.timedelta(days=night + 1), dt.time(3),
                                           tzinfo=dt.UTC)
            for dataset in DATASETS:
                for run, fs, ms in _night(rng, dataset, partition, recorded):
                    run["id"] = next_id
                    run_rows.append(run)
                    finding_rows += [{**f, "run_id": next_id} for f in fs]
                    metric_rows += [{**m, "run_id": next_id} for m in ms]
                    next_id += 1
                    inserted += 1
        s.execute(sa.insert(Run), run_rows)
        for i in range(0, len(finding_rows), 20_000):
            s.execute(sa.insert(FindingRow), finding_rows[i:i + 20_000])
        for i in range(0, len(metric_rows), 20_000):
            s.execute(sa.insert(MetricRow), metric_rows[i:i + 20_000])
    return inserted


def _largest_page(out: Path) -> tuple[str, int]:
    biggest = max((p for p in out.rglob("*.html")), key=lambda p: p.stat().st_size)
    return str(biggest.relative_to(out)), biggest.stat().st_size


def _write_section(markdown: str, name: str = "bench") -> None:
    text = DOC.read_text() if DOC.exists() else "# The results site\n"
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = (pattern.sub(lambda _: block, text) if pattern.search(text)
            else text.rstrip() + "\n\n" + block + "\n")
    DOC.write_text(text)


def _timed(build):
    """(report, wall seconds, CPU seconds of this process) of one build."""
    cpu = time.process_time()
    report = build()
    return report, report.seconds, time.process_time() - cpu


def _counts(url: str) -> tuple[int, int]:
    import sqlalchemy as sa

    from monitors.store import FindingRow, MetricRow, open_store

    with open_store(url).session() as s:
        return (s.scalar(sa.select(sa.func.count()).select_from(FindingRow)),
                s.scalar(sa.select(sa.func.count()).select_from(MetricRow)))


def main(runs: int | None = None) -> dict[str, float]:
    from monitors.site import build_site

    runs = runs or int(os.environ.get("FUNNELGUARD_BENCH_RUNS", "10000"))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'store.db'}"
        t0 = time.perf_counter()
        n = fill_store(url, runs)
        fill_s = time.perf_counter() - t0
        findings, metrics = _counts(url)
        out = Path(tmp) / "site"
        full, full_s, full_cpu = _timed(lambda: build_site(url, out))
        again, again_s, again_cpu = _timed(lambda: build_site(url, out))
        fill_store(url, RUNS_PER_NIGHT, first_night=n // RUNS_PER_NIGHT)
        night, night_s, night_cpu = _timed(lambda: build_site(url, out))
        page, size = _largest_page(out)
        files = sum(1 for _ in out.rglob("*.html"))
    load = os.getloadavg()[0]
    print(f"{n} runs ({findings} findings, {metrics} metrics) stored in {fill_s:.1f} s; "
          f"full build {full_s:.1f} s ({full_cpu:.1f} s CPU, {full.run_pages_written} run pages), "
          f"unchanged rebuild {again_s:.1f} s ({again.run_pages_written} written), one new night "
          f"{night_s:.1f} s ({night.run_pages_written} written); largest page {page} "
          f"{size:,} bytes; load average {load:.1f}")
    _write_section(f"""
## Build time

`python -m bench site` (runs: `FUNNELGUARD_BENCH_RUNS`, default 10,000), measured
{dt.date.today().isoformat()} on {platform.processor() or platform.machine()},
{os.cpu_count()} cores, Python {platform.python_version()}, load average {load:.1f} when it
finished: the cores were shared with other work, so wall times are inflated; CPU is the build
process's own time. Store: SQLite, {n:,} runs over {n // RUNS_PER_NIGHT:,} partitions of
{len(DATASETS)} datasets ({findings:,} findings, {metrics:,} metrics), filled directly through
the models in {fill_s:.1f} s.

| build | wall seconds | CPU seconds | run pages written |
|---|---|---|---|
| full, empty folder | {full_s:.1f} | {full_cpu:.1f} | {full.run_pages_written:,} |
| again, nothing changed | {again_s:.1f} | {again_cpu:.1f} | {again.run_pages_written} |
| after one new night ({RUNS_PER_NIGHT} runs) | {night_s:.1f} | {night_cpu:.1f} | {night.run_pages_written} |

{files:,} HTML files; the largest is `{page}` at {size:,} bytes (limit 1,000,000).
""")
    return {"full": full_s, "unchanged": again_s, "night": night_s}


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
