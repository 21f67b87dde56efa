"""Leakage audit: a feature that predicts a stage far better than it used to, or than online.

Target leakage (an offline feature computed from the outcome) shows no range or drift problem:
it only predicts too well. For each feature and stage we measure single-feature predictive
power on the training window's matured rows (``mask_{task}``): for a number the rank AUC
(Mann–Whitney, ties averaged) and its strength ``|AUC - 0.5|``; for a category the uncertainty
coefficient ``I(feature; label) / H(label)`` (mutual information normalised by the label's
entropy, 0 = independent, 1 = the category gives the label away). Two references:

(a) **the trailing norm**: the same statistic on each earlier day of the window; the last
    ``recent_days`` days (pooled) jump when their strength exceeds the earlier days' median by
    ``max(min_jump, k × 1.4826 × MAD)``;
(b) **online**: the same statistic on the same impressions with the values the serving side
    logged (joined on the key); offline stronger than online by ``min_online_gap`` is a leak
    the serving path cannot have (over the recent days and over the whole window).

Either is a failed ``leakage`` finding naming the feature and stage, with both AUCs (offline,
online) and the norm. Identifier columns (role ``id``) are not measured: their values are
arbitrary. Pure functions over frames; :mod:`model.audit` reads the data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from funnelguard.findings import Finding

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CHECK", "LeakagePolicy", "Predictive", "rank_auc", "uncertainty_coefficient",
           "predictive_power", "leakage_findings"]

CHECK = "leakage"


@dataclass(frozen=True)
class LeakagePolicy:
    """When single-feature predictive power is a leak.

    Attributes:
        recent_days: the last days of a stage's matured window compared with the earlier ones.
        min_norm_days: earlier days needed for the trailing norm (else only (b) applies).
        min_rows: matured rows a day needs to be measured.
        min_class: positives and negatives a day (or the compared rows) needs.
        k: robust spreads of the earlier days' strength a jump must exceed.
        min_jump: the smallest jump in strength that is a leak (AUC 0.5 -> 0.6 is 0.1).
        min_online_gap: the smallest offline-minus-online strength that is a leak.
    """

    recent_days: int = 3
    min_norm_days: int = 4
    min_rows: int = 100
    min_class: int = 10
    k: float = 4.0
    min_jump: float = 0.1
    min_online_gap: float = 0.1


@dataclass(frozen=True)
class Predictive:
    """One feature's predictive power for one stage on some rows.

    Attributes:
        statistic: ``auc`` (numbers) or ``uncertainty`` (categories).
        value: the AUC or the uncertainty coefficient.
        strength: ``|AUC - 0.5|``, or the uncertainty coefficient.
        rows: rows measured.
    """

    statistic: str
    value: float
    strength: float
    rows: int


def rank_auc(values: np.ndarray, labels: np.ndarray) -> float | None:
    """The AUC of ranking by ``values`` (ties averaged); None without both classes."""
    y = np.asarray(labels, dtype=bool)
    pos, n = int(y.sum()), len(y)
    if pos == 0 or pos == n:
        return None
    ranks = _average_ranks(np.asarray(values, dtype=np.float64))
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * (n - pos)))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their average rank (scipy's ``rankdata``, without its import)."""
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    edges = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1], [True])))
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.repeat((edges[:-1] + edges[1:] + 1) / 2, np.diff(edges))
    return ranks


def uncertainty_coefficient(categories: np.ndarray, labels: np.ndarray) -> float | None:
    """``I(category; label) / H(label)`` in [0, 1]; None without both classes."""
    import pandas as pd

    y = np.asarray(labels, dtype=bool)
    p = y.mean() if len(y) else 0.0
    if p in (0.0, 1.0):
        return None
    h_label = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    codes, _ = pd.factorize(pd.Series(categories, dtype=object), use_na_sentinel=False)
    joint = np.bincount(codes * 2 + y, minlength=2 * (codes.max() + 1)).reshape(-1, 2)
    joint = joint / len(y)
    marginal = joint.sum(axis=1, keepdims=True) * joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    info = float((joint[nz] * np.log(joint[nz] / marginal[nz])).sum())
    return min(max(info / h_label, 0.0), 1.0)


def predictive_power(values: np.ndarray, labels: np.ndarray, *, categorical: bool,
                     min_class: int = 1) -> Predictive | None:
    """Single-feature predictive power (None: too few rows of a class, or no finite value)."""
    y = np.asarray(labels, dtype=bool)
    if categorical:
        x, keep = np.asarray(values, dtype=object), np.ones(len(y), dtype=bool)
    else:
        x = np.asarray(values, dtype=np.float64)
        keep = np.isfinite(x)
    x, y = x[keep], y[keep]
    pos = int(y.sum())
    if pos < min_class or len(y) - pos < min_class:
        return None
    if categorical:
        u = uncertainty_coefficient(x, y)
        return None if u is None else Predictive("uncertainty", u, u, len(y))
    auc = rank_auc(x, y)
    return None if auc is None else Predictive("auc", auc, abs(auc - 0.5), len(y))


def _median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def _judge(feature: str, task: str, recent: Predictive, norm: list[float],
           online: Sequence[tuple[Predictive, Predictive]], policy: LeakagePolicy,
           days: tuple[str, str], dataset: str | None) -> Finding:
    """The finding of one feature and stage from its recent power, norm and online pairs."""
    reasons, threshold = [], {"statistic": recent.statistic, "recent_days": days[0] + ".." + days[1]}
    jump_limit = None
    if len(norm) >= policy.min_norm_days:
        center = _median(norm)
        spread = 1.4826 * _median([abs(v - center) for v in norm])
        jump_limit = center + max(policy.min_jump, policy.k * spread)
        threshold |= {"norm_strength": center, "jump_limit": jump_limit, "norm_days": len(norm)}
        if recent.strength > jump_limit:
            reasons.append(f"its strength {recent.strength:.3f} on the last days jumped above "
                           f"{jump_limit:.3f} (median of {len(norm)} earlier days {center:.3f})")
    offline_value = online_value = None
    for off, on in online:
        gap = off.strength - on.strength
        if online_value is None or gap > offline_value[0] - online_value[0]:
            offline_value, online_value = (off.strength, off.value), (on.strength, on.value)
        if gap >= policy.min_online_gap:
            reasons.append(f"offline {off.statistic} {off.value:.3f} vs online {on.value:.3f} on "
                           f"the same {on.rows} impressions (gap {gap:.3f} >= "
                           f"{policy.min_online_gap})")
            break
    if online_value is not None:
        threshold |= {"offline": offline_value[1], "online": online_value[1],
                      "min_online_gap": policy.min_online_gap}
    name = "AUC" if recent.statistic == "auc" else "uncertainty coefficient"
    both = (f"; online {online_value[1]:.3f} on the same impressions" if online_value
            else "; no online values to compare")
    if reasons:
        message = (f"{feature} predicts {task} too well (possible target leakage): "
                   + "; ".join(dict.fromkeys(reasons)))
    else:
        message = (f"{feature} -> {task}: {name} {recent.value:.3f} on the last days"
                   + (f", within its norm (limit {jump_limit:.3f})" if jump_limit else "") + both)
    return Finding(CHECK, not reasons, "error", feature=feature, task=task,
                   environment="offline", value=recent.value, threshold=threshold,
                   count=recent.rows, message=message, dataset=dataset)


def leakage_findings(frame: pd.DataFrame, *, features: Sequence[tuple[str, bool]],
                     tasks: Sequence[str], partition: str, key: str,
                     online: pd.DataFrame | None = None, policy: LeakagePolicy = LeakagePolicy(),
                     dataset: str | None = None) -> list[Finding]:
    """One ``leakage`` finding per measurable (feature, stage) of a training window.

    Args:
        frame: a training-set frame (``label_{task}``, ``mask_{task}``, the partition, the
            key and the features).
        features: (column, is categorical) of the features measured.
        tasks: the stages.
        partition: the day column; key: the impression key (joins ``online``).
        online: the serving side's values of the same features by key (None: only (a)).
        dataset: recorded on the findings.

    Returns:
        Findings (passing ones too); a stage with too few matured days gets one passing
        ``info`` finding saying so.
    """
    findings: list[Finding] = []
    served = None
    if online is not None and len(online):
        served = frame[[key]].merge(online.drop_duplicates(key), on=key, how="left",
                                    suffixes=("", "_online"))
    for task in tasks:
        rows = frame[f"mask_{task}"].to_numpy(dtype=bool)
        matured = frame.loc[rows]
        labels = matured[f"label_{task}"].to_numpy() > 0.5
        per_day = matured.groupby(partition, sort=True).indices
        days = [d for d, idx in per_day.items() if len(idx) >= policy.min_rows
                and policy.min_class <= labels[idx].sum() <= len(idx) - policy.min_class]
        if len(days) < 1:
            findings.append(Finding(CHECK, True, "info", task=task, environment="offline",
                                    count=len(matured), dataset=dataset,
                                    message=f"{task}: no day with {policy.min_rows}+ matured "
                                            f"rows and {policy.min_class}+ of each class; "
                                            "leakage not measured"))
            continue
        recent_days, earlier = days[-policy.recent_days:], days[:-policy.recent_days]
        recent_idx = np.concatenate([per_day[d] for d in recent_days])
        span = (str(recent_days[0]), str(recent_days[-1]))
        for name, categorical in features:
            values = matured[name].to_numpy()
            recent = predictive_power(values[recent_idx], labels[recent_idx],
                                      categorical=categorical, min_class=policy.min_class)
            if recent is None:
                continue
            norm = [p.strength for d in earlier
                    if (p := predictive_power(values[per_day[d]], labels[per_day[d]],
                                              categorical=categorical)) is not None]
            pairs = []
            if served is not None and name in served.columns:
                on_values = served[name].to_numpy()[rows]
                for idx in (recent_idx, np.arange(len(matured))):
                    both = (~_missing(on_values[idx], categorical)) & \
                        (~_missing(values[idx], categorical))
                    off = predictive_power(values[idx][both], labels[idx][both],
                                           categorical=categorical, min_class=policy.min_class)
                    on = predictive_power(on_values[idx][both], labels[idx][both],
                                          categorical=categorical, min_class=policy.min_class)
                    if off is not None and on is not None:
                        pairs.append((off, on))
            findings.append(_judge(name, task, recent, norm, pairs, policy, span, dataset))
    return findings


def _missing(values: np.ndarray, categorical: bool) -> np.ndarray:
    import pandas as pd

    if categorical:
        return pd.isna(pd.Series(values, dtype=object)).to_numpy()
    return ~np.isfinite(np.asarray(values, dtype=np.float64))
