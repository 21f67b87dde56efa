"""Ranking and calibration metrics in numpy, vectorized over bootstrap replicates.

A :class:`ScoredSample` sorts the scores once and encodes every sum the six metrics need — the
negative weight below each tied group of scores that holds a positive, the positive weight in
it, the per-bin calibration gaps, the summed loss — as the columns of one sparse ``n x C``
matrix. A weight matrix ``Wt`` of shape ``n x B`` (one column of row weights per replicate: the
sample weights for the point estimate, sample weights times Poisson(1) counts for a bootstrap
replicate) then costs one sparse product ``M.T @ Wt`` (two non-zeros a row) and one dense
``4 x n`` product, and each metric is arithmetic on the small ``B x C`` result. Rows stay in the caller's order: no resampled copy, no per-replicate sort.

Undefined values are ``NaN`` here (no positives, no negatives, constant scores); the evaluation
layer turns them into ``None`` with a finding. Definitions (docs/evaluation.md):

- ``auc``: Mann-Whitney probability that a positive outranks a negative, ties count one half.
- ``pr_auc``: average precision, ``sum_k (R_k - R_{k-1}) P_k`` over distinct thresholds (as
  scikit-learn's ``average_precision_score``).
- ``log_loss``: mean ``-[y log p + (1 - y) log(1 - p)]``, ``p`` clipped to ``[1e-15, 1 - 1e-15]``.
- ``normalized_entropy``: log loss over the entropy of the observed base rate.
- ``calibration_ratio``: ``sum(p) / sum(y)`` (1 is calibrated; below 1 under-predicts).
- ``ece``: expected calibration error over equal-mass bins of the score,
  ``sum_b |sum_{i in b} (p_i - y_i)| / n`` (equal-width bins put a rare task's every score in
  the first bin).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

__all__ = [
    "METRICS",
    "EPS",
    "ScoredSample",
    "metric_values",
]

EPS = 1e-15
ECE_BINS = 10


METRICS: tuple[str, ...] = (
    "auc", "pr_auc", "log_loss", "normalized_entropy", "calibration_ratio", "ece",
)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return np.where(den > 0, out, np.nan)


@dataclass(frozen=True)
class ScoredSample:
    """One score vector against its labels, prepared for any number of weightings.

    Columns of ``matrix`` (``n x C``, rows in the caller's order), with ``K`` the number of
    tied-score groups that hold a positive, in ascending score order:
    ``[0, K]`` weight strictly between positive groups (``between_j`` lies below group ``j``;
    these rows are all negatives), ``[K+1, 2K]`` total weight of each positive group,
    ``[2K+1, 3K]`` positive weight of each positive group, then one ``p - y`` column per ECE
    bin, then ``loss``, ``p``, ``y``, ``1``.

    Attributes:
        n: rows.
        k: positive groups.
        n_bins: ECE bins.
        constant: every score is the same (ranking metrics are undefined).
        columns: the sparse part of the column map, transposed (``C' x n``): groups and bins.
        dense: the last four columns, transposed (``4 x n``).
    """

    n: int
    k: int
    n_bins: int
    constant: bool
    columns: sparse.csr_array
    dense: np.ndarray

    @classmethod
    def of(cls, y: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS) -> ScoredSample:
        """Prepare labels ``y`` (0/1) and finite scores ``p``, 1-D of the same length."""
        y = np.asarray(y, dtype=np.float64)
        p = np.asarray(p, dtype=np.float64)
        if y.shape != p.shape or y.ndim != 1:
            raise ValueError(f"y and p must be 1-D of equal length, got {y.shape} and {p.shape}")
        n = len(y)
        order = np.argsort(p, kind="mergesort")
        ps, ys = p[order], y[order]
        new_group = np.r_[True, ps[1:] != ps[:-1]] if n else np.zeros(0, bool)
        group = np.cumsum(new_group) - 1  # group id of each sorted row
        pos_groups = np.unique(group[ys > 0])
        k = len(pos_groups)
        # Sorted row -> column: rows of a positive group go to its total column; other rows
        # to the "between" column of the next positive group above them.
        rank_of_group = np.full(group.max() + 1 if n else 0, -1)
        rank_of_group[pos_groups] = np.arange(k)
        in_pos = rank_of_group[group] >= 0 if n else np.zeros(0, bool)
        next_pos = np.searchsorted(pos_groups, group, side="left")
        seg_col = np.where(in_pos, k + 1 + rank_of_group[group], next_pos)
        n_bins = min(n_bins, max(n, 1))
        bin_of = (np.arange(n) * n_bins) // max(n, 1)
        base = 3 * k + 1
        rows_sorted = np.arange(n)
        pc = np.clip(ps, EPS, 1.0 - EPS)
        loss = -(ys * np.log(pc) + (1.0 - ys) * np.log1p(-pc))
        pos_rows = np.flatnonzero(ys > 0)
        rows = np.concatenate([rows_sorted, pos_rows, rows_sorted])
        cols = np.concatenate([
            seg_col, 2 * k + 1 + rank_of_group[group[pos_rows]], base + bin_of,
        ])
        vals = np.concatenate([np.ones(n), np.ones(len(pos_rows)), ps - ys])
        columns = sparse.csr_array((vals, (cols, order[rows])), shape=(base + n_bins, n))
        dense = np.empty((4, n))
        dense[:, order] = np.stack([loss, ps, ys, np.ones(n)])
        return cls(n=n, k=k, n_bins=n_bins, constant=not n or bool(ps[0] == ps[-1]),
                   columns=columns, dense=dense)

    def sums(self, Wt: np.ndarray) -> np.ndarray:
        """Column sums for an ``n x B`` weight matrix (caller row order): ``B x C``."""
        Wt = np.ascontiguousarray(Wt, dtype=np.float64)
        # einsum, not BLAS: a threaded GEMM on a busy 2-core machine stalls for seconds here.
        return np.vstack([self.columns @ Wt, np.einsum("kn,nb->kb", self.dense, Wt)]).T

    def metrics(self, Wt: np.ndarray, names: tuple[str, ...] = METRICS) -> dict[str, np.ndarray]:
        """The named metrics for each column of ``Wt`` (``n x B``); NaN where undefined."""
        S = self.sums(Wt)
        k, base = self.k, 3 * self.k + 1
        loss_sum, p_sum, y_sum, w_sum = (S[:, base + self.n_bins + i] for i in range(4))
        out: dict[str, np.ndarray] = {}
        if {"auc", "pr_auc"} & set(names):
            between, total, gpos = S[:, :k + 1], S[:, k + 1:2 * k + 1], S[:, 2 * k + 1:base]
            gneg = total - gpos
            neg_below = np.cumsum(between[:, :k], axis=1) + np.cumsum(gneg, axis=1) - gneg
            pos_below = np.cumsum(gpos, axis=1) - gpos
            n_sum = w_sum - y_sum
            auc = _ratio(np.sum(gpos * (neg_below + 0.5 * gneg), axis=1), y_sum * n_sum)
            tp, fp = y_sum[:, None] - pos_below, n_sum[:, None] - neg_below
            precision = np.nan_to_num(_ratio(tp, tp + fp))
            ap = _ratio(np.sum(gpos * precision, axis=1), y_sum)
            out["auc"] = np.full_like(auc, np.nan) if self.constant else auc
            out["pr_auc"] = np.full_like(ap, np.nan) if self.constant else ap
        mean_loss = _ratio(loss_sum, w_sum)
        out["log_loss"] = mean_loss
        if "normalized_entropy" in names:
            rate = _ratio(y_sum, w_sum)
            with np.errstate(divide="ignore", invalid="ignore"):
                entropy = -(rate * np.log(rate) + (1.0 - rate) * np.log1p(-rate))
            out["normalized_entropy"] = _ratio(mean_loss, np.where(
                (rate > 0) & (rate < 1), entropy, np.nan))
        out["calibration_ratio"] = _ratio(p_sum, y_sum)
        gaps = S[:, base:base + self.n_bins]
        out["ece"] = _ratio(np.abs(gaps).sum(axis=1), w_sum)
        return {m: out[m] for m in names}


def metric_values(
    y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None, names: tuple[str, ...] = METRICS
) -> dict[str, float]:
    """Point estimates of the named metrics; NaN where undefined.

    Args:
        y: labels 0/1, length ``n``.
        p: probabilities, length ``n``.
        w: optional sample weights, length ``n`` (e.g. ``1 / rate`` for downsampled negatives).
        names: which of :data:`METRICS` to compute.
    """
    s = ScoredSample.of(y, p)
    Wt = np.ones((s.n, 1)) if w is None else np.asarray(w, dtype=np.float64)[:, None]
    return {m: float(v[0]) for m, v in s.metrics(Wt, names).items()}
