"""What the history bounds cost ``validate`` and what the training-set audit costs ``train``.

``python -m bench history_bounds`` (or ``python -m bench.bench_history_bounds [PER_DAY]``).
One run, side by side on one simulated warehouse (24 days, PER_DAY impressions a day, default
5 000, SQLite): ``validate`` of the last partition with and without the history bounds (and
the bounds alone), then the training set as of the day after: building it vs auditing it
(contract checks per day, history bounds, leakage, the online read), each best of two.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from bench.report import machine, write_section

__all__ = ["main"]

START = dt.date(2026, 10, 1)
DAYS = 24  # the 14-day stages need matured days for the holdout


def _best(fn, repeat: int = 2) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(per_day: int = 5_000) -> None:
    from contracts.commands import run_validate
    from funnelguard.project import load_project
    from funnelguard.simulator import SimConfig, simulate
    from funnelguard.warehouse import connect
    from model.audit import AuditPolicy, audit_training_set
    from model.trainset import build_training_set
    from monitors.history_bounds import history_bound_findings

    project = load_project()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'wh.db'}"
        engine = connect(url, must_exist=False)
        simulate(engine, SimConfig(start=START, days=DAYS, per_day=per_day, seed=7, faults=()))
        last = START + dt.timedelta(days=DAYS - 1)
        plain, _ = _best(lambda: run_validate(project, engine, last, environment="offline",
                                              history_bounds=False))
        bounded, _ = _best(lambda: run_validate(project, engine, last, environment="offline"))
        alone, found = _best(lambda: history_bound_findings(project, engine, last, "offline"))
        as_of = last + dt.timedelta(days=1)
        build, ts = _best(lambda: build_training_set(project, engine, as_of, seed=0), repeat=1)
        parts = {
            "contract checks per day": AuditPolicy(history=False, leakage=False),
            "history bounds per day": AuditPolicy(contract=False, leakage=False),
            "leakage (trailing norm)": AuditPolicy(contract=False, history=False),
        }
        timings = {name: _best(lambda p=p: audit_training_set(project, ts, policy=p))[0]
                   for name, p in parts.items()}
        timings["leakage incl. the online read"] = _best(lambda: audit_training_set(
            project, ts, engine=engine, policy=AuditPolicy(contract=False, history=False)))[0]
        whole, _ = _best(lambda: audit_training_set(project, ts, engine=engine))
        engine.dispose()
    rows = len(ts.frame)
    lines = [
        "## History bounds and the training-set audit (`bench/bench_history_bounds.py`)",
        "",
        f"`python -m bench history_bounds` — {machine()}; simulated warehouse, {DAYS} days x "
        f"{per_day:,} impressions (SQLite), best of two.",
        "",
        "| validate of one partition (offline) | seconds | ratio |",
        "|---|---|---|",
        f"| contract checks only (`history_bounds=False`) | {plain:.2f} | 1.00 |",
        f"| with history bounds ({len(found)} numeric features, 7 days of history) | "
        f"{bounded:.2f} | {bounded / plain:.2f} |",
        f"| history bounds alone | {alone:.2f} | {alone / plain:.2f} |",
        "",
        f"| training set as of {as_of} ({rows:,} rows) | seconds | ratio to the build |",
        "|---|---|---|",
        f"| build_training_set | {build:.2f} | 1.00 |",
        *[f"| audit: {name} | {t:.2f} | {t / build:.2f} |" for name, t in timings.items()],
        f"| audit: all of it (what `train` adds before its first step) | {whole:.2f} | "
        f"{whole / build:.2f} |",
    ]
    text = "\n".join(lines)
    print(text)
    write_section("history_bounds", text)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5_000)
