"""``funnelguard evaluate``, ``funnelguard replay`` and ``funnelguard explain``.

- ``evaluate --model DIR --as-of D [--champion DIR]``: per-stage metrics with bootstrap
  intervals on the matured holdout, overall and by segment, the oracle beside the model where
  the project has one, findings against floors and the champion; writes the model's
  permutation feature importance into its directory (``--no-importance`` to skip).
- ``replay --date D [--model DIR|served]``: serving-score replay of one partition.
- ``explain KEY --model DIR|served [--show-restricted]``: one prediction, reconstructed;
  personal data redacted unless ``--show-restricted`` (printed only, and logged).
- ``estimate --as-of A [--days N] [--model DIR|served]``: expected performance of the served
  scores of the last N days before their labels arrive, with intervals, decided against the
  trailing days and the replayed offline-feature scores.

Every command takes ``--project`` (the contracts name tables, columns, stages and segments) and
``--warehouse`` (default: the project's). Handlers are thin adapters over
:mod:`model.evaluation.commands`; they return a result the edge writes (``--json``) and stores
(``--store``); nothing heavy is imported at module level (the ``funnelguard --help`` path).
"""

from __future__ import annotations

import argparse

from funnelguard.cli import add_common_flags

__all__ = ["register"]


def _model_flag(parser: argparse.ArgumentParser, *, required: bool, default: str | None = None
                ) -> None:
    parser.add_argument(
        "--model", required=required, default=default, metavar="DIR",
        help="model directory (funnelguard train --out), or 'served' for the model whose "
             "scores the features contract logs"
             + (f"; default {default}" if default else ""))


def _thresholds_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--thresholds", default=None, metavar="PATH",
                        help="YAML/JSON overriding floors and tolerances (docs/evaluation.md)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``evaluate``, ``replay``, ``explain`` and ``estimate``."""
    ev = subparsers.add_parser(
        "evaluate", help="per-task metrics with bootstrap CIs on the matured holdout",
        description="Per-stage metrics with bootstrap intervals on the matured holdout, overall "
                    "and by segment, against floors and an optional champion.")
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
                    "model's score on each, and each differing feature's contribution "
                    "(personal data redacted).")
    ex.add_argument("key", metavar="KEY",
                    help="the impression's key (the features contract's primary key)")
    _model_flag(ex, required=True)
    ex.add_argument("--show-restricted", action="store_true",
                    help="print the raw values of personal (pii/restricted) fields in the table; "
                         "logged on stderr and as show_restricted in the result, never written "
                         "to --json or the store")
    add_common_flags(ex, date=None, store=False)
    ex.set_defaults(handler=_explain, command_name="explain")

    es = subparsers.add_parser(
        "estimate", help="estimated performance of the served scores before the labels arrive",
        description="Replay the model on the offline features of each of the last N days, "
                    "calibrate it on matured rows, and estimate the expected AUC, log loss and "
                    "calibration of the served scores with intervals; a drop beyond both the "
                    "trailing days and the replayed scores fails (docs/evaluation.md).")
    add_common_flags(es, date="--as-of")
    _model_flag(es, required=False, default="served")
    es.add_argument("--days", type=int, default=7, metavar="N",
                    help="days estimated and decided, the N before --as-of (default 7)")
    es.add_argument("--norm-days", type=int, default=7, metavar="N",
                    help="estimated days before each day that form its trailing norm (default 7)")
    es.add_argument("--draws", type=int, default=200, metavar="N",
                    help="label and calibration draws for the intervals (default 200)")
    es.add_argument("--min-drop", type=float, default=0.01, metavar="AUC",
                    help="the smallest drop of expected AUC that counts (default 0.01)")
    es.add_argument("--seed", type=int, default=20261025, help="seed of the draws")
    es.set_defaults(handler=_estimate, command_name="estimate")


def _evaluate(args: argparse.Namespace):
    from funnelguard.cli import connect_warehouse, project_of
    from model.evaluation.commands import run_evaluate

    project = project_of(args)
    engine = connect_warehouse(args, project)
    try:
        return run_evaluate(project, engine, args.as_of, model=args.model,
                            champion=args.champion, thresholds=args.thresholds,
                            bootstrap=args.bootstrap, seed=args.seed,
                            segments=not args.no_segments, importance=not args.no_importance)
    finally:
        engine.dispose()


def _replay(args: argparse.Namespace):
    from funnelguard.cli import connect_warehouse, project_of
    from model.evaluation.commands import run_replay

    project = project_of(args)
    engine = connect_warehouse(args, project)
    try:
        return run_replay(project, engine, args.date, model=args.model, k=args.k,
                          thresholds=args.thresholds)
    finally:
        engine.dispose()


def _explain(args: argparse.Namespace):
    from funnelguard.cli import connect_warehouse, project_of
    from model.evaluation.commands import run_explain

    project = project_of(args)
    engine = connect_warehouse(args, project)
    try:
        return run_explain(project, engine, args.key, model=args.model, quiet=args.quiet,
                           show_restricted=args.show_restricted)
    finally:
        engine.dispose()


def _estimate(args: argparse.Namespace):
    from funnelguard.cli import connect_warehouse, project_of, store_url_of
    from model.evaluation.estimate_commands import run_estimate

    project = project_of(args)
    engine = connect_warehouse(args, project)
    try:
        return run_estimate(project, engine, args.as_of, days=args.days, model=args.model,
                            norm_days=args.norm_days, draws=args.draws,
                            min_drop=args.min_drop, seed=args.seed,
                            store_url=store_url_of(args, project))
    finally:
        engine.dispose()
