"""Default-value rate: how often each feature carries its sentinel, online vs offline.

A broken online pipeline rarely writes garbage; it writes the feature's declared default
(``-1``, ``-9.0``, ``"unknown"``), often only for one segment (one device type, one channel).
For every feature with a declared default, :func:`default_rates` measures the share of rows
equal to it in the features contract's offline and online tables of the same partition,
overall and per segment; "equal to the default" is :func:`contracts.spec.is_default_value`
(numbers compared as floats, everything else as strings), vectorised in :func:`default_mask`.
A row's segment is its offline value (the online row takes the offline row's segment through
the replay join on the contract's key, so a remapped or defaulted segment column online does
not move it). :func:`default_rate_findings` flags an online rate above the offline rate plus
the contract's ``default_rate`` tolerance, or (overall only) above the field's online
``max_default_rate``: that maximum is the table's, so a small segment, or one whose value is
itself the default (``channel=na``), is judged against its own offline rate only.
Fields without a ``max_default_rate`` (a default that is also a common legitimate value) are
measured (metrics) but not flagged. :func:`default_rate_causes` finds the segment that explains
a feature's flagged segments (:mod:`monitors.segments`); with it the findings fail that segment
once and pass the segments it explains as ``info`` ("explained by ...").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from funnelguard.findings import Finding, Metric
from monitors.segments import RootCause, SegmentRows, explains_words, find_root_cause, segment_sums
from monitors.skew import SKEW_ROLES, ReplayAlignment, align_replay

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from contracts.spec import Contract, FieldContract

__all__ = ["DefaultRate", "default_mask", "default_rates", "default_rate_causes",
           "default_rate_findings", "default_rate_metrics"]


@dataclass(frozen=True)
class DefaultRate:
    """One feature's default rate online vs offline, overall (``segment`` None) or in a segment.

    Attributes:
        feature: column name.
        segment: ``column=value`` (a segment of the contract), or None.
        offline_defaults, offline_rows, online_defaults, online_rows: the counts.
        tolerance: how far the online rate may exceed the offline rate.
        max_online: the contract's online ``max_default_rate`` (None: not declared, and
            always None for a segment: the maximum applies to the whole table).
        enforced: whether the contract declares a maximum (otherwise only measured).
    """

    feature: str
    segment: str | None
    offline_defaults: int
    offline_rows: int
    online_defaults: int
    online_rows: int
    tolerance: float
    max_online: float | None
    enforced: bool

    @property
    def offline_rate(self) -> float:
        return self.offline_defaults / self.offline_rows if self.offline_rows else 0.0

    @property
    def online_rate(self) -> float:
        return self.online_defaults / self.online_rows if self.online_rows else 0.0

    @property
    def limit(self) -> float:
        """The highest online rate that passes."""
        limit = self.offline_rate + self.tolerance
        return limit if self.max_online is None else min(limit, self.max_online)

    @property
    def flagged(self) -> bool:
        return self.enforced and self.online_rows > 0 and self.online_rate > self.limit + 1e-12


def default_mask(column: pd.Series, field: FieldContract) -> np.ndarray:
    """Which rows of ``column`` are ``field``'s default: :func:`contracts.spec.is_default_value`
    row by row, computed without a Python call per row.

    Numeric columns of a numeric field compare as floats; any other column (text, mixed,
    numbers read as text) is judged by ``is_default_value`` once per distinct value. NULL is
    never the default.
    """
    import numpy as np
    import pandas as pd

    from contracts.spec import is_default_value

    if field.default is None:
        return np.zeros(len(column), dtype=bool)
    if field.is_numeric and pd.api.types.is_numeric_dtype(column):
        try:
            target = float(field.default)
        except (TypeError, ValueError):
            return np.zeros(len(column), dtype=bool)
        return column.to_numpy(dtype="float64", na_value=np.nan) == target
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    hits = np.fromiter((is_default_value(field, u) for u in uniques), dtype=bool,
                       count=len(uniques))
    out = np.zeros(len(column), dtype=bool)
    valid = codes >= 0
    out[valid] = hits[codes[valid]]
    return out


def _segment_labels(offline: pd.DataFrame, online: pd.DataFrame, column: str,
                    alignment: ReplayAlignment) -> tuple[np.ndarray, list[str]]:
    """Segment codes of the offline rows then the online rows (online rows take the offline
    value through the replay join), and the value of each code."""
    import numpy as np
    import pandas as pd

    off = offline[column].to_numpy(dtype=object)
    on = online[column].to_numpy(dtype=object).copy() if column in online.columns \
        else np.full(len(online), None, dtype=object)
    on[alignment.online_rows] = off[alignment.offline_rows]
    codes, labels = pd.factorize(np.concatenate([off, on]), use_na_sentinel=False)
    return codes, [str(x) for x in labels]


def _segment_rows(offline: pd.DataFrame, online: pd.DataFrame, segments: Sequence[str],
                  alignment: ReplayAlignment) -> SegmentRows:
    """The offline rows then the online rows, by every segment column offline has."""
    columns = [c for c in segments if c in offline.columns]
    labelled = [_segment_labels(offline, online, c, alignment) for c in columns]
    return SegmentRows(tuple(columns), tuple(codes for codes, _ in labelled),
                       tuple(tuple(labels) for _, labels in labelled))


def _weights(off_def: np.ndarray, on_def: np.ndarray) -> dict[str, np.ndarray]:
    """Per row of the offline-then-online rows: which side it is on and whether it is the
    default (the sums :func:`_rate_of` reads)."""
    import numpy as np

    off_zero, on_zero = np.zeros(len(off_def)), np.zeros(len(on_def))
    return {"offline_rows": np.concatenate([off_zero + 1, on_zero]),
            "offline_defaults": np.concatenate([off_def, on_zero]),
            "online_rows": np.concatenate([off_zero, on_zero + 1]),
            "online_defaults": np.concatenate([off_zero, on_def])}


def _rate_of(feature: str, segment: str | None, sums: Mapping[str, float], *, tolerance: float,
             enforced: bool) -> DefaultRate:
    """A segment's :class:`DefaultRate` from its sums (no table maximum: a segment is judged
    against its own offline rate)."""
    return DefaultRate(feature, segment, int(sums["offline_defaults"]), int(sums["offline_rows"]),
                       int(sums["online_defaults"]), int(sums["online_rows"]),
                       tolerance=tolerance, max_online=None, enforced=enforced)


def _field_masks(offline: pd.DataFrame, online: pd.DataFrame,
                 field: FieldContract) -> tuple[np.ndarray, np.ndarray]:
    return default_mask(offline[field.name], field), default_mask(online[field.name], field)


def _measured(contract: Contract, offline: pd.DataFrame, online: pd.DataFrame) -> list[FieldContract]:
    """Fields with a declared default present on both sides."""
    return [f for f in contract.fields if f.default is not None and f.role in SKEW_ROLES
            and f.name in offline.columns and f.name in online.columns]


def default_rates(
    offline: pd.DataFrame,
    online: pd.DataFrame,
    contract: Contract,
    *,
    segments: Sequence[str] | None = None,
    alignment: ReplayAlignment | None = None,
    key: str | None = None,
) -> tuple[DefaultRate, ...]:
    """Default rates of every field with a declared default present on both sides.

    Args:
        offline, online: one partition of each environment's table.
        contract: declares defaults, ``max_default_rate`` and the ``default_rate`` policy.
        segments: columns to break rates down by (default ``contract.segments``).
        alignment: a precomputed replay join of the same frames (for segment labels).
        key: the join key when ``alignment`` is not given (default ``contract.key_column``).
    """
    segments = contract.segments if segments is None else segments
    alignment = alignment or align_replay(offline, online, key=key or contract.key_column)
    rows = _segment_rows(offline, online, segments, alignment)
    out = []
    for field in _measured(contract, offline, online):
        off_def, on_def = _field_masks(offline, online, field)
        tolerance = field.policy("default_rate", contract.default_policy).tolerance
        enforced = bool(field.max_default_rate)
        out.append(DefaultRate(field.name, None, int(off_def.sum()), len(off_def),
                               int(on_def.sum()), len(on_def), tolerance=tolerance,
                               max_online=field.max_default_rate.get("online"), enforced=enforced))
        weights = _weights(off_def, on_def)
        for i in range(len(rows.columns)):
            for code, sums in enumerate(segment_sums(rows, weights, i)):
                out.append(_rate_of(field.name, rows.segment(i, code), sums,
                                    tolerance=tolerance, enforced=enforced))
    return tuple(out)


def default_rate_causes(
    offline: pd.DataFrame,
    online: pd.DataFrame,
    contract: Contract,
    rates: Sequence[DefaultRate],
    *,
    segments: Sequence[str] | None = None,
    alignment: ReplayAlignment | None = None,
    key: str | None = None,
) -> dict[str, RootCause]:
    """The segment that explains each feature's flagged segments (:mod:`monitors.segments`).

    Only features with a flagged segment in ``rates`` are attributed; a feature is left out when
    no single segment column explains its excess. Arguments as for :func:`default_rates`
    (``rates`` is its result for the same frames).
    """
    flagged = {r.feature for r in rates if r.flagged and r.segment is not None}
    if not flagged:
        return {}
    segments = contract.segments if segments is None else segments
    alignment = alignment or align_replay(offline, online, key=key or contract.key_column)
    rows = _segment_rows(offline, online, segments, alignment)
    causes = {}
    for field in _measured(contract, offline, online):
        if field.name not in flagged:
            continue
        tolerance = field.policy("default_rate", contract.default_policy).tolerance

        def rule(sums: Mapping[str, float], name: str = field.name, tol: float = tolerance) -> bool:
            return _rate_of(name, None, sums, tolerance=tol, enforced=True).flagged

        cause = find_root_cause(rows, _weights(*_field_masks(offline, online, field)), rule)
        if cause is not None:
            causes[field.name] = cause
    return causes


def _cause_words(r: DefaultRate, cause: RootCause, by_key: Mapping[tuple, DefaultRate],
                 tolerance: float) -> tuple[str, bool, bool]:
    """(message suffix, still failing, explained) of ``r`` given its feature's root cause."""
    if r.segment is None:
        parts = [f"{s}: {x.online_rate:.2%} vs {x.offline_rate:.2%} offline"
                 for s in cause.segments if (x := by_key.get((r.feature, s)))]
        return (f"; caused by {', '.join(parts)}; other segments at their base rate",
                r.flagged, False)
    if r.segment in cause.segments:
        return f"; the root cause{explains_words(cause)}", r.flagged, False
    if r.segment in cause.explained:
        rest = _rate_of(r.feature, None, cause.explained[r.segment], tolerance=tolerance,
                        enforced=True)
        return (f"; explained by {cause.label}: without its rows {rest.online_rate:.2%} vs "
                f"{rest.offline_rate:.2%} offline ({rest.online_defaults}/{rest.online_rows})",
                False, True)
    return "", r.flagged, False


def default_rate_findings(rates: Sequence[DefaultRate], contract: Contract,
                          causes: Mapping[str, RootCause] | None = None) -> list[Finding]:
    """``default_rate`` findings (environment ``online_vs_offline``) for enforced fields: the
    overall rate always, the per-segment rates of a feature when any of its rates is flagged.

    With ``causes`` (:func:`default_rate_causes`), a feature's overall finding names its root
    cause, the cause's segments say so, and the flagged segments it explains pass as ``info``
    findings that say "explained by ...": one failing segment per root cause.
    """
    causes = causes or {}
    flagged_features = {r.feature for r in rates if r.flagged}
    by_key = {(r.feature, r.segment): r for r in rates}
    findings = []
    for r in rates:
        if not r.enforced or (r.segment is not None and r.feature not in flagged_features):
            continue
        policy = contract.field(r.feature).policy("default_rate", contract.default_policy)
        where = f" with {r.segment}" if r.segment else ""
        cap = f", max {r.max_online:.2%}" if r.max_online is not None else ""
        default = contract.field(r.feature).default
        message = (f"{r.online_rate:.2%} of online rows{where} hold the default {default} of "
                   f"{r.feature} ({r.online_defaults}/{r.online_rows}) vs {r.offline_rate:.2%} "
                   f"offline ({r.offline_defaults}/{r.offline_rows}); at most {r.limit:.2%} "
                   f"allowed (offline + {r.tolerance:g}{cap})")
        failing, explained = r.flagged, False
        if r.feature in causes:
            suffix, failing, explained = _cause_words(r, causes[r.feature], by_key,
                                                      policy.tolerance)
            message += suffix
        findings.append(Finding(
            check="default_rate", passed=not failing,
            severity="info" if explained else policy.severity, feature=r.feature,
            environment="online_vs_offline", segment=r.segment, value=r.online_rate,
            threshold=r.limit, count=r.online_defaults, dataset=contract.name, message=message))
    return findings


def default_rate_metrics(rates: Sequence[DefaultRate]) -> list[Metric]:
    """Default rates per environment and segment (metric ``default_rate``)."""
    out = []
    for r in rates:
        out.append(Metric("default_rate", r.offline_rate, feature=r.feature,
                          environment="offline", segment=r.segment))
        out.append(Metric("default_rate", r.online_rate, feature=r.feature,
                          environment="online", segment=r.segment))
    return out
