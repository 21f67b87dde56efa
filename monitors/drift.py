"""Feature drift with Evidently's statistical tests, on bounded samples.

Evidently's ``DataDriftPreset`` on a 1M-row partition spends most of its time rendering plots and
sorting every value for Wasserstein distances. The monitoring path keeps Evidently's *decisions*
and drops the rest: each side of a comparison is profiled once (:func:`profile_frame` — cleaned,
bounded per-column samples plus the full-data facts Evidently's test choice depends on), the test
is chosen exactly as Evidently would choose it on the full data (:func:`resolve_stattest`).
Discrete columns (categoricals, integers) are summarised by exact value counts, from which
Evidently's distances are computed without sampling (:mod:`monitors.drift_counts`); continuous
columns run Evidently's own ``StatTest`` on the samples (:func:`compare_profiles`). Samples stay
above 1000 rows so Evidently keeps its large-sample tests (normed Wasserstein, Jensen-Shannon),
whose values are stable under sampling; p-value tests that a contract names explicitly (``ks``,
``chisquare`` ...) depend on sample size, so they run on the full cleaned column.

A reference profile is built once per window and reused for every comparison against it.
Agreement with a full ``DataDriftPreset`` run is measured in :mod:`monitors.drift_agreement`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from funnelguard.findings import Finding, Metric
from monitors.drift_counts import (
    JS_VALUE_COUNT_LIMIT,
    Distribution,
    discrete_distribution,
    jensenshannon_distance,
    wasserstein_normed,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from contracts.spec import CheckPolicy, Contract

__all__ = [
    "DEFAULT_SAMPLE_SIZE",
    "DRIFT_ROLES",
    "SAMPLE_STABLE_METHODS",
    "DriftTarget",
    "ColumnSample",
    "FrameProfile",
    "DriftResult",
    "drift_targets",
    "profile_frame",
    "resolve_stattest",
    "compare_profiles",
    "detect_drift",
    "drift_findings",
    "drift_metrics",
]

DEFAULT_SAMPLE_SIZE = 20_000
LARGE_SAMPLE_ROWS = 1000  # Evidently switches to distance tests above this reference size
FEW_UNIQUE = 5  # Evidently treats a numeric column with <= 5 unique values as discrete
DRIFT_ROLES = ("feature", "category")  # ids, keys, scores, labels are not drift-tested
# Distances whose value does not depend on sample size (beyond noise): safe to sample.
SAMPLE_STABLE_METHODS = frozenset({"wasserstein", "jensenshannon", "psi", "kl_div", "hellinger"})


@dataclass(frozen=True)
class DriftTarget:
    """A feature to drift-test and how.

    Attributes:
        feature: column name.
        column_type: ``num`` or ``cat`` (Evidently's numerical / categorical).
        method: an Evidently stattest name, or None for Evidently's choice.
        threshold: the stattest threshold, or None for the method's default.
        classification: the contract's classification when the column is personal data
            (``pii``, ``restricted`` ...; :func:`funnelguard.redaction.classification_of`),
            else None. The decision uses the raw values; a report shows them coarsened.
    """

    feature: str
    column_type: str
    method: str | None = None
    threshold: float | None = None
    classification: str | None = None


@dataclass(frozen=True)
class ColumnSample:
    """One column of a profiled frame.

    Attributes:
        feature: column name.
        sample: the cleaned values (no NULL, no ±inf), at most the sample size.
        n_clean: how many cleaned values the full column has.
        few_uniques: the full column's distinct values when there are at most five, else None.
        source, mask: the full column and its clean positions (a view, not a copy), for tests
            that are not sample-stable.
        distribution: the exact value counts of a discrete column (categorical, or integers),
            from which Evidently's distances are computed without sampling.
    """

    feature: str
    sample: pd.Series
    n_clean: int
    few_uniques: frozenset | None
    source: pd.Series | None = None
    mask: Any = None
    distribution: Distribution | None = None

    @property
    def sampled(self) -> bool:
        return len(self.sample) < self.n_clean

    def full_values(self) -> pd.Series:
        """Every clean value (what a full Evidently run tests)."""
        if not self.sampled or self.source is None:
            return self.sample
        full = self.source[self.mask].reset_index(drop=True)
        return full.astype("float64") if self.sample.dtype == "float64" else full


@dataclass(frozen=True)
class FrameProfile:
    """Everything a drift comparison needs from one side, computed once."""

    columns: Mapping[str, ColumnSample]
    n_rows: int
    sample_size: int


@dataclass(frozen=True)
class DriftResult:
    """One feature's drift verdict for one comparison.

    Attributes:
        feature: column name.
        environment: ``online_vs_offline`` (same day) or ``offline`` / ``online`` (vs the window).
        method: the Evidently stattest name that decided.
        score: its value (a distance, or a p-value for p-value tests).
        threshold: the threshold applied.
        drifted: Evidently's decision.
        n_reference, n_current: cleaned rows on each side (full data, not the sample).
        sampled: whether the decision was taken on samples.
        base_threshold: the contract's threshold when the window's day-to-day noise raised
            ``threshold`` above it (:mod:`monitors.drift_window`), else None.
    """

    feature: str
    environment: str
    method: str
    score: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    sampled: bool
    base_threshold: float | None = None


def drift_targets(contract: Contract, environments: Iterable[str] = ("offline", "online")) -> tuple[DriftTarget, ...]:
    """The contract's drift-tested features present in every one of ``environments``."""
    from funnelguard.redaction import classification_of

    envs = tuple(environments)
    out = []
    for f in contract.fields:
        if f.role not in DRIFT_ROLES or not all(e in f.environments for e in envs):
            continue
        column_type = "num" if f.is_numeric and f.role != "category" else "cat"
        out.append(DriftTarget(f.name, column_type, f.drift_method, f.drift_threshold,
                               classification_of(f)))
    return tuple(out)


def _clean(column: pd.Series, column_type: str) -> tuple[Any, Any]:
    """The clean values Evidently keeps (not NULL, not ±inf) and the mask that selects them."""
    import numpy as np

    if column_type == "num":
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        mask = np.isfinite(values)
    else:
        values = column.to_numpy(dtype=object)
        mask = column.notna().to_numpy()
    return values[mask], mask


def profile_frame(
    frame: pd.DataFrame,
    targets: Sequence[DriftTarget],
    *,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
) -> FrameProfile:
    """Cleaned, bounded samples of ``targets`` in ``frame`` (one side of a comparison), and the
    exact value counts of its discrete columns.

    Args:
        frame: the partition (or the concatenated reference window).
        targets: the features to profile.
        sample_size: rows kept per column; must exceed 1000 so Evidently keeps its
            large-sample tests.
        seed: the sampling seed (profiles are deterministic).

    Raises:
        ValueError: ``sample_size`` is not above 1000.
    """
    import numpy as np
    import pandas as pd

    if sample_size <= LARGE_SAMPLE_ROWS:
        raise ValueError(f"sample_size must exceed {LARGE_SAMPLE_ROWS} rows to keep Evidently's "
                         f"large-sample tests, got {sample_size}")
    rng = np.random.default_rng(seed)
    columns: dict[str, ColumnSample] = {}
    for target in targets:
        column = frame[target.feature]
        numeric = target.column_type == "num"
        if numeric and not pd.api.types.is_numeric_dtype(column):
            column = pd.to_numeric(column, errors="coerce")
        clean, mask = _clean(column, target.column_type)
        n_clean = len(clean)
        picked = clean
        if n_clean > sample_size:
            picked = clean[np.sort(rng.choice(n_clean, sample_size, replace=False))]
        sample = pd.Series(picked, dtype="float64" if numeric else object)
        distribution = discrete_distribution(clean, numeric)
        if distribution is not None:
            few = frozenset(distribution.values.tolist()) if len(distribution) <= FEW_UNIQUE else None
        else:
            few = _few_uniques(sample, clean, n_clean)
        columns[target.feature] = ColumnSample(target.feature, sample, n_clean, few, column, mask,
                                               distribution)
    return FrameProfile(columns, len(frame), sample_size)


def _few_uniques(sample: pd.Series, clean: np.ndarray, n_clean: int) -> frozenset | None:
    """The full column's distinct values if there are at most five (a sample with more than
    five distinct values proves the full column has more, without touching it)."""
    import pandas as pd

    seen = sample.unique()
    if len(seen) > FEW_UNIQUE:
        return None
    if len(sample) < n_clean:
        seen = pd.unique(clean)
        if len(seen) > FEW_UNIQUE:
            return None
    return frozenset(seen.tolist())


def _exact_score(method: str, reference: ColumnSample, current: ColumnSample) -> float | None:
    """Evidently's distance from full value counts, when both sides are discrete."""
    ref, cur = reference.distribution, current.distribution
    if ref is None or cur is None:
        return None
    if method == "wasserstein" and ref.numeric:
        return wasserstein_normed(ref, cur)
    if method == "jensenshannon" and (not ref.numeric or len(ref) <= JS_VALUE_COUNT_LIMIT):
        return jensenshannon_distance(ref, cur)
    return None


def resolve_stattest(target: DriftTarget, reference: ColumnSample, current: ColumnSample):
    """The Evidently ``StatTest`` a full run would use, decided from full-data facts.

    Mirrors ``evidently.legacy.calculations.stattests.registry._get_default_stattest``: the
    reference size and the number of distinct values decide, and both are taken from the full
    columns, so sampling never changes which test runs.
    """
    from evidently.legacy.calculations import stattests
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    column_type = ColumnType.Numerical if target.column_type == "num" else ColumnType.Categorical
    if target.method is not None:
        return get_stattest(reference.sample, current.sample, column_type, target.method)
    if reference.few_uniques is None or current.few_uniques is None:
        n_values = FEW_UNIQUE + 1
    else:
        n_values = len(reference.few_uniques | current.few_uniques)
    if reference.n_clean <= LARGE_SAMPLE_ROWS:
        if column_type == ColumnType.Numerical and n_values > FEW_UNIQUE:
            return stattests.ks_stat_test
        return stattests.chi_stat_test if n_values > 2 else stattests.z_stat_test
    if column_type == ColumnType.Numerical and n_values > FEW_UNIQUE:
        return stattests.wasserstein_stat_test
    return stattests.jensenshannon_stat_test


def compare_profiles(
    reference: FrameProfile,
    current: FrameProfile,
    targets: Sequence[DriftTarget],
    environment: str,
) -> tuple[DriftResult, ...]:
    """Evidently's per-feature drift decisions, current vs reference.

    A feature with no clean value on one side cannot be tested; it is reported with method
    ``empty`` and counted as drifted (a column that stopped carrying values has changed).
    """
    from evidently.legacy.core import ColumnType

    results = []
    for target in targets:
        ref, cur = reference.columns[target.feature], current.columns[target.feature]
        if ref.n_clean == 0 or cur.n_clean == 0:
            results.append(DriftResult(target.feature, environment, "empty", float("nan"),
                                       float("nan"), ref.n_clean != cur.n_clean, ref.n_clean,
                                       cur.n_clean, False))
            continue
        stattest = resolve_stattest(target, ref, cur)
        exact = _exact_score(stattest.name, ref, cur)
        if exact is not None:
            threshold = stattest.default_threshold if target.threshold is None else target.threshold
            results.append(DriftResult(target.feature, environment, stattest.name, exact,
                                       float(threshold), exact >= threshold, ref.n_clean,
                                       cur.n_clean, False))
            continue
        column_type = ColumnType.Numerical if target.column_type == "num" else ColumnType.Categorical
        stable = stattest.name in SAMPLE_STABLE_METHODS
        ref_values = ref.sample if stable else ref.full_values()
        cur_values = cur.sample if stable else cur.full_values()
        outcome = stattest(ref_values, cur_values, column_type, target.threshold)
        sampled = len(ref_values) < ref.n_clean or len(cur_values) < cur.n_clean
        results.append(DriftResult(target.feature, environment, stattest.name,
                                   float(outcome.drift_score), float(outcome.actual_threshold),
                                   bool(outcome.drifted), ref.n_clean, cur.n_clean, sampled))
    return tuple(results)


def detect_drift(
    reference: pd.DataFrame | FrameProfile,
    current: pd.DataFrame | FrameProfile,
    targets: Sequence[DriftTarget],
    environment: str,
    *,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
) -> tuple[DriftResult, ...]:
    """Profile whichever side is a frame, then :func:`compare_profiles`."""
    if not isinstance(reference, FrameProfile):
        reference = profile_frame(reference, targets, sample_size=sample_size, seed=seed)
    if not isinstance(current, FrameProfile):
        current = profile_frame(current, targets, sample_size=sample_size, seed=seed + 1)
    return compare_profiles(reference, current, targets, environment)


_AGAINST = {"online_vs_offline": "offline of the same day", "offline": "the trailing window",
            "online": "the trailing window"}


def drift_findings(
    results: Iterable[DriftResult],
    *,
    dataset: str | None = None,
    policies: Mapping[str, CheckPolicy] | None = None,
    reference_label: str | None = None,
) -> list[Finding]:
    """One ``drift`` finding per result; severity from the field's ``drift`` policy."""
    findings = []
    for r in results:
        severity = policies[r.feature].severity if policies and r.feature in policies else "error"
        against = reference_label if reference_label and r.environment != "online_vs_offline" \
            else _AGAINST.get(r.environment, "the reference")
        side = "online" if r.environment == "online_vs_offline" else r.environment
        if r.method == "empty":
            message = (f"{r.feature} has {r.n_current} clean values in {side} and "
                       f"{r.n_reference} in {against}: cannot compare distributions")
        else:
            verdict = "drifted" if r.drifted else "no drift"
            raised = (f", raised from {r.base_threshold:.4g} by the window's day-to-day noise"
                      if r.base_threshold is not None else "")
            message = (f"{verdict}: {r.feature} ({side}) vs {against}, {r.method} "
                       f"{r.score:.4g} (threshold {r.threshold:.4g}{raised})"
                       + (", on samples" if r.sampled else ""))
        findings.append(Finding(
            check="drift", passed=not r.drifted, severity=severity, feature=r.feature,
            environment=r.environment, value=r.score, threshold=r.threshold, count=r.n_current,
            message=message, dataset=dataset))
    return findings


def drift_metrics(results: Iterable[DriftResult]) -> list[Metric]:
    """Per-feature drift scores to keep over time (metric ``drift_score``)."""
    return [Metric("drift_score", r.score, feature=r.feature, environment=r.environment)
            for r in results]
