"""The guard's decisions on what a probe measures: per-task gradients and id-table rows.

Every ``guard.probe_every`` steps the loop probes (``model.step_measurements``): each task's
unweighted gradient norm on the last shared layer and the pairwise cosines, and the id
tables' row gradients summed since the last probe. These pure functions turn one probe into
an optional :class:`model.guard.Anomaly`, keeping their windows and streaks in the
:class:`model.guard.GuardState` (so snapshots, checkpoints and rollbacks carry them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from model.config import GuardConfig
from model.guard import Anomaly, GuardState, RobustWindow

__all__ = ["check_task_gradients", "check_embedding_rows"]


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def check_task_gradients(step: int, norms: Mapping[str, float],
                         cosines: Mapping[tuple[str, str], float], state: GuardState,
                         cfg: GuardConfig,
                         weights: Mapping[str, float] | None = None) -> Anomaly | None:
    """Per-task gradient norms on the last shared layer: domination and conflict.

    ``norms`` are unweighted (each task's own loss); a task's share is that of its weighted
    gradient, ``(weight x norm)^2`` over the sum, which is what the shared layer follows. A
    rare task's norm jumps in a batch that draws one of its positives, so domination is the
    median share over the last ``domination_window`` probes reaching ``domination_share``
    (a task swamping the others on its own), or reaching ``weighted_domination_share`` while
    the weights squeeze the other tasks' share at least ``domination_lift`` times below their
    unweighted share (the weighting, not the data, makes it dominate: a frequent task already
    holds ~96 % of the unweighted gradient on the simulated warehouse). A conflict needs
    ``probe_patience`` probes in a row. Updates ``state``.
    """
    weights = weights or {}
    finite = {t: abs(weights.get(t, 1.0)) * v for t, v in norms.items() if math.isfinite(v)}
    total = sum(v * v for v in finite.values())
    shares = {t: v * v / total for t, v in finite.items()} if total > 0 else {}
    raw_total = sum(norms[t] ** 2 for t in finite)
    evidence = {"per_task_grad_norm": dict(norms), "share": shares,
                "unweighted_share": {t: norms[t] ** 2 / raw_total for t in finite}
                if raw_total > 0 else {}, "weights": dict(weights),
                "cosine": {f"{a}|{b}": c for (a, b), c in cosines.items()}}
    plain = evidence["unweighted_share"]
    for t, v in shares.items():
        state.shares.setdefault(t, RobustWindow(cfg.domination_window)).push(v)
        lift = (1.0 - plain.get(t, v)) / max(1.0 - v, 1e-12)  # how far the weights squeeze the rest
        state.lifts.setdefault(t, RobustWindow(cfg.domination_window)).push(lift)
    typical = {t: w.median() for t, w in state.shares.items()
               if t in shares and len(w) >= cfg.domination_window}
    lifted = {t: state.lifts[t].median() for t in typical if t in state.lifts}
    top = max(typical, key=typical.get) if typical else None
    dominates = top is not None and len(norms) > 1 and (
        typical[top] >= cfg.domination_share
        or (typical[top] >= cfg.weighted_domination_share
            and lifted.get(top, 1.0) >= cfg.domination_lift))
    if dominates:
        state.dominance_streak += 1
        evidence["median_share"], evidence["median_lift"] = typical, lifted
    else:
        state.dominance_streak = 0
    worst = min(cosines, key=cosines.get) if cosines else None
    if worst is not None and cosines[worst] <= cfg.conflict_cosine:
        state.conflict_streak += 1
    else:
        state.conflict_streak = 0
    if state.dominance_streak and top is not None:
        by_weight = typical[top] < cfg.domination_share
        limit = cfg.weighted_domination_share if by_weight else cfg.domination_share
        why = (f"; its loss weight {_fmt(weights.get(top, 1.0))} squeezes the other tasks' "
               f"share {_fmt(lifted[top])}x (limit {_fmt(cfg.domination_lift)}x)"
               if by_weight else f"; weight {_fmt(weights.get(top, 1.0))}")
        return Anomaly("task_domination", step,
                       f"step {step}: task {top} holds a median {typical[top]:.1%} of the "
                       f"squared weighted gradient on the last shared layer over the last "
                       f"{cfg.domination_window} probes (limit {limit:.1%}{why}; unweighted "
                       f"share now {plain.get(top, float('nan')):.1%})",
                       (top,), typical[top], limit, evidence=evidence)
    if state.conflict_streak >= cfg.probe_patience and worst is not None:
        return Anomaly("gradient_conflict", step,
                       f"step {step}: gradients of {worst[0]} and {worst[1]} on the last shared "
                       f"layer have cosine {cosines[worst]:.3f} for {state.conflict_streak} "
                       f"probes (limit {cfg.conflict_cosine})", worst, cosines[worst],
                       cfg.conflict_cosine, evidence=evidence)
    return None


def check_embedding_rows(step: int, stats: Mapping[str, Mapping[str, Any]], state: GuardState,
                         cfg: GuardConfig) -> Anomaly | None:
    """One hashed id bucket's row gradient exploding against the other rows of its table.

    ``stats`` is :meth:`model.step_measurements.RowGradientWindow.stats` of one probe (row
    gradients summed since the last probe). A table's ratio (largest row / median touched
    row) counts when it is above ``row_ratio`` and, once ``probe_patience`` earlier probes
    are in the table's window, above ``row_factor`` times their median;
    ``probe_patience`` counting probes in a row with the same bucket on top are an anomaly.
    The bucket, not the id, is named: the id column may be personal. Updates ``state``.
    """
    found = None
    for table, s in stats.items():
        window = state.row_ratio.setdefault(table, RobustWindow(cfg.grad_window))
        ratio, bucket = float(s["ratio"]), int(s["buckets"][0])
        past = window.median() if len(window) >= cfg.probe_patience else math.nan
        hot = ratio > cfg.row_ratio and not ratio <= cfg.row_factor * past  # nan: not warm
        prev, count = state.row_streak.get(table, (-1, 0))
        count = (count + 1 if prev == bucket else 1) if hot else 0
        state.row_streak[table] = (bucket, count)
        if not hot:
            window.push(ratio)  # an exploding row does not raise its own bar
        if count >= cfg.probe_patience and found is None:
            found = Anomaly(
                "embedding_row_explosion", step,
                f"step {step}: bucket {bucket} of id table {table} has a summed row gradient "
                f"{_fmt(ratio)}x the median touched row's for {count} probes in a row "
                f"(limits {_fmt(cfg.row_ratio)}x, and {_fmt(cfg.row_factor)}x the table's "
                f"usual {_fmt(past)}x)", value=ratio,
                threshold=cfg.row_ratio if not math.isfinite(past) else
                max(cfg.row_ratio, cfg.row_factor * past),
                evidence={"table": table, "bucket": bucket, "stats": dict(s),
                                        "usual_ratio": past})
    return found
