"""``estimate``: online performance of the served scores before their labels arrive.

:func:`run_estimate` is the typed job (registry name ``estimate``): per stage and day of the
``days`` before the as-of date it replays the model on the day's offline features, calibrates
the replayed scores on matured rows and computes the expected metrics of the served scores
(:mod:`model.evaluation.estimate`), adds the labels' delay-aware completion
(:func:`monitors.maturity.delays.complete_labels`: positive rate and calibration ratio), decides
each day against its trailing norm and the replayed scores
(:mod:`model.evaluation.estimate_verdicts`) and names the features behind a drop (replay
attribution). With a results store it also scores itself: a day whose labels have matured is
compared with the estimate first stored for it (``estimate_error.auc.<task>``,
``estimate_covered.auc.<task>``). Tables, columns, stages and owners come from the project.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from funnelguard.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from funnelguard.findings import Metric, RunResult
    from funnelguard.project import Project
    from model.evaluation.estimate import DayEstimate, PlattCalibration
    from model.evaluation.replay import ReplayFrames
    from model.evaluation.scorers import ResolvedScorer

__all__ = ["run_estimate", "replay_model"]


def _calibrations(scorer: ResolvedScorer, ts: Any, tasks: tuple[str, ...],
                  features: list[str]) -> dict[str, PlattCalibration]:
    """Per task, Platt scaling of the replayed score on the matured rows the model did not
    train on."""
    from model.evaluation.estimate import fit_platt
    from model.evaluation.holdout import training_overlap

    frame = ts.frame
    days = tuple(sorted(set(frame[ts.partition])))
    trained = set(training_overlap(scorer.model_dir, days))
    usable = ~frame[ts.partition].isin(trained).to_numpy()
    scores = scorer.predict(frame[features], tasks)
    out = {}
    for t in tasks:
        rows = usable & frame[f"mask_{t}"].to_numpy(dtype=bool) & np.isfinite(scores[t])
        y = frame[f"label_{t}"].to_numpy(dtype=np.float64)[rows]
        if not rows.any() or not 0 < y.sum() < len(y):
            raise InputError(
                f"estimate: calibrating {t} needs matured rows with both outcomes as of the "
                f"as-of date; found {int(rows.sum())} rows, {int(y.sum())} positive")
        out[t] = fit_platt(scores[t][rows], y)
    return out


def _oracle(project: Project, engine: Engine, day: dt.date, ids: np.ndarray,
            tasks: tuple[str, ...]) -> dict[str, np.ndarray]:
    """True probabilities of ``ids`` from the project's oracle table, where it has one."""
    import sqlalchemy as sa

    from funnelguard.warehouse import read_partition

    table = project.defaults.get("oracle_table")
    if not table or not sa.inspect(engine).has_table(table):
        return {}
    key = project.features.key_column
    present = {c["name"] for c in sa.inspect(engine).get_columns(table)}
    columns = [f"p_{t}" for t in tasks if f"p_{t}" in present]
    if key not in present or not columns:
        return {}
    rows = read_partition(engine, table, day, [key, *columns],
                          partition_column=project.features.partition_column)
    aligned = rows.drop_duplicates(key).set_index(key).reindex(ids)
    return {c[2:]: aligned[c].to_numpy(dtype=np.float64) for c in columns
            if aligned[c].notna().all()}


def _final_labels(labels: pd.DataFrame, ids: np.ndarray, task: str) -> np.ndarray | None:
    """Final labels of ``ids`` (NaN: not final), or None while the day is immature.

    Args:
        labels: the training set's rows indexed by key (``label_{task}``, ``mask_{task}``).
    """
    mask = labels[f"mask_{task}"].reindex(ids).fillna(False).to_numpy(dtype=bool)
    if mask.mean() < 0.99:
        return None
    return np.where(mask, labels[f"label_{task}"].reindex(ids).to_numpy(dtype=np.float64), np.nan)


def _completion(project: Project, engine: Engine, as_of: dt.date, days: int,
                tasks: tuple[str, ...]) -> tuple[dict[tuple[str, dt.date], dict], str | None]:
    """(task, day) -> the labels' delay-aware completion; the reason when unavailable."""
    try:
        from monitors.maturity.delays import complete_labels
    except ImportError as exc:
        return {}, f"delay-aware completion unavailable ({exc})"
    try:
        rows = complete_labels(project, engine, as_of, days=days, tasks=tasks)
    except InputError as exc:
        return {}, f"delay-aware completion failed: {exc}"
    return {(c.task, c.partition): c.to_json() for c in rows}, None


def _contributors(scorer: ResolvedScorer, frames: ReplayFrames, task: str, top: int = 3
                  ) -> dict[str, float]:
    """The features whose offline value removes the largest share of the day's online vs
    offline score difference (replay attribution), at most ``top``."""
    from model.evaluation.replay import swap_contributions

    features = list(frames.features)
    online, offline = frames.served[features], frames.offline[features]
    s_on, s_off = scorer.predict(online, (task,)), scorer.predict(offline, (task,))
    mad = float(np.nanmean(np.abs(s_on[task] - s_off[task]))) if len(online) else 0.0
    found = swap_contributions(scorer, online, offline, s_on, s_off, (task,), frames.features,
                               frames.tolerances)
    ranked = sorted(((f, c[task][0]) for f, c in found.items()), key=lambda x: -x[1])
    return {f: r / mad for f, r in ranked[:top] if r > 0 and mad > 0}


def _stored_estimates(store_url: str, days: list[dt.date], segment_of) -> dict:
    """(task, day) -> the estimate first stored for that day: ``{est, low, high}``."""
    import sqlalchemy as sa

    from monitors.store import open_store
    from monitors.store.models import MetricRow, Run

    names = ("estimated_auc", "estimated_auc_low", "estimated_auc_high")
    segments = {segment_of(d): d for d in days}
    stmt = (sa.select(Run.partition, MetricRow.name, MetricRow.task, MetricRow.segment,
                      MetricRow.value).join(Run, MetricRow.run_id == Run.id)
            .where(Run.command == "estimate", MetricRow.name.in_(names),
                   MetricRow.segment.in_(list(segments)))
            .order_by(Run.partition))
    store = open_store(store_url)
    out: dict[tuple[str, dt.date], dict[str, float]] = {}
    first: dict[tuple[str, dt.date], str] = {}
    with store.session() as s:
        for partition, name, task, segment, value in s.execute(stmt):
            key = (task, segments[segment])
            if first.setdefault(key, partition) != partition:
                continue  # a later run re-estimated the day: the first estimate is the one held
            out.setdefault(key, {})[name.removeprefix("estimated_auc").lstrip("_") or "est"] = value
    return out


def _accuracy(estimates: list[DayEstimate], stored: Mapping, segment_of) -> list[Metric]:
    """The estimator's own error on the days that have matured since it estimated them."""
    from funnelguard.findings import Metric

    out = []
    for e in estimates:
        held = stored.get((e.task, e.day))
        if e.realized_auc is None or not held or held.get("est") is None:
            continue
        seg = segment_of(e.day)
        out.append(Metric(f"estimate_error.auc.{e.task}", held["est"] - e.realized_auc,
                          task=e.task, environment="online", segment=seg))
        if held.get("low") is not None and held.get("high") is not None:
            covered = float(held["low"] <= e.realized_auc <= held["high"])
            out.append(Metric(f"estimate_covered.auc.{e.task}", covered, task=e.task,
                              environment="online", segment=seg))
    return out


def _day_metrics(e: DayEstimate, segment: str) -> list[Metric]:
    from funnelguard.findings import Metric

    values = {"estimated_auc": e.served_auc.est, "estimated_auc_low": e.served_auc.low,
              "estimated_auc_high": e.served_auc.high, "replayed_auc": e.replayed_auc.est,
              "estimated_gap_auc": e.gap_auc.est, "estimated_log_loss": e.served_log_loss.est,
              "estimated_calibration": e.calibration.est, "realized_auc": e.realized_auc}
    rate = e.completion.get("positive_rate")
    ratio = e.completion.get("calibration_ratio")
    values["completed_positive_rate"] = rate[0] if rate else None
    values["completed_calibration_ratio"] = ratio[0] if ratio else None
    return [Metric(name, float(v), task=e.task, environment="online", segment=segment)
            for name, v in values.items() if v is not None and np.isfinite(v)]


def replay_model(project: Project, candidate: str | None) -> str:
    """The model a scheduled estimate replays: ``served`` where the served model can be
    re-run on other feature values, else ``candidate`` (a model directory).

    Raises:
        InputError: neither is available.
    """
    from model.evaluation.scorers import SERVED, resolve_scorer

    try:
        if resolve_scorer(SERVED, project).rescorable:
            return SERVED
    except InputError:
        pass  # no logged scores, or they live only in the warehouse: use the candidate
    if candidate:
        return str(candidate)
    raise InputError(f"estimate: project {project.name}'s served model cannot be re-run and no "
                     f"model directory was given")


def run_estimate(project: Project, engine: Engine, as_of: dt.date | str, *, days: int = 7,
                 model: Any = "served", norm_days: int = 7, draws: int = 200,
                 min_drop: float = 0.01, seed: int = 20261025, store_url: str | None = None,
                 ) -> RunResult:
    """Estimated performance of the served scores on each of the ``days`` before ``as_of``.

    Args:
        project: the project (contracts: tables, stages, features, logged scores, owners).
        engine: the warehouse.
        as_of: knowledge at this date's 00:00 UTC (a date or ``YYYY-MM-DD``).
        days: the days estimated and decided, ``as_of - days .. as_of - 1``.
        model: the model replayed on the offline features: a model directory, ``served``
            (where the served model can be re-run), or a scorer object.
        norm_days: estimated days before a day that form its trailing norm (estimated too).
        draws: label and calibration draws for the intervals.
        min_drop: the smallest AUC drop that counts.
        seed: the draws' seed.
        store_url: the results store holding earlier estimate runs (None: the estimator's
            accuracy is not measured).

    Raises:
        InputError: a bad date or option, a model that cannot be re-run, too few matured rows
            to calibrate, or no served rows in the window (exit 2).
    """
    from funnelguard.findings import RunResult
    from funnelguard.warehouse import parse_date
    from model.evaluation.commands import _model_name
    from model.evaluation.errors import EvaluationInputError
    from model.evaluation.estimate import estimate_day
    from model.evaluation.estimate_verdicts import EstimateLimits, decide, decision_finding
    from model.evaluation.replay import load_replay_frames
    from model.evaluation.scorers import resolve_scorer
    from model.trainset import DEFAULT_WINDOW_DAYS, build_training_set

    as_of = parse_date(as_of, flag="--as-of")
    for flag, value, low in (("--days", days, 1), ("--norm-days", norm_days, 1),
                             ("--draws", draws, 20)):
        if value < low:
            raise InputError(f"{flag}: expected a number >= {low}, found {value}")
    limits = EstimateLimits(norm_days=norm_days, min_norm_days=min(3, norm_days),
                            min_drop=min_drop)
    window = [as_of - dt.timedelta(days=i) for i in range(days, 0, -1)]
    span = [window[0] - dt.timedelta(days=i) for i in range(norm_days, 0, -1)] + window
    part = project.features.partition_column
    segment_of = lambda d: f"{part}={d.isoformat()}"  # noqa: E731 - the day as a segment

    frames: dict[dt.date, ReplayFrames] = {}
    for day in span:
        try:
            frames[day] = load_replay_frames(project, engine, day)
        except EvaluationInputError:
            continue  # a day without served rows is not estimated (listed in details)
    if not any(d in frames for d in window):
        raise InputError(f"estimate: expected served rows on {window[0]} .. {window[-1]} in "
                         f"{engine.url.render_as_string(hide_password=True)}, found none")
    version = frames[max(frames)].model_version
    scorer = resolve_scorer(model, project, engine=engine, model_version=version)
    if not scorer.rescorable:
        raise EvaluationInputError(
            f"estimate: model {scorer.name} is known only by its logged scores and cannot be "
            f"re-run on the offline features; pass a model directory (`funnelguard train --out "
            f"DIR`) as --model")
    tasks = tuple(t for t in scorer.tasks if t in project.score_columns)
    features = list(project.feature_names("offline"))
    window_days = max(int(project.defaults.get("window_days") or DEFAULT_WINDOW_DAYS),
                      len(span) + 1)
    ts = build_training_set(project, engine, as_of, window_days=window_days, tasks=tasks)
    calibration = _calibrations(scorer, ts, tasks, features)
    completion, completion_note = _completion(project, engine, as_of, days, tasks)

    labels = ts.frame.drop_duplicates(ts.key).set_index(ts.key)
    rng = np.random.default_rng(seed)
    params = {t: calibration[t].draws(rng, draws) for t in tasks}
    estimates: dict[str, list[DayEstimate]] = {t: [] for t in tasks}
    for day in sorted(frames):
        fr = frames[day]
        served = fr.logged(tasks) or {}
        replayed = scorer.predict(fr.offline[list(fr.features)], tasks)
        oracle = _oracle(project, engine, day, fr.ids, tasks)
        for t in tasks:
            if t not in served:
                continue
            e = estimate_day(t, day, served[t], replayed[t], calibration[t], params[t], rng,
                             oracle=oracle.get(t), realized=_final_labels(labels, fr.ids, t))
            if (t, day) in completion:
                e = _with_completion(e, completion[(t, day)])
            estimates[t].append(e)

    findings, decisions = [], {}
    for t in tasks:
        for d in decide(estimates[t], window, limits):
            decisions[(t, d.day)] = d
            named = _contributors(scorer, frames[d.day], t) if d.flagged else None
            findings.append(decision_finding(d, partition_column=part,
                                             dataset=project.features.name,
                                             score_column=project.score_columns.get(t),
                                             contributors=named))
    everything = [e for t in tasks for e in estimates[t]]
    metrics = [m for e in everything if e.day in window for m in _day_metrics(e, segment_of(e.day))]
    accuracy = "stored estimates" if store_url else "not measured (no store)"
    stored: dict = {}
    if store_url:
        try:
            stored = _stored_estimates(store_url, sorted(frames), segment_of)
        except Exception as exc:  # noqa: BLE001 - the estimate stands without its track record
            accuracy = f"not measured: the store could not be read ({type(exc).__name__})"
    metrics += _accuracy(everything, stored, segment_of)
    return RunResult(
        command="estimate", partition=as_of.isoformat(), findings=tuple(findings),
        dataset=_model_name(scorer), environment="online", metrics=tuple(metrics),
        artifacts={"model": scorer.name},
        details={"estimate": {
            "project": project.name, "model": scorer.name, "partition_column": part,
            "window": [d.isoformat() for d in window],
            "trailing": [d.isoformat() for d in span[:norm_days]],
            "missing_days": [d.isoformat() for d in span if d not in frames],
            "tasks": list(tasks), "draws": draws, "seed": seed,
            "limits": {"norm_days": norm_days, "min_drop": min_drop},
            "calibration": {t: c.to_json() for t, c in calibration.items()},
            "completion": completion_note or "monitors.maturity.delays.complete_labels",
            "accuracy": accuracy,
            "days": [_day_json(e, decisions.get((e.task, e.day))) for e in everything]}})


def _with_completion(e: DayEstimate, completion: Mapping[str, Any]) -> DayEstimate:
    import dataclasses

    return dataclasses.replace(e, completion=dict(completion))


def _day_json(e: DayEstimate, decision: Any) -> dict[str, Any]:
    doc = e.to_json()
    if decision is not None:
        doc["decision"] = {
            "decided": decision.decided, "flagged": decision.flagged, "norm": decision.norm,
            "norm_gap": decision.norm_gap,
            "drop": decision.drop.to_json() if decision.drop else None,
            "gap_drop": decision.gap_drop.to_json() if decision.gap_drop else None,
            "tolerance": decision.tolerance, "gap_tolerance": decision.gap_tolerance}
    return doc

