"""Segment attribution: which segment of which column explains a feature's excess.

A fault in one segment shows up in every segmentation: when the online pipeline serves a
feature's default to one device type, each item type carries a share of those rows and fails
too. :func:`find_root_cause` tells the cause apart from its echoes. It takes the rows of one
comparison (their code in every segment column of the project), a few per-row weights that a
check sums per segment (rows, defaults, mismatches ...) and the check's own rule that says
whether a segment's sums are flagged. A column *explains* the excess when

- some of its values are flagged and at least one other value with rows is not (the excess is
  local to the column: "other segments at their base rate"), and
- after removing the rows of its flagged values, no segment of any other column is flagged and
  neither is the remaining population as a whole (judged by the same rule, on the same sums).

Among the columns that explain, the one whose flagged values hold the fewest rows (the most
specific) is the root cause. When no single column explains (two faults in different columns,
or one over every row), there is no root cause and every segment keeps its own verdict. The
module is pure numpy; :mod:`monitors.default_rate` and :mod:`monitors.skew` build its inputs and
word its results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["SegmentRows", "RootCause", "explains_words", "find_root_cause", "segment_rows", "segment_sums"]

Sums = Mapping[str, float]
Rule = Callable[[Sums], bool]


@dataclass(frozen=True)
class SegmentRows:
    """Rows broken down by the project's segment columns.

    Attributes:
        columns: the segment columns, in the project's order.
        codes: per column, each row's integer code (``R`` rows; the same rows in every column).
        labels: per column, the value of each code (``labels[i][codes[i][r]]``).
    """

    columns: tuple[str, ...]
    codes: tuple[np.ndarray, ...]
    labels: tuple[tuple[str, ...], ...]

    def segment(self, i: int, code: int) -> str:
        """``column=value`` of code ``code`` in column ``i`` (the findings' spelling)."""
        return f"{self.columns[i]}={self.labels[i][code]}"


@dataclass(frozen=True)
class RootCause:
    """The segment values of one column that explain a feature's excess.

    Attributes:
        column: the explaining column.
        segments: its flagged segments (``column=value``, sorted), the cause; usually one.
        explained: every other segment that was flagged, ``column=value`` -> its sums on the
            rows left once the cause's rows are removed (all within the rule).
        rest: the sums of the remaining population (every row outside the cause).
    """

    column: str
    segments: tuple[str, ...]
    explained: Mapping[str, Sums]
    rest: Sums

    @property
    def label(self) -> str:
        """The cause in words: ``device_type=android`` or ``a=x and a=y``."""
        return " and ".join(self.segments)


def explains_words(cause: RootCause, shown: int = 3) -> str:
    """``": explains b=x, b=y and 3 more"`` for a cause's message; empty when it explains no
    other segment (the feature failed in the cause's column only)."""
    names = sorted(cause.explained)
    if not names:
        return ""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f": explains {', '.join(names[:shown])}{more}"


def segment_sums(rows: SegmentRows, weights: Mapping[str, np.ndarray], i: int,
                 keep: np.ndarray | None = None) -> list[dict[str, float]]:
    """Per value of column ``i``, the sum of each weight over the rows in ``keep`` (all rows
    when None); a ``rows`` key counts the rows."""
    import numpy as np

    codes, n = rows.codes[i], len(rows.labels[i])
    if keep is not None:
        codes = codes[keep]
        weights = {k: w[keep] for k, w in weights.items()}
    totals = {"rows": np.bincount(codes, minlength=n)}
    totals |= {k: np.bincount(codes, weights=w, minlength=n) for k, w in weights.items()}
    return [{k: float(v[c]) for k, v in totals.items()} for c in range(n)]


def _total(weights: Mapping[str, np.ndarray], keep: np.ndarray) -> dict[str, float]:
    return {"rows": float(keep.sum())} | {k: float(w[keep].sum()) for k, w in weights.items()}


def find_root_cause(rows: SegmentRows, weights: Mapping[str, np.ndarray],
                    flagged: Rule) -> RootCause | None:
    """The column whose flagged segments explain every other flagged segment, if one does.

    Args:
        rows: every row of the comparison with its code in each segment column.
        weights: per-row numbers the check sums per segment (length ``R`` each), e.g.
            ``{"online_rows", "online_defaults", "offline_rows", "offline_defaults"}``; a
            ``rows`` weight, when given, is each row's multiplicity (rows that stand for a
            group of rows, as the engine's ``GROUP BY`` results do).
        flagged: the check's rule on one segment's sums (the same rule its findings use), so
            that "back to its base rate" means "this check would pass it".

    Returns:
        The root cause, or None when no segment is flagged or no single column explains.
    """
    import numpy as np

    per_column = [segment_sums(rows, weights, i) for i in range(len(rows.columns))]
    flags = [[s["rows"] > 0 and flagged(s) for s in sums] for sums in per_column]
    best: tuple[float, RootCause] | None = None
    for i, column in enumerate(rows.columns):
        bad = [c for c, f in enumerate(flags[i]) if f]
        clean = [c for c, f in enumerate(flags[i]) if not f and per_column[i][c]["rows"] > 0]
        if not bad or not clean:
            continue
        keep = ~np.isin(rows.codes[i], bad)
        rest = _total(weights, keep)
        if rest["rows"] and flagged(rest):
            continue
        explained: dict[str, Sums] = {}
        for j in range(len(rows.columns)):
            if j == i:
                continue
            residual = segment_sums(rows, weights, j, keep)
            if any(r["rows"] > 0 and flagged(r) for r in residual):
                break
            explained |= {rows.segment(j, c): residual[c] for c, f in enumerate(flags[j]) if f}
        else:
            removed = _total(weights, ~keep)["rows"]  # a "rows" weight counts grouped rows
            segments = tuple(sorted(rows.segment(i, c) for c in bad))
            cause = RootCause(column, segments, explained, rest)
            if best is None or removed < best[0]:
                best = (removed, cause)
    return None if best is None else best[1]


def segment_rows(columns: Sequence[str], values: Sequence[np.ndarray]) -> SegmentRows:
    """:class:`SegmentRows` from each column's per-row values (NULL is a value of its own)."""
    import pandas as pd

    codes, labels = [], []
    for v in values:
        c, u = pd.factorize(v, use_na_sentinel=False)
        codes.append(c)
        labels.append(tuple(str(x) for x in u))
    return SegmentRows(tuple(columns), tuple(codes), tuple(labels))
