"""Performance before the labels arrive: funnelguard's replay estimate vs NannyML's CBPE.

``python -m bench estimate`` (or ``python -m bench.bench_estimate [SEEDS]``). Simulated
warehouses of 36 days from 2026-10-01, 2000 impressions a day, seeds 1..SEEDS (default 5),
each clean and with the serving fault ``serving_default`` on ``approval_odds`` for 40 % of the
android rows of 2026-10-26 (scores recomputed). The night after the fault (as of 2026-10-27)
every method sees the same served scores of 2026-10-19 .. 2026-10-26:

- **funnelguard estimate** (``run_estimate``, the served model replayed on the offline features,
  Platt-calibrated on matured rows): expected AUC with its 95 % interval per stage and day;
- **CBPE** (NannyML 0.13.1, installed by this script in its own venv ``.bench-venvs/nannyml``,
  never a project dependency; reference = the same matured rows, served score and label): its
  estimated AUC per day and its alert;
- **completed labels** (``monitors.maturity.delays.complete_labels``): the calibration ratio of
  the fault day as its labels land, day by day;
- **matured labels**: the realized AUC once the fault day's window has closed.

Measured once the days have matured (as of 2026-11-11): coverage of the 95 % intervals (the
realized AUC of the served scores inside the interval), MAE of the estimated AUC against the
oracle-based AUC of the served scores (their expected AUC under the simulator's true
probabilities), false alarms on the clean worlds, and days from the fault to its detection.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.report import machine, write_section

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench-venvs" / "nannyml"
NANNYML = "0.13.1"
START, DAYS, PER_DAY = dt.date(2026, 10, 1), 36, 2000
FAULT_DAY = dt.date(2026, 10, 26)
AS_OF = FAULT_DAY + dt.timedelta(days=1)
MATURED_AS_OF = dt.date(2026, 11, 6)
FAULT = f"serving_default:feature=approval_odds,share=0.4,device_type=android,day={FAULT_DAY}"
TASKS = ("click", "application", "conversion", "approval")
LATE = ("conversion", "approval")


def _nannyml_python() -> Path | None:
    """The venv's Python with NannyML importable (installed on first use), else None."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", f"nannyml=={NANNYML}",
                               "statsmodels", "pandas<3"], capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return None
    ok = subprocess.run([str(python), "-c", "import nannyml"], capture_output=True,
                        env={**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"})
    return python if ok.returncode == 0 else None


_CBPE = r"""
import json, sys, warnings
import pandas as pd
import nannyml as nml
warnings.filterwarnings("ignore")
doc = json.load(open(sys.argv[1]))
out = {}
for task, parts in doc.items():
    ref = pd.DataFrame(parts["reference"]); ana = pd.DataFrame(parts["analysis"])
    for f in (ref, ana):
        f["ts"] = pd.to_datetime(f["day"])
        f["pred"] = (f["score"] >= parts["threshold"]).astype(int)
    est = nml.CBPE(y_pred_proba="score", y_pred="pred", y_true="y", timestamp_column_name="ts",
                   metrics=["roc_auc"], chunk_period="D", problem_type="classification_binary")
    est.fit(ref)
    res = est.estimate(ana).filter(period="analysis").to_df()
    days = res[("chunk", "start_date")].dt.date.astype(str).tolist()
    out[task] = {"days": days,
                 "auc": res[("roc_auc", "value")].astype(float).tolist(),
                 "alert": res[("roc_auc", "alert")].astype(bool).tolist()}
print(json.dumps(out))
"""


def _build(seed: int, faulted: bool, root: Path) -> str:
    from funnelguard.simulator import SimConfig, parse_fault, simulate
    from funnelguard.warehouse import connect

    url = f"sqlite:///{root / f'wh_{seed}_{int(faulted)}.db'}"
    engine = connect(url, must_exist=False)
    faults = (parse_fault(FAULT, start=START, days=DAYS),) if faulted else ()
    simulate(engine, SimConfig(start=START, days=DAYS, per_day=PER_DAY, seed=seed, faults=faults))
    engine.dispose()
    return url


def _realized(project, engine) -> dict:
    """(task, day) -> realized AUC of the served scores on final labels (as of the end)."""
    from scipy.stats import rankdata

    from model.evaluation.estimate import auc_of_ranks
    from model.evaluation.replay import load_replay_frames
    from model.trainset import build_training_set

    ts = build_training_set(project, engine, MATURED_AS_OF, window_days=DAYS)
    labels = ts.frame.drop_duplicates(ts.key).set_index(ts.key)
    out = {}
    for i in range(8):
        day = FAULT_DAY - dt.timedelta(days=7 - i)
        fr = load_replay_frames(project, engine, day)
        served = fr.logged(TASKS)
        for t in TASKS:
            mask = labels[f"mask_{t}"].reindex(fr.ids).fillna(False).to_numpy(bool)
            y = labels[f"label_{t}"].reindex(fr.ids).to_numpy(float)
            if mask.mean() > 0.99 and 0 < y[mask].sum() < mask.sum():
                out[(t, day)] = float(auc_of_ranks(rankdata(served[t][mask]), y[mask][None])[0])
    return out


def _cbpe_input(project, engine) -> dict:
    """Per task: reference (matured rows as of AS_OF: served score, label) and analysis days."""
    from model.evaluation.replay import load_replay_frames
    from model.trainset import build_training_set

    ts = build_training_set(project, engine, AS_OF, window_days=DAYS)
    frame = ts.frame
    logged = {}
    for day in sorted(set(frame[ts.partition])):
        fr = load_replay_frames(project, engine, day)
        scores = fr.logged(TASKS)
        for k, key in enumerate(fr.ids):
            logged[key] = [scores[t][k] for t in TASKS]
    doc = {}
    for j, t in enumerate(TASKS):
        m = frame[f"mask_{t}"].to_numpy(bool)
        keys = frame[ts.key].to_numpy()[m]
        ref = {"day": [str(d) for d in frame[ts.partition].to_numpy()[m]],
               "score": [logged[k][j] for k in keys],
               "y": frame[f"label_{t}"].to_numpy()[m].astype(int).tolist()}
        ana = {"day": [], "score": []}
        for i in range(8):
            day = FAULT_DAY - dt.timedelta(days=7 - i)
            s = load_replay_frames(project, engine, day).logged(TASKS)[t]
            ana["day"] += [str(day)] * len(s)
            ana["score"] += s.tolist()
        ana["y"] = [None] * len(ana["score"])
        doc[t] = {"reference": ref, "analysis": ana,
                  "threshold": float(np.quantile(ref["score"], 0.99))}
    return doc


def _completion_latency(project, engine) -> dict:
    """Per late task: days after the fault until the completed calibration ratio's interval
    of the fault day excludes the trailing days' median ratio (None: not within 14 days)."""
    from monitors.maturity.delays import complete_labels

    out = {}
    for k in (0, 1, 2, 3, 5, 7, 10, 14):
        rows = complete_labels(project, engine, AS_OF + dt.timedelta(days=k), days=8 + k,
                               tasks=LATE)
        for t in LATE:
            if t in out:
                continue
            mine = [c for c in rows if c.task == t]
            fault = next(c for c in mine if c.partition == FAULT_DAY)
            before = [c.calibration_ratio[0] for c in mine if c.partition < FAULT_DAY
                      and c.calibration_ratio and np.isfinite(c.calibration_ratio[0])]
            ratio = fault.calibration_ratio
            if ratio and before and np.isfinite(ratio[2]) and not (
                    ratio[1] <= np.median(before) <= ratio[2]):
                out[t] = k
    return {t: out.get(t) for t in LATE}


def _world(seed: int, faulted: bool, root: Path, nml_python: Path | None) -> dict:
    from funnelguard.project import PACKAGED_PROJECT, load_project
    from funnelguard.warehouse import connect
    from model.evaluation.estimate_commands import run_estimate

    url = _build(seed, faulted, root)
    project, engine = load_project(PACKAGED_PROJECT), connect(url)
    result = run_estimate(project, engine, AS_OF, days=8, norm_days=5, seed=seed)
    days = {(d["task"], dt.date.fromisoformat(d["partition"])): d
            for d in result.details["estimate"]["days"]}
    flagged = {(f.task, f.segment.split("=")[1]) for f in result.findings if not f.passed}
    realized = _realized(project, engine)
    world = {"seed": seed, "faulted": faulted, "flagged": sorted(flagged), "days": []}
    for (t, day), d in days.items():
        if day < AS_OF - dt.timedelta(days=8):
            continue
        world["days"].append({"task": t, "day": str(day), "est": d["served_auc"]["est"],
                              "low": d["served_auc"]["low"], "high": d["served_auc"]["high"],
                              "oracle": d["oracle_auc"], "realized": realized.get((t, day))})
    if nml_python is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(_cbpe_input(project, engine), fh)
        done = subprocess.run([str(nml_python), "-c", _CBPE, fh.name], capture_output=True,
                              text=True, env={**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"})
        os.unlink(fh.name)
        world["cbpe"] = json.loads(done.stdout) if done.returncode == 0 else {
            "error": done.stderr[-500:]}
    if faulted:
        world["completion_latency"] = _completion_latency(project, engine)
    engine.dispose()
    return world


def _summary(worlds: list[dict]) -> dict:
    rows = [d for w in worlds for d in w["days"] if d["realized"] is not None]
    covered = [d["low"] <= d["realized"] <= d["high"] for d in rows]
    mae = [abs(d["est"] - d["oracle"]) for w in worlds for d in w["days"]
           if d["oracle"] is not None]
    cbpe_mae = []
    for w in worlds:
        cbpe = w.get("cbpe") or {}
        for t, c in cbpe.items():
            if t == "error":
                continue
            oracle = {d["day"]: d["oracle"] for d in w["days"] if d["task"] == t}
            cbpe_mae += [abs(a - oracle[day]) for day, a in zip(c["days"], c["auc"], strict=True)
                         if day in oracle and oracle[day] is not None and np.isfinite(a)]
    return {"coverage": float(np.mean(covered)) if covered else None, "covered_n": len(covered),
            "mae": float(np.mean(mae)) if mae else None,
            "cbpe_mae": float(np.mean(cbpe_mae)) if cbpe_mae else None}


def main(seeds: int = 5) -> None:
    nml_python = _nannyml_python()
    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
        worlds = [_world(s, f, Path(tmp), nml_python) for s in range(1, seeds + 1)
                  for f in (False, True)]
    print(json.dumps(_summary(worlds)))
    write_section("estimate", _markdown(worlds, seeds, nml_python is not None))


def _markdown(worlds: list[dict], seeds: int, with_nml: bool) -> str:
    s = _summary(worlds)
    clean = [w for w in worlds if not w["faulted"]]
    faulted = [w for w in worlds if w["faulted"]]
    fault = str(FAULT_DAY)
    lines = [
        "## Estimated performance before the labels: `funnelguard estimate` vs CBPE", "",
        f"`python -m bench estimate` — {machine()}; simulated warehouses of {DAYS} days × "
        f"{PER_DAY} impressions, seeds 1..{seeds}, clean and with `{FAULT}`; estimated as of "
        f"{AS_OF} (days {AS_OF - dt.timedelta(days=8)} .. {fault}), realized as of "
        f"{MATURED_AS_OF}.", "",
        "| measure | funnelguard estimate | CBPE (NannyML " + NANNYML + ") |", "|---|---|---|",
        f"| coverage of the 95 % interval by the realized AUC ({s['covered_n']} matured task-days)"
        f" | {s['coverage']:.1%} | — |",
        f"| MAE of the estimated AUC vs the oracle-based AUC of the served scores | "
        f"{s['mae']:.4f} | {s['cbpe_mae']:.4f} |" if s["cbpe_mae"] is not None else
        f"| MAE of the estimated AUC vs the oracle-based AUC of the served scores | "
        f"{s['mae']:.4f} | not run |",
        f"| false alarms on {len(clean)} clean worlds (task-days flagged) | "
        f"{sum(len(w['flagged']) for w in clean)} | "
        f"{_cbpe_alerts(clean) if with_nml else 'not run'} |", "",
        "Per faulted seed, late stages (conversion, approval): estimated AUC of the fault day vs "
        "the day before, days from the fault to detection.", "",
        "| seed | task | oracle AUC day before → fault day | funnelguard estimate (flag) | "
        "CBPE (alert) | completed labels | matured labels |", "|---|---|---|---|---|---|---|"]
    for w in faulted:
        for t in LATE:
            d = {x["day"]: x for x in w["days"] if x["task"] == t}
            prev = str(FAULT_DAY - dt.timedelta(days=1))
            ours = f"{d[prev]['est']:.3f} → {d[fault]['est']:.3f} " + (
                "(day 0)" if [t, fault] in [list(x) for x in w["flagged"]] else "(not flagged)")
            cbpe = w.get("cbpe", {}).get(t)
            theirs = "not run"
            if cbpe:
                auc = dict(zip(cbpe["days"], cbpe["auc"], strict=True))
                alert = dict(zip(cbpe["days"], cbpe["alert"], strict=True))
                theirs = (f"{auc.get(prev, float('nan')):.3f} → {auc.get(fault, float('nan')):.3f}"
                          f" ({'alert' if alert.get(fault) else 'no alert'})")
            k = w.get("completion_latency", {}).get(t)
            lines.append(f"| {w['seed']} | {t} | {d[prev]['oracle']:.3f} → {d[fault]['oracle']:.3f}"
                         f" | {ours} | {theirs} | "
                         f"{'day ' + str(k) if k is not None else 'not within 14 days'} | "
                         f"day 15 at the earliest (14-day window) |")
    if not with_nml:
        lines += ["", "NannyML could not be installed here; CBPE columns are not run."]
    lines += ["", "Coverage counts every stage; the AUC of one day's late-stage labels (a few "
              "positives) is wide, which the interval reflects. CBPE treats the served score as "
              "calibrated; a broken serving feature is exactly what breaks that."]
    return "\n".join(lines)


def _cbpe_alerts(worlds: list[dict]) -> int:
    return sum(sum(c["alert"]) for w in worlds for t, c in (w.get("cbpe") or {}).items()
               if t != "error")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
