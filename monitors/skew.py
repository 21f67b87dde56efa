"""Replay skew: the same impression's features, as the batch pipeline computed them and as the
online pipeline served them, compared value by value.

:func:`align_replay` joins the features contract's offline table to its online table on the
contract's key (``primaryKey: true``; the first row of a duplicated key takes part; duplicates
and one-sided keys are counted).
:func:`replay_skew` then counts, per feature, matched and mismatched values — numeric values
match within the contract's tolerance (``numeric_tolerance`` absolute, ``relative_tolerance``
relative, the larger applies), categoricals and ids match exactly, NULL matches NULL and
``inf`` matches ``inf`` — ranks features by mismatch rate, breaks each feature down by segment
and keeps a few examples with PII redacted. When one segment explains a feature's failing
segments (:mod:`monitors.segments`), the report names it as the feature's root cause.
:func:`skew_findings` turns that into findings: the cause's segment fails, the segments it
explains pass as ``info`` ("explained by ...").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from funnelguard.findings import Finding, Metric
from monitors.segments import RootCause, SegmentRows, explains_words, find_root_cause

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from contracts.spec import Contract, FieldContract

__all__ = [
    "SKEW_ROLES",
    "REDACTED",
    "ReplayAlignment",
    "FeatureSkew",
    "SkewReport",
    "align_replay",
    "replay_skew",
    "skew_findings",
    "skew_metrics",
]

SKEW_ROLES = ("feature", "category", "id")
REDACTED = "<redacted>"
# Float round-off slack, so that |0.105 - 0.1| <= 0.005 holds.
_SLACK = 1e-9


@dataclass(frozen=True)
class ReplayAlignment:
    """The join of one partition's offline and online rows on the contract's key.

    Attributes:
        offline_rows, online_rows: positions of the matched rows in each frame (same order).
        n_offline, n_online: rows in each frame.
        duplicate_offline, duplicate_online: rows beyond the first of a repeated key.
        only_offline, only_online: distinct keys present on one side only.
        key: the key column joined on.
        null_offline, null_online: rows with a null key (left out of the join and of the
            duplicate count: a null matches nothing).
        n_matched: the matched keys when the join ran in the engine (no positions then:
            ``offline_rows``/``online_rows`` are empty); -1 when the positions are given.
    """

    offline_rows: Any
    online_rows: Any
    n_offline: int
    n_online: int
    duplicate_offline: int
    duplicate_online: int
    only_offline: int
    only_online: int
    key: str = ""
    null_offline: int = 0
    null_online: int = 0
    n_matched: int = -1

    @property
    def matched(self) -> int:
        return len(self.offline_rows) if self.n_matched < 0 else self.n_matched


@dataclass(frozen=True)
class FeatureSkew:
    """Replay comparison of one feature, overall (``segment`` None) or in one segment.

    Attributes:
        feature: column name.
        segment: ``column=value`` (a segment of the contract), or None for the whole partition.
        compared: matched rows compared.
        mismatched: rows whose values differ beyond the tolerance.
        tolerance: (absolute, relative) for numerics, None for exact comparison.
        examples: a few mismatches ``{<key column>: key, offline, online}``, PII redacted.
    """

    feature: str
    segment: str | None
    compared: int
    mismatched: int
    tolerance: tuple[float, float] | None
    examples: tuple[dict[str, Any], ...] = ()

    @property
    def rate(self) -> float:
        return self.mismatched / self.compared if self.compared else 0.0


@dataclass(frozen=True)
class SkewReport:
    """Everything replay skew found in one partition; ``features`` ranked by mismatch rate.

    Attributes:
        alignment: the replay join.
        features: one comparison per feature, ranked by mismatch rate.
        segments: per segment value of each feature with mismatches.
        causes: feature -> the segment that explains its failing segments
            (:func:`monitors.segments.find_root_cause`), for features where one does.
    """

    alignment: ReplayAlignment
    features: tuple[FeatureSkew, ...]
    segments: tuple[FeatureSkew, ...]
    causes: Mapping[str, RootCause] = dataclasses.field(default_factory=dict)

    def ranked(self) -> list[str]:
        return [f.feature for f in self.features]


def align_replay(offline: pd.DataFrame, online: pd.DataFrame, *, key: str) -> ReplayAlignment:
    """Match offline and online rows by ``key`` (the first row of each key takes part).

    Rows with a null key take no part and are counted apart (``null_offline``,
    ``null_online``), not as one repeated key.

    Args:
        offline, online: one partition of each environment's table.
        key: the key column both frames carry (the contract's ``key_column``).
    """
    import numpy as np
    import pandas as pd

    off_keys, on_keys = offline[key], online[key]
    off_null, on_null = off_keys.isna().to_numpy(), on_keys.isna().to_numpy()
    off_dup = off_keys.duplicated().to_numpy() & ~off_null
    on_dup = on_keys.duplicated().to_numpy() & ~on_null
    off_first = np.flatnonzero(~off_dup & ~off_null)
    on_first = np.flatnonzero(~on_dup & ~on_null)
    index = pd.Index(off_keys.to_numpy()[off_first])
    hit = index.get_indexer(on_keys.to_numpy()[on_first])
    found = hit >= 0
    return ReplayAlignment(
        offline_rows=off_first[hit[found]], online_rows=on_first[found],
        n_offline=len(offline), n_online=len(online),
        duplicate_offline=int(off_dup.sum()), duplicate_online=int(on_dup.sum()),
        only_offline=len(off_first) - int(found.sum()), only_online=int((~found).sum()),
        key=key, null_offline=int(off_null.sum()), null_online=int(on_null.sum()),
    )


def _numeric_match(a: np.ndarray, b: np.ndarray, abs_tol: float, rel_tol: float) -> np.ndarray:
    import numpy as np

    with np.errstate(invalid="ignore", over="ignore"):
        both_null = np.isnan(a) & np.isnan(b)
        limit = np.maximum(abs_tol, rel_tol * np.maximum(np.abs(a), np.abs(b)))
        close = np.isfinite(a) & np.isfinite(b) & (np.abs(a - b) <= limit + _SLACK * np.maximum(1.0, limit))
        return both_null | (a == b) | close


def _exact_match(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import pandas as pd

    return (a == b) | (pd.isna(a) & pd.isna(b))


def _values(frame: pd.DataFrame, column: str, rows: np.ndarray, numeric: bool) -> np.ndarray:
    import numpy as np
    import pandas as pd

    col = frame[column]
    if numeric:
        if not pd.api.types.is_numeric_dtype(col):
            col = pd.to_numeric(col, errors="coerce")
        return col.to_numpy(dtype="float64", na_value=np.nan)[rows]
    return col.to_numpy(dtype=object)[rows]


def _example_value(value: Any, pii: bool) -> Any:
    if pii:
        return REDACTED
    if hasattr(value, "item"):
        value = value.item()
    return None if value is not None and value != value else value  # NaN -> null


def _compare_field(
    field: FieldContract, offline: pd.DataFrame, online: pd.DataFrame,
    alignment: ReplayAlignment, keys: np.ndarray, n_examples: int,
) -> tuple[FeatureSkew, np.ndarray]:
    import numpy as np

    numeric = field.is_numeric and field.role != "category"
    a = _values(offline, field.name, alignment.offline_rows, numeric)
    b = _values(online, field.name, alignment.online_rows, numeric)
    if numeric:
        tol = (float(field.numeric_tolerance or 0.0), float(field.relative_tolerance or 0.0))
        mismatch = ~_numeric_match(a, b, *tol)
    else:
        tol = None
        mismatch = ~_exact_match(a, b)
    where = np.flatnonzero(mismatch)[:n_examples]
    examples = tuple({alignment.key: keys[i], "offline": _example_value(a[i], field.pii),
                      "online": _example_value(b[i], field.pii)} for i in where)
    skew = FeatureSkew(field.name, None, len(a), int(mismatch.sum()), tol, examples)
    return skew, mismatch


def _segment_breakdown(
    skew: FeatureSkew, mismatch: np.ndarray, segment_codes: Sequence[tuple[str, Any, Any]],
) -> list[FeatureSkew]:
    import numpy as np

    out = []
    for column, codes, labels in segment_codes:
        totals = np.bincount(codes, minlength=len(labels))
        bad = np.bincount(codes, weights=mismatch, minlength=len(labels))
        for i, label in enumerate(labels):
            if totals[i]:
                out.append(FeatureSkew(skew.feature, f"{column}={label}", int(totals[i]),
                                       int(bad[i]), skew.tolerance))
    return out


def replay_skew(
    offline: pd.DataFrame,
    online: pd.DataFrame,
    contract: Contract,
    *,
    segments: Sequence[str] | None = None,
    n_examples: int = 3,
    alignment: ReplayAlignment | None = None,
    key: str | None = None,
) -> SkewReport:
    """Compare every feature present on both sides, value by value, on matched impressions.

    Args:
        offline, online: one partition of the contract's offline and online tables.
        contract: the features' contract (tolerances, roles, PII, key).
        segments: columns to break mismatches down by (default ``contract.segments``); a
            matched row's segment is its offline value.
        n_examples: mismatch examples kept per feature.
        alignment: a precomputed :func:`align_replay` of the same frames.
        key: the join key (default ``contract.key_column``).
    """
    import numpy as np
    import pandas as pd

    alignment = alignment or align_replay(offline, online, key=key or contract.key_column)
    keys = offline[alignment.key].to_numpy(dtype=object)[alignment.offline_rows]
    segment_codes = []
    for column in contract.segments if segments is None else segments:
        if column in offline.columns:
            values = offline[column].to_numpy(dtype=object)[alignment.offline_rows]
            codes, labels = pd.factorize(values, use_na_sentinel=False)
            segment_codes.append((column, codes, [str(x) for x in labels]))
    rows = SegmentRows(tuple(c for c, _, _ in segment_codes),
                       tuple(codes for _, codes, _ in segment_codes),
                       tuple(tuple(labels) for _, _, labels in segment_codes))
    features, by_segment, causes = [], [], {}
    for field in contract.fields:
        if field.role not in SKEW_ROLES or field.name not in offline.columns \
                or field.name not in online.columns:
            continue
        skew, mismatch = _compare_field(field, offline, online, alignment, keys, n_examples)
        features.append(skew)
        if not skew.mismatched:
            continue
        breakdown = _segment_breakdown(skew, mismatch.astype(np.float64), segment_codes)
        by_segment.extend(breakdown)
        tolerance = field.policy("replay_skew", contract.default_policy).tolerance
        if any(s.rate > tolerance for s in breakdown):
            cause = find_root_cause(rows, {"mismatched": mismatch.astype(np.float64)},
                                    lambda sums, tol=tolerance: _skewed(sums, tol))
            if cause is not None:
                causes[field.name] = cause
    features.sort(key=lambda s: (-s.rate, s.feature))
    by_segment.sort(key=lambda s: (s.feature, -s.rate, s.segment))
    return SkewReport(alignment, tuple(features), tuple(by_segment), causes)


def _skewed(sums: Mapping[str, float], tolerance: float) -> bool:
    """The replay-skew rule on one segment's sums: its mismatch rate exceeds the tolerance."""
    return bool(sums["rows"]) and sums["mismatched"] / sums["rows"] > tolerance


def _tolerance_text(s: FeatureSkew) -> str:
    if s.tolerance is None:
        return "exact"
    abs_tol, rel_tol = s.tolerance
    parts = [f"|Δ| ≤ {abs_tol:g}"] + ([f"relative {rel_tol:g}"] if rel_tol else [])
    return " or ".join(parts)


def skew_findings(report: SkewReport, contract: Contract) -> list[Finding]:
    """Findings: ``replay_skew`` per feature (ranked) and per segment of a skewed feature,
    ``replay_coverage`` for keys on one side only, ``replay_duplicate_keys`` and
    ``replay_null_keys`` per environment."""
    a, name = report.alignment, contract.name
    policy = contract.default_policy
    findings = []
    key = a.key or "key"
    for env, dup, nulls, rows in (("offline", a.duplicate_offline, a.null_offline, a.n_offline),
                                  ("online", a.duplicate_online, a.null_online, a.n_online)):
        findings.append(Finding(
            check="replay_duplicate_keys", passed=dup == 0, severity=policy.severity,
            environment=env, value=dup, threshold=0, count=rows, dataset=name,
            message=f"{dup} of {rows} {env} rows repeat a key ({key})"))
        findings.append(Finding(
            check="replay_null_keys", passed=nulls == 0, severity=policy.severity,
            environment=env, value=nulls, threshold=0, count=rows, dataset=name,
            message=f"{nulls} of {rows} {env} rows have a null key ({key}) and cannot be "
                    "replayed"))
    one_sided = a.only_offline + a.only_online
    universe = a.matched + one_sided
    rate = one_sided / universe if universe else 0.0
    findings.append(Finding(
        check="replay_coverage", passed=rate <= policy.tolerance, severity=policy.severity,
        environment="online_vs_offline", value=rate, threshold=policy.tolerance, count=one_sided,
        dataset=name, message=(f"{a.matched} impressions on both sides, {a.only_offline} only "
                               f"offline, {a.only_online} only online")))
    for rank, s in enumerate(report.features, start=1):
        field = contract.field(s.feature)
        pol = field.policy("replay_skew", policy)
        cause = report.causes.get(s.feature)
        findings.append(Finding(
            check="replay_skew", passed=s.rate <= pol.tolerance, severity=pol.severity,
            feature=s.feature, environment="online_vs_offline", value=s.rate,
            threshold=pol.tolerance, count=s.mismatched, examples=s.examples or None,
            dataset=name,
            message=(f"rank {rank}: {s.mismatched} of {s.compared} matched impressions differ "
                     f"({s.rate:.2%}; {_tolerance_text(s)})"
                     + (_caused_by(cause, report.segments, s.feature) if cause else ""))))
    for s in report.segments:
        pol = contract.field(s.feature).policy("replay_skew", policy)
        message = f"{s.mismatched} of {s.compared} impressions with {s.segment} differ ({s.rate:.2%})"
        failing, severity = s.rate > pol.tolerance, pol.severity
        cause = report.causes.get(s.feature)
        if cause and s.segment in cause.segments:
            message += f"; the root cause{explains_words(cause)}"
        elif cause and s.segment in cause.explained:
            rest = cause.explained[s.segment]
            message += (f"; explained by {cause.label}: without its rows {int(rest['mismatched'])} "
                        f"of {int(rest['rows'])} differ")
            failing, severity = False, "info"
        findings.append(Finding(
            check="replay_skew", passed=not failing, severity=severity,
            feature=s.feature, environment="online_vs_offline", segment=s.segment, value=s.rate,
            threshold=pol.tolerance, count=s.mismatched, dataset=name, message=message))
    return findings


def _caused_by(cause: RootCause, segments: Sequence[FeatureSkew], feature: str) -> str:
    """``"; caused by a=x: 5 of 6 differ (83.33%); other segments within tolerance"``."""
    by_segment = {s.segment: s for s in segments if s.feature == feature}
    parts = [f"{seg}: {x.mismatched} of {x.compared} differ ({x.rate:.2%})"
             for seg in cause.segments if (x := by_segment.get(seg))]
    return f"; caused by {', '.join(parts)}; other segments within tolerance"


def skew_metrics(report: SkewReport) -> list[Metric]:
    """Mismatch rates per feature and per segment (metric ``mismatch_rate``)."""
    return [Metric("mismatch_rate", s.rate, feature=s.feature, environment="online_vs_offline",
                   segment=s.segment) for s in (*report.features, *report.segments)]
