"""Default-value rate: how often each feature carries its sentinel, online vs offline.

A broken online pipeline rarely writes garbage; it writes the feature's declared default
(``-1``, ``0.0``, ``"unknown"``), often only for one device type or one item type. For every
feature with a declared default, :func:`default_rates` measures the share of rows equal to it
in ``offline_features`` and in ``serving_log`` of the same partition, overall and per segment;
a row's segment is its offline value (the online row takes the offline row's segment through
the replay join, so a remapped or defaulted segment column online does not move it).
:func:`default_rate_findings` flags an online rate above the offline rate plus the contract's
``default_rate`` tolerance, or above the field's online ``max_default_rate``. Fields without a
``max_default_rate`` (a default that is also a common legitimate value, e.g. ``user_ctr_30d``)
are measured (metrics) but not flagged.
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

__all__ = ["DefaultRate", "default_rates", "default_rate_findings", "default_rate_metrics"]


@dataclass(frozen=True)
class DefaultRate:
    """One feature's default rate online vs offline, overall (``segment`` None) or in a segment.

    Attributes:
        feature: column name.
        segment: ``device_type=android`` style, or None.
        offline_defaults, offline_rows, online_defaults, online_rows: the counts.
        tolerance: how far the online rate may exceed the offline rate.
        max_online: the contract's online ``max_default_rate`` (None: not declared).
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


def _is_default(frame: pd.DataFrame, field: FieldContract) -> np.ndarray:
    import numpy as np
    import pandas as pd

    column = frame[field.name]
    if field.is_numeric and field.role != "category":
        if not pd.api.types.is_numeric_dtype(column):
            column = pd.to_numeric(column, errors="coerce")
        return column.to_numpy(dtype="float64", na_value=np.nan) == float(field.default)
    return (column.to_numpy(dtype=object) == field.default) & column.notna().to_numpy()


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
) -> tuple[DefaultRate, ...]:
    """Default rates of every field with a declared default present on both sides.

    Args:
        offline, online: one partition of each environment's table.
        contract: declares defaults, ``max_default_rate`` and the ``default_rate`` policy.
        segments: columns to break rates down by (default ``contract.segments``).
        alignment: a precomputed replay join of the same frames (for segment labels).
    """
    import numpy as np

    segments = contract.segments if segments is None else segments
    alignment = alignment or align_replay(offline, online)
    segment_codes = [(c, *_segment_labels(offline, online, c, alignment))
                     for c in segments if c in offline.columns]
    out = []
    for field in contract.fields:
        if field.default is None or field.role not in SKEW_ROLES \
                or field.name not in offline.columns or field.name not in online.columns:
            continue
        off_def, on_def = _is_default(offline, field), _is_default(online, field)
        tolerance = field.policy("default_rate", contract.default_policy).tolerance
        common = dict(tolerance=tolerance, max_online=field.max_default_rate.get("online"),
                      enforced=bool(field.max_default_rate))
        out.append(DefaultRate(field.name, None, int(off_def.sum()), len(off_def),
                               int(on_def.sum()), len(on_def), **common))
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
