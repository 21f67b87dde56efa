"""Findings of ``funnelguard evaluate`` and ``funnelguard replay``.

Evaluation: floors, calibration, oracle gap, champion regression.
Check names (docs/evaluation.md): ``eval_degenerate`` (a metric is undefined: no positives,
constant scores), ``eval_sample_size`` (too few positives for a verdict), ``eval_auc_floor``,
``eval_calibration``, ``eval_oracle_gap`` and ``eval_champion_auc`` / ``eval_champion_ne``.
Verdicts on the whole holdout are error-severity; per-segment verdicts are warnings (segments are
small and many, and a warning never fails the run).

Replay: ``score_replay_inputs`` (error: a number column of the served or offline features
holds text that is not a number; those cells are replayed as missing), ``score_replay_logged`` (error when the serving model does not reproduce its own logged
scores; info for a candidate, which is not expected to), ``score_replay_skew`` (error: online vs
offline scores differ beyond the tolerated relative mean absolute difference),
``score_replay_rank_moves`` (warning) and ``score_replay_contributor`` (one per feature that
explains at least ``contributor_share`` of a task's difference; warning when the skew check
failed, so the alert names the feature).
"""

from __future__ import annotations

from collections.abc import Iterable

from funnelguard.findings import Finding
from model.evaluation.bootstrap import Estimate
from model.evaluation.evaluate import SliceEvaluation
from model.evaluation.replay import ReplayFrames, ScoreReplay, TaskReplay
from model.evaluation.thresholds import EvaluationThresholds, ReplayThresholds

__all__ = ["evaluation_findings", "replay_findings", "replay_input_findings"]


def _where(s: SliceEvaluation) -> str:
    return f"{s.task}" + (f" on {s.segment}" if s.segment else " on the holdout")


def _degenerate(s: SliceEvaluation, severity: str) -> Finding | None:
    if s.rows == 0:
        reason = "no labelled rows"
    elif s.positives == 0:
        reason = (f"0 positives in {s.rows} labelled rows: AUC, PR-AUC, normalized entropy and "
                  f"calibration ratio are undefined")
    elif s.positives == s.rows:
        reason = f"all {s.rows} labelled rows are positive: AUC and PR-AUC are undefined"
    elif s.constant_scores:
        reason = (f"all {s.rows} scores are the same: the model does not rank, AUC and PR-AUC "
                  f"are undefined")
    else:
        return None
    return Finding("eval_degenerate", passed=False, severity=severity, task=s.task,
                   segment=s.segment, environment="offline", count=s.rows, value=s.positives,
                   message=f"{_where(s)}: {reason}")


def _ci(e: Estimate) -> str:
    return "" if e.low is None else f" (95 % CI {e.low:.4f}–{e.high:.4f})"


def _slice_findings(s: SliceEvaluation, t: EvaluationThresholds) -> Iterable[Finding]:
    severity = "error" if s.segment is None else "warning"
    common = dict(task=s.task, segment=s.segment, environment="offline", count=s.rows)
    bad = _degenerate(s, severity)
    if bad is not None:
        yield bad
        return
    if s.positives < t.min_positives:
        yield Finding("eval_sample_size", passed=True, severity="info", value=s.positives,
                      threshold=t.min_positives, **common,
                      message=f"{_where(s)}: {s.positives} positives (< {t.min_positives}); "
                              f"metrics reported without a verdict")
        return
    auc = s.model["auc"]
    floor = t.auc_floor.get(s.task)
    oracle_note = ""
    if s.oracle is not None and s.oracle["auc"].value is not None:
        oracle_note = f"; oracle AUC {s.oracle['auc'].value:.4f}"
    if floor is not None:
        yield Finding("eval_auc_floor", passed=auc.value >= floor, severity=severity,
                      value=auc.value, threshold=floor, **common,
                      message=f"{_where(s)}: AUC {auc.value:.4f}{_ci(auc)} against floor "
                              f"{floor:.3f}{oracle_note}; {s.positives} positives")
    ratio = s.model["calibration_ratio"]
    low, high = t.calibration_band
    outside = not (low <= ratio.value <= high)
    interval_outside = ratio.low is None or ratio.high < low or ratio.low > high
    yield Finding("eval_calibration", passed=not (outside and interval_outside),
                  severity=severity, value=ratio.value, threshold=[low, high], **common,
                  message=f"{_where(s)}: calibration ratio Σp/Σy {ratio.value:.3f}{_ci(ratio)} "
                          f"against [{low}, {high}]; ECE {s.model['ece'].value:.5f}")


def _overall_findings(s: SliceEvaluation, t: EvaluationThresholds) -> Iterable[Finding]:
    common = dict(task=s.task, environment="offline", count=s.rows)
    auc = s.model["auc"]
    if auc.value is None:
        return
    if s.oracle_gap is not None and s.oracle_gap["auc"].value is not None:
        gap_est = s.oracle_gap["auc"]
        gap = gap_est.value
        yield Finding("eval_oracle_gap", passed=gap <= t.oracle_gap, severity="warning",
                      value=gap, threshold=t.oracle_gap, **common,
                      message=f"{s.task}: model AUC {auc.value:.4f}{_ci(auc)}, oracle AUC "
                              f"{s.oracle['auc'].value:.4f}{_ci(s.oracle['auc'])}: gap "
                              f"{gap:+.4f}{_ci(gap_est)} (tolerated {t.oracle_gap})")
    if s.delta is None:
        return
    d_auc, d_ne = s.delta["auc"], s.delta["normalized_entropy"]
    tol_auc = t.champion_auc_tolerance.get(s.task, 0.0)
    if d_auc.value is not None:
        yield Finding("eval_champion_auc", passed=d_auc.value >= -tol_auc, severity="error",
                      value=d_auc.value, threshold=-tol_auc, **common,
                      message=f"{s.task}: AUC {auc.value:.4f} against champion "
                              f"{s.champion['auc'].value:.4f}: change {d_auc.value:+.4f}"
                              f"{_ci(d_auc)}, tolerated drop {tol_auc}")
    tol_ne = t.champion_ne_tolerance.get(s.task, 0.0)
    if d_ne.value is not None:
        yield Finding("eval_champion_ne", passed=d_ne.value <= tol_ne, severity="error",
                      value=d_ne.value, threshold=tol_ne, **common,
                      message=f"{s.task}: normalized entropy {s.model['normalized_entropy'].value:.4f}"
                              f" against champion {s.champion['normalized_entropy'].value:.4f}: "
                              f"change {d_ne.value:+.4f}{_ci(d_ne)}, tolerated rise {tol_ne}")


def evaluation_findings(slices: Iterable[SliceEvaluation], thresholds: EvaluationThresholds
                        ) -> tuple[Finding, ...]:
    """Every finding of an evaluation, passing ones included."""
    out: list[Finding] = []
    for s in slices:
        if s.segment is not None and s.rows == 0:
            continue
        out.extend(_slice_findings(s, thresholds))
        if s.segment is None:
            out.extend(_overall_findings(s, thresholds))
    return tuple(out)


def _logged_finding(r: TaskReplay, replay: ScoreReplay) -> Finding | None:
    if r.logged_max is None:
        return None
    common = dict(task=r.task, environment="online", count=r.logged_off)
    if replay.serves:
        ok = r.logged_off == 0
        return Finding(
            "score_replay_logged", passed=ok, severity="error", value=r.logged_max,
            threshold=replay.logged_tolerance, examples=r.worst_logged or None, **common,
            message=(f"{r.task}: {replay.model} reproduces its logged scores on all {r.rows} "
                     f"impressions (largest difference {r.logged_max:.2e})" if ok else
                     f"{r.task}: {replay.model} replayed on its own logged features differs from "
                     f"the logged score on {r.logged_off} of {r.rows} impressions (mean "
                     f"{r.logged_mad:.2e}, largest {r.logged_max:.2e} > {replay.logged_tolerance:g})"
                     f": the serving path and the training path do not compute the same model"))
    return Finding("score_replay_logged", passed=True, severity="info", value=r.logged_mad,
                   **common,
                   message=f"{r.task}: candidate {replay.model} on served features vs the logged "
                           f"scores: mean |difference| {r.logged_mad:.5f} (a different model; "
                           f"for reference)")


def replay_input_findings(frames: ReplayFrames) -> tuple[Finding, ...]:
    """``score_replay_inputs``: one failing finding per number column with text in it, else
    one passing finding."""
    rows = len(frames.served)
    out = [Finding("score_replay_inputs", passed=False, severity="error", feature=column,
                   environment=env, value=n, threshold=0, count=n,
                   message=f"{n} of {rows} replayed rows of {frames.tables.get(env, env)} have "
                           f"text that is not a number in {column}; replayed as missing")
           for env, columns in frames.unparseable.items() for column, n in columns.items()]
    if out:
        return tuple(out)
    return (Finding("score_replay_inputs", passed=True, severity="error", value=0, threshold=0,
                    count=rows, message=f"every number column of the {rows} replayed rows "
                                        "holds numbers"),)


def replay_findings(replay: ScoreReplay, t: ReplayThresholds) -> tuple[Finding, ...]:
    """Every finding of a serving-score replay, passing ones included."""
    out: list[Finding] = []
    for r in replay.tasks:
        logged = _logged_finding(r, replay)
        if logged is not None:
            out.append(logged)
        common = dict(task=r.task, environment="online_vs_offline")
        skew_ok = not (r.skew_relative > t.skew_relative_mad)
        main = (f"; main contributor {r.contributions[0][0]} ({r.contributions[0][2]:.0%} of it)"
                if r.contributions and r.contributions[0][1] > 0 else "")
        out.append(Finding(
            "score_replay_skew", passed=skew_ok, severity="error", value=r.skew_relative,
            threshold=t.skew_relative_mad, count=r.rows, **common,
            message=f"{r.task}: online vs offline scores differ by {r.skew_mad:.5f} on average, "
                    f"{r.skew_relative:.1%} of the mean offline score (tolerated "
                    f"{t.skew_relative_mad:.0%}){main}"))
        if r.rank_moved_share is None:
            out.append(Finding(
                "score_replay_rank_moves", passed=True, severity="info", count=r.rows, **common,
                message=f"{r.task}: rank moves not measured: the impressions contract names no "
                        f"request (an `id` property that is not a model feature)"))
            out.extend(_contributor_findings(r, t, skew_ok))
            continue
        out.append(Finding(
            "score_replay_rank_moves", passed=r.rank_moved_share <= t.rank_moved_share,
            severity="warning", value=r.rank_moved_share, threshold=t.rank_moved_share,
            count=int(round(r.rank_moved_share * r.rows)), **common,
            message=f"{r.task}: {r.rank_moved_share:.1%} of {r.rows} impressions move by more "
                    f"than {replay.rank_k} position(s) within their request (tolerated "
                    f"{t.rank_moved_share:.0%})"))
        out.extend(_contributor_findings(r, t, skew_ok))
    return tuple(out)


def _contributor_findings(r: TaskReplay, t: ReplayThresholds, skew_ok: bool) -> list[Finding]:
    out = []
    for rank, (feature, reduction, share, rows) in enumerate(r.contributions, start=1):
        if share < t.contributor_share:
            continue
        out.append(Finding(
            "score_replay_contributor", passed=skew_ok,
            severity="info" if skew_ok else "warning", feature=feature, value=share,
            threshold=t.contributor_share, count=rows, task=r.task,
            environment="online_vs_offline",
            message=f"{r.task}: {feature} (#{rank}) differs on {rows} of {r.rows} impressions; "
                    f"taking its offline value removes {reduction:.5f} of the {r.skew_mad:.5f} "
                    f"mean score difference ({share:.0%})"))
    return out
