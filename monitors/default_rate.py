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
measured (metrics) but not flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from funnelguard.findings import Finding, Metric
from monitors.skew import SKEW_ROLES, ReplayAlignment, align_replay

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from contracts.spec import Contract, FieldContract

__all__ = ["DefaultRate", "default_mask", "default_rates", "default_rate_findings",
           "default_rate_metrics"]


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
                    alignment: ReplayAlignment) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Segment codes for offline rows and online rows (online take the offline value)."""
    import numpy as np
    import pandas as pd

    off = offline[column].to_numpy(dtype=object)
    on = online[column].to_numpy(dtype=object).copy() if column in online.columns \
        else np.full(len(online), None, dtype=object)
    on[alignment.online_rows] = off[alignment.offline_rows]
    codes, labels = pd.factorize(np.concatenate([off, on]), use_na_sentinel=False)
    return codes[: len(off)], codes[len(off):], [str(x) for x in labels]


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
    import numpy as np

    segments = contract.segments if segments is None else segments
    alignment = alignment or align_replay(offline, online, key=key or contract.key_column)
    segment_codes = [(c, *_segment_labels(offline, online, c, alignment))
                     for c in segments if c in offline.columns]
    out = []
    for field in contract.fields:
        if field.default is None or field.role not in SKEW_ROLES \
                or field.name not in offline.columns or field.name not in online.columns:
            continue
        off_def = default_mask(offline[field.name], field)
        on_def = default_mask(online[field.name], field)
        tolerance = field.policy("default_rate", contract.default_policy).tolerance
        enforced = bool(field.max_default_rate)
        out.append(DefaultRate(field.name, None, int(off_def.sum()), len(off_def),
                               int(on_def.sum()), len(on_def), tolerance=tolerance,
                               max_online=field.max_default_rate.get("online"), enforced=enforced))
        common = dict(tolerance=tolerance, max_online=None, enforced=enforced)
        for column, off_codes, on_codes, labels in segment_codes:
            n = len(labels)
            off_rows, on_rows = np.bincount(off_codes, minlength=n), np.bincount(on_codes, minlength=n)
            off_hits = np.bincount(off_codes, weights=off_def, minlength=n)
            on_hits = np.bincount(on_codes, weights=on_def, minlength=n)
            for i, label in enumerate(labels):
                out.append(DefaultRate(field.name, f"{column}={label}", int(off_hits[i]),
                                       int(off_rows[i]), int(on_hits[i]), int(on_rows[i]), **common))
    return tuple(out)


def default_rate_findings(rates: Sequence[DefaultRate], contract: Contract) -> list[Finding]:
    """``default_rate`` findings (environment ``online_vs_offline``) for enforced fields: the
    overall rate always, the per-segment rates of a feature when any of its rates is flagged."""
    flagged_features = {r.feature for r in rates if r.flagged}
    findings = []
    for r in rates:
        if not r.enforced or (r.segment is not None and r.feature not in flagged_features):
            continue
        severity = contract.field(r.feature).policy("default_rate", contract.default_policy).severity
        where = f" with {r.segment}" if r.segment else ""
        cap = f", max {r.max_online:.2%}" if r.max_online is not None else ""
        findings.append(Finding(
            check="default_rate", passed=not r.flagged, severity=severity, feature=r.feature,
            environment="online_vs_offline", segment=r.segment, value=r.online_rate,
            threshold=r.limit, count=r.online_defaults, dataset=contract.name,
            message=(f"{r.feature} is its default in {r.online_rate:.2%} of online rows{where} "
                     f"({r.online_defaults}/{r.online_rows}) vs {r.offline_rate:.2%} offline "
                     f"({r.offline_defaults}/{r.offline_rows}); limit {r.limit:.2%} "
                     f"(offline + {r.tolerance:g}{cap})")))
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
