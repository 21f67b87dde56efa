"""Benchmark: the monitoring path (sampled Evidently drift + default rate + replay skew) against a
full Evidently ``DataDriftPreset`` run on the same in-memory frames, with decision agreement.

Data: one simulated warehouse of 14 days whose days 8-13 each carry one fault
(serving_default on android, unit_mismatch inside the range, stale_online, tz_shift,
category swap, a half-share income unit mismatch) and whose day 14 is clean. Each partition
(offline and online rows of the same impressions) and its trailing 7-day window is resampled
with replacement to the benchmark size, keeping the offline/online pairing, so every
comparison is between real simulator distributions at 1M rows.

Run: ``python -m bench monitors`` (``BENCH_MONITORS_ROWS`` = speed size, default 1,000,000;
``BENCH_MONITORS_AGREE_ROWS`` = agreement size, default 100,000; ``BENCH_MONITORS_PER_DAY`` =
simulated impressions a day, default 10,000).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

__all__ = ["main"]

START = dt.date(2026, 10, 1)
DAYS = 14
FAULT_DAYS = {
    8: "serving_default:feature=approval_odds,device_type=android",
    9: "unit_mismatch:feature=item_apr,factor=0.5",
    10: "stale_online:feature=account_age_days,lag_days=7",
    11: "tz_shift:hours=5",
    12: "category_remap:feature=item_type,swap=card/mortgage",
    13: "unit_mismatch:feature=annual_income,factor=12,share=0.5",
}


def _simulate(per_day: int) -> str:
    from funnelguard.simulator import SimConfig, parse_fault, simulate
    from funnelguard.warehouse import connect

    path = Path(tempfile.mkdtemp(prefix="bench_monitors_")) / "wh.db"
    url = f"sqlite:///{path}"
    faults = tuple(parse_fault(f"{spec},day={START + dt.timedelta(days=d - 1)}", start=START, days=DAYS)
                   for d, spec in FAULT_DAYS.items())
    engine = connect(url, must_exist=False)
    simulate(engine, SimConfig(start=START, days=DAYS, per_day=per_day, seed=5, faults=faults))
    return url


def _resample(offline, online, rows: int, seed: int):
    """``rows`` impressions drawn with replacement, offline and online rows kept paired."""
    import numpy as np

    online = online.drop_duplicates("impression_id")
    offline = offline.drop_duplicates("impression_id").set_index("impression_id")
    offline = offline.loc[online["impression_id"]].reset_index()
    pick = np.random.default_rng(seed).integers(0, len(online), rows)
    ids = np.char.add("r", np.arange(rows).astype(str)).astype(object)
    out = []
    for frame in (offline, online.reset_index(drop=True)):
        frame = frame.iloc[pick].reset_index(drop=True)
        frame["impression_id"] = ids
        out.append(frame)
    return out


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def _partitions(url: str, contract, rows: int):
    """(label, offline, online, offline window, online window) for each current partition."""
    from funnelguard.warehouse import connect, read_partition, read_range

    engine = connect(url)
    tables = {env: contract.table(env) for env in ("offline", "online")}
    for day in range(8, DAYS + 1):
        ds = START + dt.timedelta(days=day - 1)
        label = FAULT_DAYS.get(day, "clean").split(":")[0] + f" ({ds})"
        frames = {env: read_partition(engine, t, ds, partition_column="ds", timestamps=("served_at",)) for env, t in tables.items()}
        windows = {env: read_range(engine, t, ds - dt.timedelta(days=7), ds - dt.timedelta(days=1), partition_column="ds", timestamps=("served_at",))
                   for env, t in tables.items()}
        offline, online = _resample(frames["offline"], frames["online"], rows, day)
        off_window, on_window = _resample(windows["offline"], windows["online"], rows, 100 + day)
        yield label, offline, online, off_window, on_window


def _monitoring_path(contract, offline, online, off_window, on_window):
    """Everything `funnelguard drift` and `funnelguard skew` compute, minus I/O and HTML."""
    from monitors import drift
    from monitors.default_rate import default_rates
    from monitors.skew import align_replay, replay_skew

    timings = {}
    targets = {env: drift.drift_targets(contract, (env,)) for env in ("offline", "online")}
    both = drift.drift_targets(contract)
    started = time.perf_counter()
    profiles = {env: drift.profile_frame(f, targets[env], seed=i)
                for i, (env, f) in enumerate((("offline", offline), ("online", online)))}
    windows = {env: drift.profile_frame(f, targets[env], seed=2)
               for env, f in (("offline", off_window), ("online", on_window))}
    results = list(drift.compare_profiles(profiles["offline"], profiles["online"], both,
                                          "online_vs_offline"))
    for env in ("offline", "online"):
        results += drift.compare_profiles(windows[env], profiles[env], targets[env], env)
    timings["drift (3 comparisons)"] = time.perf_counter() - started
    alignment, timings["replay join"] = _timed(lambda: align_replay(offline, online, key="impression_id"))
    _, timings["default rate"] = _timed(lambda: default_rates(offline, online, contract,
                                                              alignment=alignment))
    _, timings["replay skew"] = _timed(lambda: replay_skew(offline, online, contract,
                                                           alignment=alignment))
    return results, profiles, timings


def main() -> None:
    from bench.report import machine, write_section
    from contracts import load_contract
    from monitors import drift
    from monitors.drift_agreement import Agreement, compare_decisions, full_preset_decisions
    from monitors.reports import write_evidently_drift

    rows = int(os.environ.get("BENCH_MONITORS_ROWS", 1_000_000))
    agree_rows = int(os.environ.get("BENCH_MONITORS_AGREE_ROWS", 100_000))
    per_day = int(os.environ.get("BENCH_MONITORS_PER_DAY", 10_000))
    contract = load_contract("ranking_features")
    both = drift.drift_targets(contract)
    features = [t.feature for t in both]
    url, sim_s = _timed(lambda: _simulate(per_day))
    print(f"simulated {DAYS} days x {per_day} in {sim_s:.0f} s", flush=True)

    # Speed at full size: one faulted partition, the monitoring path vs one full preset run.
    label, offline, online, off_window, on_window = next(_partitions(url, contract, rows))
    _monitoring_path(contract, offline.head(5000), online.head(5000), off_window.head(5000),
                     on_window.head(5000))  # warm imports and caches
    (results, profiles, timings) = _monitoring_path(contract, offline, online, off_window, on_window)
    one_cmp, one_s = _timed(lambda: drift.detect_drift(offline, online, both, "online_vs_offline"))
    full, full_s = _timed(lambda: full_preset_decisions(offline[features], online[features], both))
    speed_agreement = compare_decisions(label, one_cmp, full)
    html_dir = Path(tempfile.mkdtemp(prefix="bench_monitors_html_"))
    _, html_s = _timed(lambda: write_evidently_drift(
        html_dir / "drift.html", profiles["offline"], profiles["online"], both,
        [r for r in results if r.environment == "online_vs_offline"]))
    path_s = sum(timings.values())
    print(f"{rows} rows: sampled {one_s:.2f} s vs full {full_s:.1f} s", flush=True)

    # Agreement across clean and faulted partitions at a size where sampling is still active.
    agreement = Agreement(0, 0, 0)
    for label, offline, online, off_window, on_window in _partitions(url, contract, agree_rows):
        for env, ref, cur, targets in (
            ("online_vs_offline", offline, online, both),
            ("offline", off_window, offline, drift.drift_targets(contract, ("offline",))),
            ("online", on_window, online, drift.drift_targets(contract, ("online",))),
        ):
            cols = [t.feature for t in targets]
            sampled = drift.detect_drift(ref, cur, targets, env)
            agreement = agreement + compare_decisions(
                f"{label} {env}", sampled, full_preset_decisions(ref[cols], cur[cols], targets))
        print(f"agreement so far {agreement.identical}/{agreement.decisions}", flush=True)
    total = agreement + speed_agreement
    lines = [
        "## Monitors: sampled Evidently drift, default rate, replay skew",
        "",
        "```",
        "python -m bench monitors   # BENCH_MONITORS_ROWS, BENCH_MONITORS_AGREE_ROWS, BENCH_MONITORS_PER_DAY",
        "```",
        "",
        f"Machine: {machine()} (shared with other jobs; both sides run in this one process, one "
        "after the other). Frames: simulator partitions resampled with replacement to "
        f"{rows:,} rows (offline/online pairs kept), {len(features)} contract features, sample "
        f"size {drift.DEFAULT_SAMPLE_SIZE:,} per continuous column.",
        "",
        f"| step on {rows:,} rows | seconds |",
        "|---|---|",
        f"| full Evidently `DataDriftPreset`, online vs offline (one comparison) | {full_s:.1f} |",
        f"| monitoring drift, same comparison (profile both sides: exact counts for discrete columns, "
        f"samples for continuous ones; Evidently's tests) | {one_s:.2f} |",
        f"| **ratio** | **{full_s / one_s:.0f}x** |",
        *[f"| monitoring path: {k} | {v:.2f} |" for k, v in timings.items()],
        f"| monitoring path total (3 drift comparisons + default rate + replay skew) | {path_s:.2f} |",
        f"| **full preset (1 comparison) / whole monitoring path** | **{full_s / path_s:.0f}x** |",
        f"| Evidently HTML for the drifted features only (what a person opens) | {html_s:.2f} |",
        "",
        f"Decision agreement with the full preset run: **{total.identical}/{total.decisions} "
        f"({total.rate:.1%})** identical per-column decisions ({total.drifted} drifted in the full "
        f"run), over {len(FAULT_DAYS) + 1} partitions (clean and {len(FAULT_DAYS)} faults) x 3 "
        f"comparisons at {agree_rows:,} rows plus the {rows:,}-row comparison above.",
    ]
    if total.disagreements:
        lines += ["", "| comparison | feature | method | sampled | full | threshold |", "|---|---|---|---|---|---|"]
        lines += [f"| {d.comparison} | {d.feature} | {d.method} | {d.sampled_score:.4f} | "
                  f"{d.full_score:.4f} | {d.threshold:g} |" for d in total.disagreements]
    write_section("monitors", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
