"""``funnelguard evaluate``, ``funnelguard replay`` and ``funnelguard explain``.

- ``evaluate --model DIR --warehouse URL --as-of D [--champion DIR]``: per-task metrics with
  bootstrap intervals on the matured holdout, overall and by segment, the oracle beside the
  model, findings against floors and the champion; writes the model's permutation feature
  importance into its directory (``--no-importance`` to skip).
- ``replay --warehouse URL --date D [--model DIR|served]``: serving-score replay of one partition.
- ``explain IMPRESSION_ID --model DIR|served --warehouse URL``: one prediction, reconstructed.

Handlers return a result the edge writes (``--json``) and stores (``--store``); nothing heavy is
imported at module level (the ``funnelguard --help`` path).
"""

from __future__ import annotations

import argparse

from funnelguard.cli import add_common_flags

__all__ = ["register"]


def _model_flag(parser: argparse.ArgumentParser, *, required: bool, default: str | None = None
                ) -> None:
    parser.add_argument(
        "--model", required=required, default=default, metavar="DIR",
        help="model directory (funnelguard train --out), or 'served' for the model that served "
             "the traffic (the stand-in production model)"
             + (f"; default {default}" if default else ""))


def _thresholds_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--thresholds", default=None, metavar="PATH",
                        help="YAML/JSON overriding floors and tolerances (docs/evaluation.md)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate``, ``replay`` and ``explain``."""
    ev = subparsers.add_parser(
        "evaluate", help="per-task metrics with bootstrap CIs on the matured holdout",
        description=__doc__.splitlines()[2].strip("- "))
    _model_flag(ev, required=True)
    add_common_flags(ev, date="--as-of")
    ev.add_argument("--champion", default=None, metavar="DIR",
                    help="compare with this model: a per-task regression beyond tolerance fails")
    _thresholds_flag(ev)
    ev.add_argument("--bootstrap", type=int, default=200, metavar="N",
                    help="bootstrap replicates (default 200; 0 = no intervals)")
    ev.add_argument("--seed", type=int, default=20261025, help="bootstrap seed")
    ev.add_argument("--no-segments", action="store_true", help="overall metrics only")
    ev.add_argument("--no-importance", action="store_true",
                    help="do not write feature_importance.json into the model directory")
    ev.set_defaults(handler=_evaluate, command_name="evaluate")

    rp = subparsers.add_parser(
        "replay", help="serving-score replay: logged vs replayed vs offline-feature scores",
        description="Score one partition's served and offline features with one model and "
                    "compare with the logged scores and with each other.")
    add_common_flags(rp, date="--date")
    _model_flag(rp, required=False, default="served")
    rp.add_argument("--k", type=int, default=None, metavar="N",
                    help="a rank move of more than N positions within a request counts (default 1)")
    _thresholds_flag(rp)
    rp.set_defaults(handler=_replay, command_name="replay")

    ex = subparsers.add_parser(
        "explain", help="one prediction reconstructed: served vs offline features and scores",
        description="Show one impression's served and offline features, the logged score, the "
                    "model's score on each, and each differing feature's contribution.")
    ex.add_argument("impression_id", metavar="IMPRESSION_ID")
    _model_flag(ex, required=True)
    add_common_flags(ex, date=None, store=False)
    ex.set_defaults(handler=_explain, command_name="explain")


def _model_name(resolved) -> str:
    version = getattr(resolved.scorer, "version", None)
    return str(version) if version and version != "unknown" else resolved.name


def _evaluate(args: argparse.Namespace):
    from funnelguard.errors import InputError
    from funnelguard.findings import RunResult
    from funnelguard.warehouse import connect, parse_date
    from model.evaluation.bootstrap import PairedBootstrap
    from model.evaluation.evaluate import evaluate_model
    from model.evaluation.importance import permutation_importance, write_feature_importance
    from model.evaluation.scorers import resolve_scorer
    from model.evaluation.thresholds import load_thresholds

    as_of = parse_date(args.as_of, flag="--as-of")
    if args.bootstrap < 0:
        raise InputError(f"--bootstrap: expected a count >= 0, found {args.bootstrap}")
    thresholds, _ = load_thresholds(args.thresholds)
    scorer = resolve_scorer(args.model)
    champion = resolve_scorer(args.champion, flag="--champion") if args.champion else None
    engine = connect(args.warehouse)
    try:
        evaluation, holdout = evaluate_model(
            engine, scorer, as_of, champion=champion, thresholds=thresholds,
            bootstrap=PairedBootstrap(args.bootstrap, args.seed), segments=not args.no_segments)
    finally:
        engine.dispose()
    artifacts = {"model": scorer.name}
    if champion is not None:
        artifacts["champion"] = champion.name
    if scorer.model_dir is not None and not args.no_importance:
        importance = permutation_importance(scorer, holdout.frame, as_of=as_of.isoformat())
        artifacts["feature_importance"] = str(write_feature_importance(scorer.model_dir,
                                                                       importance))
    return RunResult(
        command="evaluate", partition=as_of.isoformat(), findings=evaluation.findings,
        dataset=_model_name(scorer), environment="offline", metrics=evaluation.metrics(),
        artifacts=artifacts,
        details={"evaluation": {"holdout_days": [d.isoformat() for d in holdout.days],
                "rows": len(holdout.frame), "oracle": holdout.oracle is not None,
                "bootstrap": {"replicates": args.bootstrap, "seed": args.seed},
                "slices": evaluation.to_json()}})


def _replay(args: argparse.Namespace):
    import dataclasses

    from funnelguard.errors import InputError
    from funnelguard.findings import Metric, RunResult
    from funnelguard.warehouse import connect, parse_date
    from model.evaluation.replay import load_replay_frames, replay_scores
    from model.evaluation.scorers import resolve_scorer
    from model.evaluation.thresholds import load_thresholds
    from model.evaluation.verdicts import replay_findings

    ds = parse_date(args.date)
    _, thresholds = load_thresholds(args.thresholds)
    if args.k is not None:
        if args.k < 0:
            raise InputError(f"--k: expected a number of positions >= 0, found {args.k}")
        thresholds = dataclasses.replace(thresholds, rank_k=args.k)
    engine = connect(args.warehouse)
    try:
        frames = load_replay_frames(engine, ds)
    finally:
        engine.dispose()
    scorer = resolve_scorer(args.model, model_version=frames.model_version)
    replay = replay_scores(scorer, frames, rank_k=thresholds.rank_k,
                           logged_tolerance=thresholds.logged_tolerance)
    metrics = []
    for r in replay.tasks:
        for name in ("logged_mad", "logged_max", "skew_mad", "skew_relative", "rank_moved_share"):
            env = "online" if name.startswith("logged") else "online_vs_offline"
            metrics.append(Metric(f"score_{name}", getattr(r, name), task=r.task, environment=env))
        for feature, _, share, _ in r.contributions:
            metrics.append(Metric("score_skew_share", share, feature=feature, task=r.task,
                                  environment="online_vs_offline"))
    return RunResult(
        command="replay", partition=ds.isoformat(), findings=replay_findings(replay, thresholds),
        dataset=_model_name(scorer), environment="online_vs_offline", metrics=tuple(metrics),
        artifacts={"model": scorer.name},
        details={"replay": {**replay.to_json(), "unmatched": frames.unmatched}})


def _explain(args: argparse.Namespace):
    from funnelguard.findings import RunResult
    from funnelguard.warehouse import connect
    from model.evaluation.explain import explain_rows, load_impression
    from model.evaluation.scorers import resolve_scorer

    engine = connect(args.warehouse)
    try:
        served, offline, duplicates = load_impression(engine, args.impression_id)
    finally:
        engine.dispose()
    scorer = resolve_scorer(args.model, model_version=str(served["model_version"].iloc[0]))
    explanation = explain_rows(scorer, served, offline, impression_id=args.impression_id,
                               ds=served["ds"].iloc[0], duplicates=duplicates)
    if not args.quiet:
        print(explanation.table())
        print()
    ds = explanation.ds.isoformat() if explanation.ds else None
    return RunResult(
        command="explain", partition=ds, findings=explanation.findings(serves=scorer.serves),
        dataset=_model_name(scorer), artifacts={"model": scorer.name},
        details={"explanation": explanation.to_json()})
