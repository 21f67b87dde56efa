"""Multivariate drift: has the way the features go together changed?

Single-column tests see each feature's marginal distribution; a change in how features go
together (two correlated features decoupled, or swapped between rows) keeps every marginal and
passes them all. This monitor looks only at that joint structure. Each side's numeric features
are rank-transformed to normal scores *on their own side* (so both sides have identical
marginals by construction: what a single-column test sees is removed), and a domain classifier
— a logistic regression on the pairwise products of those scores, i.e. on the features'
pairwise dependence — is trained to tell bounded, balanced samples of the reference and the
current rows apart. Its out-of-fold ROC AUC (stratified ``k``-fold) says how separable they
are (0.5: not at all); the interval is Hanley & McNeil's, and the finding fails when its lower
end exceeds :data:`AUC_THRESHOLD`. Features are ranked by permutation importance (the
out-of-fold AUC lost when the feature is shuffled).

Why not a tree on the raw values: rows are clustered (a heavy user's impressions share their
user-level values, and those values move a little every day — a visit gap, a rolling rate), so
a flexible classifier tells a clean day from its window by *which entities* it holds (AUC 0.87
on clean simulated days). A linear model on products cannot memorise entities, and per-side
ranks cannot see marginal shifts, which the single-column tests already judge.

Nothing here reads a table or names a column: the caller gives the frames and the
:class:`~monitors.drift.DriftTarget` list from the contract (numeric targets are used).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from funnelguard.findings import Finding, Metric

if TYPE_CHECKING:
    import datetime as dt

    import numpy as np
    import pandas as pd
    from sqlalchemy.engine import Engine

    from funnelguard.project import Project
    from monitors.drift import DriftTarget

__all__ = [
    "AUC_THRESHOLD",
    "SAMPLE_ROWS",
    "FOLDS",
    "MultivariateDrift",
    "domain_classifier_drift",
    "multivariate_finding",
    "multivariate_metrics",
    "multivariate_checks",
]

AUC_THRESHOLD = 0.55  # the interval's lower end must exceed this for a finding
BASELINE_MARGIN = 0.05  # ... and the window's own day-vs-rest AUC by this much
SAMPLE_ROWS = 5000  # rows per side, at most (balanced: the smaller side's count)
FOLDS = 5
Z_95 = 1.96
REGULARISATION = 0.1  # inverse L2 strength of the logistic regression (scores are ~N(0, 1))


@dataclass(frozen=True)
class MultivariateDrift:
    """A domain classifier's verdict, current vs reference.

    Attributes:
        environment: ``offline`` / ``online`` (each vs its trailing window).
        auc: out-of-fold ROC AUC of reference (0) vs current (1).
        low, high: its 95 % interval (Hanley & McNeil).
        threshold: the AUC the interval's lower end is held to: :data:`AUC_THRESHOLD`, or the
            window's own baseline + :data:`BASELINE_MARGIN` when higher.
        baseline: the window's last day against its other days (same classifier), if measured.
        n_reference, n_current: rows each side used.
        importance: (feature, AUC lost when the feature is shuffled), largest first.
    """

    environment: str
    auc: float
    low: float
    high: float
    threshold: float
    n_reference: int
    n_current: int
    importance: tuple[tuple[str, float], ...]
    baseline: float | None = None

    @property
    def drifted(self) -> bool:
        return self.low > self.threshold


def _normal_scores(frame: pd.DataFrame, features: Sequence[str]):
    """Each column's van der Waerden scores within ``frame`` (ties averaged; NULL and ±inf
    at 0, the median)."""
    import numpy as np
    import pandas as pd
    from scipy.stats import norm

    out = np.zeros((len(frame), len(features)))
    for j, name in enumerate(features):
        values = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        values = values.where(np.isfinite(values))
        ranks = values.rank(method="average")
        n = int(values.notna().sum())
        if n:
            out[:, j] = np.nan_to_num(norm.ppf(ranks.to_numpy() / (n + 1)), nan=0.0)
    return out


def _products(z):
    """The pairwise products z_i * z_j (i < j): the features' pairwise dependence."""
    import numpy as np

    i, j = np.triu_indices(z.shape[1], k=1)
    return z[:, i] * z[:, j]


def _auc_interval(auc: float, n_pos: int, n_neg: int) -> tuple[float, float]:
    """Hanley & McNeil (1982) 95 % interval of an AUC."""
    import math

    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc)
           + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    se = math.sqrt(max(var, 0.0))
    return max(0.0, auc - Z_95 * se), min(1.0, auc + Z_95 * se)


def _sample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    return frame.iloc[sorted(rng.choice(len(frame), n, replace=False))]


def domain_classifier_drift(reference: pd.DataFrame, current: pd.DataFrame,
                            targets: Sequence[DriftTarget], environment: str, *,
                            sample_rows: int = SAMPLE_ROWS, folds: int = FOLDS,
                            threshold: float = AUC_THRESHOLD, seed: int = 0) -> MultivariateDrift:
    """Train the dependence classifier with ``folds``-fold cross-validation and rank the
    features.

    Args:
        reference: the trailing window's rows.
        current: the day's rows.
        targets: the features (the contract's drift targets; the numeric ones are used).
        environment: recorded in the result.
        sample_rows: rows per side at most; both sides get the smaller side's count.
        folds: cross-validation folds (stratified).
        threshold: the AUC the interval's lower end must exceed to count as drift.
        seed: sampling, fold and model seed (results are deterministic).

    Raises:
        ValueError: fewer than ``folds`` rows on a side, or fewer than two numeric targets.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    features = [t.feature for t in targets if t.column_type == "num"]
    if len(features) < 2:
        raise ValueError(f"expected at least two numeric features, found {features}")
    rng = np.random.default_rng(seed)
    n = min(sample_rows, len(reference), len(current))
    if n < folds:
        raise ValueError(f"expected at least {folds} rows each side, found reference "
                         f"{len(reference)}, current {len(current)}")
    ref, cur = _sample(reference, n, rng), _sample(current, n, rng)
    z = np.vstack([_normal_scores(ref, features), _normal_scores(cur, features)])
    y = np.r_[np.zeros(len(ref)), np.ones(len(cur))]
    x = _products(z)
    oof = np.zeros(len(y))
    permuted = np.zeros((len(features), len(y)))
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in split.split(x, y):
        model = LogisticRegression(C=REGULARISATION, max_iter=500)
        model.fit(x[train], y[train])
        oof[test] = model.predict_proba(x[test])[:, 1]
        for j in range(len(features)):
            shuffled = z[test].copy()
            shuffled[:, j] = shuffled[rng.permutation(len(test)), j]
            permuted[j, test] = model.predict_proba(_products(shuffled))[:, 1]
    auc = float(roc_auc_score(y, oof))
    low, high = _auc_interval(auc, len(cur), len(ref))
    lost = [(name, round(auc - float(roc_auc_score(y, permuted[j])), 4))
            for j, name in enumerate(features)]
    lost.sort(key=lambda item: -item[1])
    return MultivariateDrift(environment, auc, low, high, threshold, len(ref), len(cur),
                             tuple(lost))


def multivariate_finding(result: MultivariateDrift, *, dataset: str | None = None,
                         reference_label: str = "the trailing window",
                         severity: str = "warning", top: int = 3) -> Finding:
    """``drift_multivariate``: value = AUC, threshold = :data:`AUC_THRESHOLD`; the message
    names the features that separate the day from the reference (by AUC lost)."""
    separating = [f"{name} ({lost:+.3f})" for name, lost in result.importance[:top] if lost > 0]
    verdict = "drifted" if result.drifted else "no multivariate drift"
    message = (f"{verdict}: the features' pairwise dependence tells {result.environment} rows "
               f"from {reference_label} "
               f"with AUC {result.auc:.3f} (95% {result.low:.3f}–{result.high:.3f}, threshold "
               f"{result.threshold:g} on the lower end; {result.n_current} vs "
               f"{result.n_reference} rows)")
    if result.baseline is not None:
        message += (f"; the window's last day against its other days: AUC "
                    f"{result.baseline:.3f}")
    if separating:
        message += "; separated most by " + ", ".join(separating)
    return Finding(check="drift_multivariate", passed=not result.drifted, severity=severity,
                   environment=result.environment, value=round(result.auc, 4),
                   threshold=result.threshold, count=result.n_current, message=message,
                   dataset=dataset)


def multivariate_metrics(result: MultivariateDrift) -> list[Metric]:
    """``drift_auc`` (environment), and ``drift_auc_importance`` per feature."""
    out = [Metric("drift_auc", result.auc, environment=result.environment)]
    out += [Metric("drift_auc_importance", lost, feature=name, environment=result.environment)
            for name, lost in result.importance]
    return out


def multivariate_checks(project: Project, engine: Engine, partition: dt.date,
                        slopes: Mapping[str, Mapping[str, float]], *,
                        reference_days: int = 7) -> tuple[list[Finding], list[Metric]]:
    """``drift_multivariate`` per environment of the features contract: the day's rows vs
    its trailing window's (trend-declared features moved to the day by ``slopes[env]``). The
    window's last day against its other days is the baseline: clustered rows (a heavy user's
    impressions) make even clean days somewhat separable, and the day must beat that by
    :data:`BASELINE_MARGIN`."""
    import datetime as dt

    from funnelguard.project import FEATURES
    from monitors.drift import drift_targets

    contract = project.features
    first = partition - dt.timedelta(days=reference_days)
    last = partition - dt.timedelta(days=1)
    findings, metrics = [], []
    for env in contract.tables:
        targets = drift_targets(contract, (env,))
        columns = [t.feature for t in targets]
        current = project.read(engine, FEATURES, env, partition, partition, columns)
        window = project.read(engine, FEATURES, env, first, last,
                              [*columns, contract.partition_column])
        if current.empty or window.empty or not targets:
            continue
        elapsed = (partition - window[contract.partition_column].map(_as_date)).map(
            lambda d: d.days).to_numpy(dtype=float)
        for name, slope in slopes.get(env, {}).items():
            window[name] = window[name] + slope * elapsed
        days = window[contract.partition_column].map(_as_date)
        latest = days == days.max()
        baseline = None
        if days.nunique() >= 3 and latest.sum() >= FOLDS and (~latest).sum() >= FOLDS:
            baseline = domain_classifier_drift(window[~latest], window[latest], targets, env,
                                               seed=1).auc
        result = domain_classifier_drift(window, current, targets, env)
        if baseline is not None and baseline + BASELINE_MARGIN > result.threshold:
            result = replace(result, threshold=baseline + BASELINE_MARGIN, baseline=baseline)
        elif baseline is not None:
            result = replace(result, baseline=baseline)
        findings.append(multivariate_finding(result, dataset=contract.name,
                                             reference_label=f"the window {first}..{last}"))
        metrics += multivariate_metrics(result)
    return findings, metrics


def _as_date(value):
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
