"""The evaluation package's commands: ``evaluate``, ``replay`` and ``explain`` on any project.

Each is a plain function ``(project, engine, partition-or-as-of-or-key, *, options) ->
RunResult`` (the registry :data:`funnelguard.commands.JOBS` names them); the CLI handlers in
:mod:`model.evaluation.cli` and the DAG tasks are thin adapters. Tables, key and partition
columns, features, stages, logged score columns and segments all come from the project's
contracts. Nothing here stores, writes ``--json`` or picks an exit code: the edge does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from funnelguard.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from funnelguard.findings import RunResult
    from funnelguard.project import Project
    from model.evaluation.scorers import ResolvedScorer
    from model.evaluation.thresholds import EvaluationThresholds, ReplayThresholds

__all__ = ["run_evaluate", "run_replay", "run_explain"]


def _model_name(scorer: ResolvedScorer) -> str:
    version = getattr(scorer.scorer, "version", None)
    return str(version) if version and version != "unknown" else scorer.name


def _thresholds(project: Project, thresholds: Any
                ) -> tuple[EvaluationThresholds | None, ReplayThresholds | None]:
    """A thresholds file (or the project's ``defaults.thresholds``) or ready objects."""
    from model.evaluation.thresholds import (
        EvaluationThresholds,
        ReplayThresholds,
        load_thresholds,
    )

    if isinstance(thresholds, EvaluationThresholds):
        return thresholds.for_tasks(project.tasks), None
    if isinstance(thresholds, ReplayThresholds):
        return None, thresholds
    path = thresholds if thresholds is not None else project.defaults.get("thresholds")
    return load_thresholds(path, project.tasks)


def run_evaluate(project: Project, engine: Engine, as_of: dt.date | str, *, model: Any,
                 champion: Any = None, thresholds: Any = None, bootstrap: int = 200,
                 seed: int = 20261025, segments: bool = True, importance: bool = True
                 ) -> RunResult:
    """Per-stage metrics with bootstrap intervals on the matured holdout as of ``as_of``.

    Args:
        project: the project (contracts: tables, stages, features, segments, score columns).
        engine: the warehouse.
        as_of: knowledge at this date's 00:00 UTC (a date or ``YYYY-MM-DD``).
        model: a model directory, ``served``, or a scorer object (``predict(frame)``).
        champion: compared with the model on the same rows (same kinds as ``model``).
        thresholds: a YAML/JSON path, an :class:`EvaluationThresholds`, or None for the
            project's ``defaults.thresholds`` (else the built-in defaults).
        bootstrap: replicates (0: no intervals).
        seed: the bootstrap seed.
        segments: also evaluate each segment of the project.
        importance: write the model's permutation importance into its directory.

    Raises:
        InputError: a bad date, replicate count, model or thresholds file (exit 2).
    """
    from funnelguard.findings import RunResult
    from funnelguard.warehouse import parse_date
    from model.evaluation.bootstrap import PairedBootstrap
    from model.evaluation.evaluate import evaluate_model
    from model.evaluation.importance import permutation_importance, write_feature_importance
    from model.evaluation.scorers import resolve_scorer

    as_of = parse_date(as_of, flag="--as-of")
    if bootstrap < 0:
        raise InputError(f"--bootstrap: expected a count >= 0, found {bootstrap}")
    evaluation_thresholds, _ = _thresholds(project, thresholds)
    scorer = resolve_scorer(model, project, engine=engine)
    rival = (resolve_scorer(champion, project, engine=engine, flag="--champion")
             if champion is not None else None)
    evaluation, holdout = evaluate_model(
        project, engine, scorer, as_of, champion=rival, thresholds=evaluation_thresholds,
        bootstrap=PairedBootstrap(bootstrap, seed), segments=segments)
    artifacts = {"model": scorer.name}
    if rival is not None:
        artifacts["champion"] = rival.name
    if scorer.model_dir is not None and importance:
        tasks = tuple(t for t in holdout.tasks if t in scorer.tasks)
        features = [f for f in project.feature_names("offline") if f in holdout.frame.columns]
        fi = permutation_importance(scorer, holdout.frame, tasks=tasks, features=features,
                                    as_of=as_of.isoformat())
        artifacts["feature_importance"] = str(write_feature_importance(scorer.model_dir, fi))
    return RunResult(
        command="evaluate", partition=as_of.isoformat(), findings=evaluation.findings,
        dataset=_model_name(scorer), environment="offline", metrics=evaluation.metrics(),
        artifacts=artifacts,
        details={"evaluation": {
            "project": project.name, "holdout_days": [d.isoformat() for d in holdout.days],
            "rows": len(holdout.frame), "oracle": holdout.oracle is not None,
            "tasks": sorted({s.task for s in evaluation.slices}, key=list(project.tasks).index),
            "segments": list(holdout.segments) if segments else [],
            "bootstrap": {"replicates": bootstrap, "seed": seed},
            "slices": evaluation.to_json()}})


def run_replay(project: Project, engine: Engine, partition: dt.date | str, *,
               model: Any = "served", k: int | None = None, thresholds: Any = None
               ) -> RunResult:
    """Serving-score replay of one partition: logged vs replayed vs offline-feature scores.

    Args:
        project: the project.
        engine: the warehouse.
        partition: the partition to replay (a date or ``YYYY-MM-DD``).
        model: ``served`` (the model that logged the scores, where it can be re-run), a model
            directory, or a scorer object.
        k: a rank move of more than ``k`` positions within a request counts (default 1).
        thresholds: a YAML/JSON path, a :class:`ReplayThresholds`, or None for the project's
            ``defaults.thresholds`` (else the built-in defaults).

    Raises:
        InputError: a bad date, ``k``, model or thresholds file; a partition without rows; a
            served model that cannot be re-run on the offline features (exit 2).
    """
    from funnelguard.findings import Metric, RunResult
    from funnelguard.warehouse import parse_date
    from model.evaluation.replay import load_replay_frames, replay_scores
    from model.evaluation.scorers import resolve_scorer
    from model.evaluation.thresholds import ReplayThresholds
    from model.evaluation.verdicts import replay_findings, replay_input_findings

    ds = parse_date(partition)
    _, limits = _thresholds(project, thresholds)
    limits = limits or ReplayThresholds()
    if k is not None:
        if k < 0:
            raise InputError(f"--k: expected a number of positions >= 0, found {k}")
        limits = dataclasses.replace(limits, rank_k=k)
    frames = load_replay_frames(project, engine, ds)
    scorer = resolve_scorer(model, project, engine=engine, model_version=frames.model_version)
    replay = replay_scores(scorer, frames, rank_k=limits.rank_k,
                           logged_tolerance=limits.logged_tolerance,
                           partition_column=project.features.partition_column)
    metrics = []
    for r in replay.tasks:
        for name in ("logged_mad", "logged_max", "skew_mad", "skew_relative", "rank_moved_share"):
            env = "online" if name.startswith("logged") else "online_vs_offline"
            metrics.append(Metric(f"score_{name}", getattr(r, name), task=r.task, environment=env))
        for feature, _, share, _ in r.contributions:
            metrics.append(Metric("score_skew_share", share, feature=feature, task=r.task,
                                  environment="online_vs_offline"))
    return RunResult(
        command="replay", partition=ds.isoformat(),
        findings=(*replay_findings(replay, limits), *replay_input_findings(frames)),
        dataset=_model_name(scorer), environment="online_vs_offline", metrics=tuple(metrics),
        artifacts={"model": scorer.name},
        details={"replay": {**replay.to_json(), "project": project.name,
                            "unmatched": frames.unmatched}})


def run_explain(project: Project, engine: Engine, key: str, *, model: Any,
                quiet: bool = True, show_restricted: bool = False) -> RunResult:
    """One prediction reconstructed: served vs offline features and scores of one impression.

    Personal data (:mod:`funnelguard.redaction`) is redacted everywhere: the findings, the
    result's ``explanation`` (the ``--json`` document) and the printed table. Only
    ``show_restricted`` shows the raw values, in the printed table alone (printed even when
    ``quiet``); the showing is logged as one line on stderr and ``details.show_restricted``.

    Args:
        project: the project.
        engine: the warehouse.
        key: the impression's key (the features contract's primary key).
        model: ``served``, a model directory, or a scorer object.
        quiet: do not print the side-by-side table.
        show_restricted: print the personal values raw in the table (an explicit request).

    Raises:
        InputError: the key is in neither table, or a bad model (exit 2).
    """
    from funnelguard.findings import RunResult
    from model.evaluation.explain import explain_rows, load_impression
    from model.evaluation.scorers import resolve_scorer

    rows = load_impression(project, engine, str(key))
    scorer = resolve_scorer(model, project, engine=engine, model_version=rows.model_version)
    explanation = explain_rows(
        scorer, rows.served, rows.offline, features=rows.features, key=str(key), ds=rows.ds,
        duplicates=rows.duplicates, score_columns=rows.score_columns,
        classification=rows.classification, key_column=rows.key, partition_column=rows.partition)
    if show_restricted:
        personal = ", ".join(explanation.personal) or "none"
        print(f"explain: --show-restricted: printing the raw values of personal fields "
              f"({personal}) of {rows.key} {key}; they are not written to --json or the store",
              file=sys.stderr)
    if show_restricted or not quiet:
        print(explanation.table(show_restricted=show_restricted))
        print()
    ds = explanation.ds.isoformat() if explanation.ds else None
    details: dict[str, Any] = {"explanation": explanation.to_json()}
    if show_restricted:
        details["show_restricted"] = True
    return RunResult(
        command="explain", partition=ds, findings=explanation.findings(serves=scorer.serves),
        dataset=_model_name(scorer), artifacts={"model": scorer.name}, details=details)
