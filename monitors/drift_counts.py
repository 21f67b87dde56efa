"""Evidently's large-sample drift distances computed exactly from value counts.

For a discrete column — a categorical, or a numeric column holding integers in a modest span —
the whole column is summarised by its value counts in one O(n) pass (``bincount``), and the
normed Wasserstein distance and the Jensen-Shannon distance that Evidently computes from every
row are computed from the counts instead: the same formulas (scipy's ``wasserstein_distance``
divided by ``max(np.std(reference), 0.001)``; ``scipy.spatial.distance.jensenshannon`` of the
per-value shares, as Evidently's ``get_binned_data`` forms them), the same numbers up to float
round-off, with no sampling noise and no sort of a million values. Continuous columns keep the
sampled path in :mod:`monitors.drift`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MAX_INTEGER_SPAN", "JS_VALUE_COUNT_LIMIT", "Distribution", "discrete_distribution",
           "wasserstein_normed", "jensenshannon_distance"]

MAX_INTEGER_SPAN = 2_000_000  # integer columns spanning more values than this are sampled
JS_VALUE_COUNT_LIMIT = 20  # Evidently bins numeric columns with more distinct values for JS


@dataclass(frozen=True)
class Distribution:
    """A column's exact distribution: distinct values (sorted for numerics) and their counts."""

    values: Any
    counts: Any
    numeric: bool

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def __len__(self) -> int:
        return len(self.values)


def discrete_distribution(clean: np.ndarray, numeric: bool) -> Distribution | None:
    """The value counts of ``clean`` (no NULL, no ±inf), or None for a continuous column."""
    import numpy as np
    import pandas as pd

    if not numeric:
        counts = pd.Series(clean, dtype=object).value_counts(sort=False)
        return Distribution(counts.index.to_numpy(dtype=object), counts.to_numpy(), False)
    if len(clean) == 0:
        return Distribution(np.empty(0), np.empty(0, dtype=np.int64), True)
    low, high = clean.min(), clean.max()
    if high - low > MAX_INTEGER_SPAN or not np.array_equal(clean, np.rint(clean)):
        return None
    counts = np.bincount((clean - low).astype(np.int64))
    present = np.flatnonzero(counts)
    return Distribution(present.astype(np.float64) + low, counts[present], True)


def wasserstein_normed(reference: Distribution, current: Distribution) -> float:
    """Evidently's ``wasserstein`` value: W1(reference, current) / max(std(reference), 0.001)."""
    import numpy as np

    support = np.union1d(reference.values, current.values)
    ref_cdf = _cdf(reference, support)
    cur_cdf = _cdf(current, support)
    w1 = float(np.sum(np.abs(ref_cdf[:-1] - cur_cdf[:-1]) * np.diff(support)))
    weights = reference.counts / reference.total
    mean = float(np.sum(weights * reference.values))
    std = float(np.sqrt(np.sum(weights * (reference.values - mean) ** 2)))
    return w1 / max(std, 0.001)


def _cdf(dist: Distribution, support: np.ndarray) -> np.ndarray:
    import numpy as np

    at = np.zeros(len(support))
    at[np.searchsorted(support, dist.values)] = dist.counts
    return np.cumsum(at) / dist.total


def jensenshannon_distance(reference: Distribution, current: Distribution) -> float:
    """Evidently's ``jensenshannon`` value over per-value shares (categoricals, and numerics
    with at most 20 distinct reference values, where Evidently does not bin)."""
    import numpy as np
    import pandas as pd
    from scipy.spatial import distance

    ref = pd.Series(reference.counts, index=reference.values)
    cur = pd.Series(current.counts, index=current.values)
    keys = ref.index.union(cur.index)
    ref_share = ref.reindex(keys, fill_value=0).to_numpy(dtype=np.float64) / reference.total
    cur_share = cur.reindex(keys, fill_value=0).to_numpy(dtype=np.float64) / current.total
    return float(distance.jensenshannon(ref_share, cur_share))
