"""Why label maturity matters: calibration of a model trained on naive vs masked labels.

Builds a clean simulated warehouse, then three training sets as of "now": the masked builder
(immature outcomes masked per task), the naive builder (immature outcomes counted as
negatives) and the masked builder with negative downsampling. Fits one scikit-learn logistic
regression per task on the numeric features of each, and reports predicted/observed on the
matured holdout (1.0 is calibrated). Run::

    python -m bench.bench_naive_labels [--per-day 4000] [--days 28] [--seed 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from bench.report import machine, write_section

__all__ = ["main", "calibration_table"]

DOWNSAMPLE = 0.1


def _fit_predict(train, holdout, task: str, features: list[str], *, masked: bool,
                 keep_early_positives: bool = False):
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    usable = train[f"mask_{task}"]
    if keep_early_positives:  # the tempting mistake: use every loaded positive
        usable = usable | (train[f"label_{task}"] == 1.0)
    rows = train[usable] if masked else train
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    x = rows[features].to_numpy(dtype=np.float64)
    model.fit(x, rows[f"label_{task}"].to_numpy())
    return model.predict_proba(holdout[features].to_numpy(dtype=np.float64))[:, 1], len(rows)


def calibration_table(engine, as_of: dt.date) -> tuple[list[dict], dict]:
    """Per task: observed holdout rate and predicted/observed for each training set."""
    from funnelguard.project import load_project
    from funnelguard.warehouse import TASKS, feature_names, read_range
    from model.trainset import build_naive_training_set, build_training_set, correct_downsampled

    timings = {}
    start = time.perf_counter()
    masked = build_training_set(load_project(), engine, as_of)
    timings["masked"] = time.perf_counter() - start
    start = time.perf_counter()
    naive = build_naive_training_set(load_project(), engine, as_of)
    timings["naive"] = time.perf_counter() - start
    sampled = build_training_set(load_project(), engine, as_of, negative_downsample=DOWNSAMPLE, seed=0)
    features = feature_names(("int", "float"))
    holdout = masked.holdout
    days = [dt.date.fromisoformat(d) for d in masked.description["split"]["holdout_days"]]
    oracle = read_range(engine, "oracle", days[0], days[-1], partition_column="ds")
    oracle = holdout[["impression_id"]].merge(oracle, on="impression_id", how="left")
    rows = []
    click_sampled = None
    for task in TASKS:
        observed = float(holdout[f"label_{task}"].mean())
        p_masked, n_masked = _fit_predict(masked.train, holdout, task, features, masked=True)
        p_naive, n_naive = _fit_predict(naive.train, holdout, task, features, masked=False)
        p_early, _ = _fit_predict(masked.train, holdout, task, features, masked=True,
                                  keep_early_positives=True)
        truth = float(oracle[f"p_{task}"].mean())
        p_sampled, _ = _fit_predict(sampled.train, holdout, task, features, masked=True)
        if task == "click":
            click_sampled = p_sampled
        p_any = None if task == "click" else click_sampled
        p_corrected = correct_downsampled(p_sampled, DOWNSAMPLE, p_any)
        rows.append({
            "task": task, "observed": observed, "holdout_positives": int(holdout[f"label_{task}"].sum()),
            "oracle": truth,
            "masked": float(p_masked.mean()) / truth, "naive": float(p_naive.mean()) / truth,
            "early": float(p_early.mean()) / truth,
            "sampled_raw": float(p_sampled.mean()) / truth,
            "sampled_corrected": float(p_corrected.mean()) / truth,
            "rows_masked": n_masked, "rows_naive": n_naive,
        })
    info = {"holdout_days": masked.description["split"]["holdout_days"],
            "holdout_rows": len(holdout), "train_rows": len(masked.train), "timings": timings}
    return rows, info


def _markdown(rows: list[dict], info: dict, args) -> str:
    lines = [
        "## naive_labels: why immature labels must be masked",
        "",
        f"Command: `python -m bench.bench_naive_labels --per-day {args.per_day} --days {args.days} "
        f"--seed {args.seed}` (clean simulated warehouse, as of the simulator's now, 28-day "
        f"window, holdout {', '.join(info['holdout_days'])}: {info['holdout_rows']} matured "
        f"impressions; {info['train_rows']} training rows). Machine: {machine()}.",
        "",
        "One logistic regression per task on the numeric features. Each cell is the mean "
        "predicted probability on the matured holdout divided by the mean *true* probability "
        "of the same impressions (the simulator's oracle; the observed rate is shown too but "
        "carries Poisson noise). 1.00 = calibrated.",
        "",
        "| task | true rate (oracle) | observed rate (positives) | masked builder | naive builder "
        "(immature = negative) | early positives kept (immature negatives masked) "
        f"| masked, downsampled w={DOWNSAMPLE}, raw | same, corrected | rows trained: masked / naive |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['oracle']:.3%} | {r['observed']:.3%} ({r['holdout_positives']}) "
            f"| {r['masked']:.2f} | {r['naive']:.2f} | {r['early']:.2f} | {r['sampled_raw']:.2f} "
            f"| {r['sampled_corrected']:.2f} | {r['rows_masked']} / {r['rows_naive']} |")
    t = info["timings"]
    lines += ["", f"Builder time in the same run: masked {t['masked']:.1f} s, naive "
                  f"{t['naive']:.1f} s (ratio {t['masked'] / t['naive']:.2f}); the masks cost "
                  "nothing measurable, the time is reading the warehouse."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=4000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv if argv is not None else [])
    from funnelguard.simulator import SimConfig, simulate
    from funnelguard.warehouse import connect

    start = dt.date(2026, 10, 1)
    with tempfile.TemporaryDirectory() as tmp:
        engine = connect(f"sqlite:///{Path(tmp) / 'naive_labels.db'}", must_exist=False)
        simulate(engine, SimConfig(start=start, days=args.days, per_day=args.per_day, seed=args.seed))
        rows, info = calibration_table(engine, start + dt.timedelta(days=args.days))
        engine.dispose()
    markdown = _markdown(rows, info, args)
    write_section("naive_labels", markdown)
    print(markdown)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
