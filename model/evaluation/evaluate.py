"""Per-task metrics on the matured holdout, overall and by segment, and their findings.

:func:`evaluate_predictions` is pure: it takes the holdout frame (``label_{task}``,
``mask_{task}``, optional ``weight_{task}``, the segment columns) and score vectors, and returns
an :class:`Evaluation` — the slices with bootstrap intervals, and the findings. Only rows whose
label is known (``mask_{task}``) count for a task. The model, the oracle and the champion are
scored on the same bootstrap replicates, so the champion comparison has a paired interval.

Segments: ``column=value`` for each of the project's segment columns (the features contract's
``segments``, else the impressions contract's), and ``user=new|returning`` where the impressions
contract names a person (see :mod:`model.evaluation.holdout` and docs/evaluation.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from funnelguard.findings import Finding, Metric
from model.evaluation.bootstrap import Estimate, PairedBootstrap
from model.evaluation.holdout import EvaluationHoldout, load_holdout, training_overlap
from model.evaluation.metrics import METRICS
from model.evaluation.scorers import ResolvedScorer
from model.evaluation.thresholds import EvaluationThresholds

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from funnelguard.project import Project

__all__ = ["SliceEvaluation", "Evaluation", "evaluate_predictions",
           "evaluate_model"]

@dataclass(frozen=True)
class SliceEvaluation:
    """One task on one slice of the holdout.

    Attributes:
        task: the model task.
        segment: ``None`` for the whole holdout, else ``column=value`` (``channel=app``).
        rows, positives: labelled rows and positives in the slice.
        model: metric -> estimate for the evaluated model.
        oracle: metric -> estimate for the true probabilities (``None`` without an oracle
            table).
        champion: metric -> estimate for the champion (``None`` without ``--champion``).
        delta: metric -> paired estimate of model minus champion.
        oracle_gap: metric -> paired estimate of oracle minus model.
        constant_scores: every model score in the slice is the same.
    """

    task: str
    segment: str | None
    rows: int
    positives: int
    model: Mapping[str, Estimate]
    oracle: Mapping[str, Estimate] | None = None
    champion: Mapping[str, Estimate] | None = None
    delta: Mapping[str, Estimate] | None = None
    oracle_gap: Mapping[str, Estimate] | None = None
    constant_scores: bool = False

    def to_json(self) -> dict[str, Any]:
        def block(d: Mapping[str, Estimate] | None) -> dict[str, Any] | None:
            return None if d is None else {m: e.to_json() for m, e in d.items()}

        return {"task": self.task, "segment": self.segment, "rows": self.rows,
                "positives": self.positives, "constant_scores": self.constant_scores,
                "model": block(self.model), "oracle": block(self.oracle),
                "champion": block(self.champion), "model_minus_champion": block(self.delta),
                "oracle_minus_model": block(self.oracle_gap)}


@dataclass(frozen=True)
class Evaluation:
    """Every slice, and the findings they produce."""

    slices: tuple[SliceEvaluation, ...]
    findings: tuple[Finding, ...]

    def overall(self, task: str) -> SliceEvaluation:
        return next(s for s in self.slices if s.task == task and s.segment is None)

    def metrics(self) -> tuple[Metric, ...]:
        """Numbers for the results store: each estimate and its interval bounds."""
        out: list[Metric] = []
        for s in self.slices:
            for prefix, block in (("", s.model), ("oracle_", s.oracle), ("champion_", s.champion)):
                for name, est in (block or {}).items():
                    for suffix, v in (("", est.value), ("_low", est.low), ("_high", est.high)):
                        out.append(Metric(f"{prefix}{name}{suffix}", v, task=s.task,
                                          segment=s.segment, environment="offline"))
        return tuple(out)

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.slices]


def _slice(task: str, segment: str | None, y: np.ndarray, w: np.ndarray,
           scores: Mapping[str, np.ndarray], bootstrap: PairedBootstrap) -> SliceEvaluation:
    pairs = tuple(pair for pair in (("model", "champion"), ("oracle", "model"))
                  if pair[0] in scores and pair[1] in scores)
    result = bootstrap.run(y, scores, w, METRICS, pairs)
    p = scores["model"]
    return SliceEvaluation(
        task=task, segment=segment, rows=len(y), positives=int(y.sum()),
        model=result["model"], oracle=result.get("oracle"), champion=result.get("champion"),
        delta=result.get("model-champion"), oracle_gap=result.get("oracle-model"),
        constant_scores=bool(len(p) == 0 or np.all(p == p[0])))


def _segments(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    out = []
    for column in columns:
        if column not in frame.columns:
            continue
        values = frame[column].astype(str).to_numpy()
        for value in sorted(set(values)):
            out.append((f"{column}={value}", values == value))
    return out


def evaluate_predictions(
    frame: pd.DataFrame,
    predictions: Mapping[str, np.ndarray],
    *,
    oracle: Mapping[str, np.ndarray] | None = None,
    champion: Mapping[str, np.ndarray] | None = None,
    thresholds: EvaluationThresholds | None = None,
    bootstrap: PairedBootstrap | None = None,
    tasks: Sequence[str] | None = None,
    segments: Sequence[str] | bool = (),
) -> Evaluation:
    """Metrics with bootstrap intervals per task, overall and per segment, and findings.

    Args:
        frame: holdout rows with ``label_{task}``, ``mask_{task}``, optionally
            ``weight_{task}`` (e.g. ``1 / rate`` for downsampled negatives) and the segment
            columns.
        predictions: task -> the model's probabilities, one per row of ``frame``.
        oracle: task -> true probabilities (the project's oracle table), same rows.
        champion: task -> the champion model's probabilities, same rows.
        thresholds: floors and tolerances (defaults when ``None``).
        bootstrap: replicate count and seed (defaults when ``None``).
        tasks: the stages to evaluate, in funnel order (default: those of ``predictions``).
        segments: columns of ``frame`` to slice by (each value a slice); empty or False:
            overall only.
    """
    if isinstance(segments, bool):
        if segments:
            raise TypeError("segments: expected the segment columns to slice by, found True")
        segments = ()
    tasks = tuple(tasks or predictions)
    thresholds = (thresholds or EvaluationThresholds()).for_tasks(tasks)
    bootstrap = bootstrap or PairedBootstrap()
    seg_masks = _segments(frame, segments)
    slices: list[SliceEvaluation] = []
    extra: list[Finding] = []
    from funnelguard.progress import progress

    bar = progress(len(tasks) * (1 + len(seg_masks)), "evaluate", unit="slice")
    for task in tasks:
        known = frame[f"mask_{task}"].to_numpy(dtype=bool)
        y_all = frame[f"label_{task}"].to_numpy(dtype=np.float64)
        w_col = f"weight_{task}"
        w_all = frame[w_col].to_numpy(dtype=np.float64) if w_col in frame.columns else None
        vectors = {"model": predictions[task]}
        if oracle is not None:
            vectors["oracle"] = oracle[task]
        if champion is not None:
            vectors["champion"] = champion[task]
        scored = np.all([np.isfinite(np.asarray(v, dtype=np.float64)) for v in vectors.values()],
                        axis=0)
        unscored = int((known & ~scored).sum())
        if unscored:
            extra.append(Finding(
                "eval_unscored", passed=False, severity="warning", task=task,
                environment="offline", count=unscored, value=unscored / max(int(known.sum()), 1),
                message=f"{task}: {unscored} of {int(known.sum())} labelled holdout rows have a "
                        f"non-finite score (non-finite features); left out of every metric"))
        for segment, rows in [(None, np.ones(len(frame), bool)), *seg_masks]:
            take = known & rows & scored
            slices.append(_slice(
                task, segment, y_all[take], np.ones(take.sum()) if w_all is None else w_all[take],
                {k: np.asarray(v, dtype=np.float64)[take] for k, v in vectors.items()},
                bootstrap))
            bar.update(1)
    bar.close()
    from model.evaluation.verdicts import evaluation_findings

    return Evaluation(tuple(slices), (*extra, *evaluation_findings(slices, thresholds)))


def evaluate_model(
    project: Project,
    engine: Engine,
    scorer: ResolvedScorer,
    as_of: dt.date,
    *,
    champion: ResolvedScorer | None = None,
    thresholds: EvaluationThresholds | None = None,
    bootstrap: PairedBootstrap | None = None,
    segments: bool = True,
) -> tuple[Evaluation, EvaluationHoldout]:
    """Score the matured holdout as of ``as_of`` with the model (and champion) and evaluate.

    The stages evaluated are the project's the model scores (and the champion, when given),
    in funnel order. Adds an ``eval_holdout_leak`` finding (error) when a holdout day is one the
    model trained on, which would make every number optimistic.

    Raises:
        EvaluationInputError: the model and the champion have no stage in common.
    """
    holdout = load_holdout(project, engine, as_of)
    frame = holdout.frame
    tasks = _common_tasks(holdout.tasks, scorer, champion)
    predictions = scorer.predict(frame, tasks)
    champion_scores = champion.predict(frame, tasks) if champion is not None else None
    oracle = ({t: holdout.oracle[t] for t in tasks}
              if holdout.oracle is not None else None)
    result = evaluate_predictions(frame, predictions, oracle=oracle,
                                  champion=champion_scores, thresholds=thresholds,
                                  bootstrap=bootstrap, tasks=tasks,
                                  segments=holdout.segments if segments else ())
    leaked = training_overlap(scorer.model_dir, holdout.days)
    days = ", ".join(d.isoformat() for d in holdout.days)
    leak = Finding(
        "eval_holdout_leak", passed=not leaked, severity="error", environment="offline",
        count=len(leaked), value=[d.isoformat() for d in leaked] or None,
        message=(f"holdout days {days} are after the model's training window" if not leaked else
                 f"{len(leaked)} holdout day(s) ({', '.join(d.isoformat() for d in leaked)}) are "
                 f"inside the model's training window: the evaluation would be optimistic"))
    return Evaluation(result.slices, (leak, *result.findings)), holdout


def _common_tasks(stages: Sequence[str], scorer: ResolvedScorer,
                  champion: ResolvedScorer | None) -> tuple[str, ...]:
    from model.evaluation.errors import EvaluationInputError

    tasks = tuple(t for t in stages if not scorer.tasks or t in scorer.tasks)
    if champion is not None:
        tasks = tuple(t for t in tasks if not champion.tasks or t in champion.tasks)
    if not tasks:
        raise EvaluationInputError(
            f"evaluate: model {scorer.name} scores {list(scorer.tasks)}"
            + (f", champion {champion.name} scores {list(champion.tasks)}" if champion else "")
            + f"; the holdout is labelled for {list(stages)}: no stage in common")
    return tasks
