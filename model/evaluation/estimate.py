"""Performance before the labels arrive: expected metrics of the served scores.

Labels of the deep stages take days to mature, so the metrics of a day's served scores are
known only once its maturity window closes. Until then they are *estimated*: the model (a
model directory, or the served model where it can be re-run) scores the warehouse's offline
features of the same impressions — the features the labels are drawn from — and that replayed
score ``r``, calibrated on matured rows (Platt scaling: realized label on ``logit(r)``), is each
impression's outcome probability ``p``. The served score ``s`` is then judged against ``p``:

- expected AUC, ties counted one half::

      E[AUC] = sum_i p_i sum_{j: s_j < s_i} (1 - p_j) / (sum p * sum (1 - p) - sum p (1 - p))

- expected log loss ``-mean(p log s + (1 - p) log(1 - s))`` and calibration ``sum s / sum p``.

This is NannyML's CBPE with the replayed score as the reference instead of the served score:
CBPE assumes the served scores are calibrated, which is exactly what a broken serving feature
breaks. The same expected metrics of ``r`` itself say what a clean serving path would give.

Intervals (95 %): labels sampled from ``p`` (independent Bernoulli draws: the Poisson-binomial
spread of the realized metric) with ``p`` recomputed from calibration parameters drawn from
the Platt fit's normal approximation, so calibration uncertainty is included. The paired gap
served minus replayed uses the same draws for both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Interval", "PlattCalibration", "fit_platt", "expected_auc", "expected_aucs",
           "expected_log_loss",
           "auc_of_ranks", "DayEstimate", "estimate_day", "CONFIDENCE"]

CONFIDENCE = 0.95
ESTIMATE_DRAWS = 40  # calibration draws for the expectation's interval
_EPS = 1e-7


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval (``low``/``high`` None: not measurable)."""

    est: float
    low: float | None = None
    high: float | None = None

    def covers(self, value: float) -> bool:
        return self.low is not None and self.high is not None and self.low <= value <= self.high

    def to_json(self) -> dict[str, float | None]:
        return {"est": self.est, "low": self.low, "high": self.high}


def _logit(r: np.ndarray) -> np.ndarray:
    r = np.clip(np.asarray(r, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(r) - np.log1p(-r)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class PlattCalibration:
    """``p = sigmoid(a + b * logit(r))`` fitted on matured rows, with the fit's covariance.

    Attributes:
        a, b: intercept and slope.
        cov: 2 x 2 covariance of (a, b) (inverse Fisher information).
        rows, positives: the matured rows it was fitted on.
    """

    a: float
    b: float
    cov: tuple[tuple[float, float], tuple[float, float]]
    rows: int
    positives: int

    def apply(self, r: np.ndarray, params: np.ndarray | None = None) -> np.ndarray:
        """Probabilities for replayed scores ``r`` (``params``: K x 2 draws -> K x n)."""
        z = _logit(r)
        if params is None:
            return _sigmoid(self.a + self.b * z)
        return _sigmoid(params[:, :1] + params[:, 1:2] * z[None, :])

    def draws(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """``k`` parameter draws (K x 2) from the fit's normal approximation."""
        return rng.multivariate_normal([self.a, self.b], np.asarray(self.cov), size=k,
                                       method="cholesky")

    def to_json(self) -> dict[str, Any]:
        return {"method": "platt", "a": self.a, "b": self.b, "rows": self.rows,
                "positives": self.positives,
                "se": [float(np.sqrt(self.cov[0][0])), float(np.sqrt(self.cov[1][1]))]}


def fit_platt(r: np.ndarray, y: np.ndarray, *, iterations: int = 50) -> PlattCalibration:
    """Logistic regression of ``y`` on ``logit(r)`` by Newton's method (a tiny ridge keeps a
    separable or constant sample finite).

    Args:
        r: replayed scores of matured rows.
        y: their realized labels (0/1).
    """
    z = _logit(r)
    y = np.asarray(y, dtype=np.float64)
    x = np.column_stack([np.ones_like(z), z])
    theta = np.array([0.0, 1.0])
    ridge = np.diag([1e-6, 1e-3])
    hessian = ridge
    for _ in range(iterations):
        p = _sigmoid(x @ theta)
        w = p * (1 - p)
        gradient = x.T @ (y - p) - ridge @ (theta - np.array([0.0, 1.0]))
        hessian = (x * w[:, None]).T @ x + ridge
        step = np.linalg.solve(hessian, gradient)
        theta = theta + step
        if np.max(np.abs(step)) < 1e-9:
            break
    cov = np.linalg.inv(hessian)
    return PlattCalibration(float(theta[0]), float(theta[1]),
                            ((float(cov[0, 0]), float(cov[0, 1])),
                             (float(cov[1, 0]), float(cov[1, 1]))),
                            len(y), int(y.sum()))


def expected_auc(s: np.ndarray, p: np.ndarray) -> float:
    """The AUC of scores ``s`` expected when each row is positive with probability ``p``
    (independently; ties count one half; see module doc). NaN without two rows."""
    return float(expected_aucs(s, np.asarray(p, dtype=np.float64)[None, :])[0])


def expected_aucs(s: np.ndarray, p: np.ndarray) -> np.ndarray:
    """:func:`expected_auc` of ``s`` for each row of ``p`` (K x n probability vectors)."""
    s = np.asarray(s, dtype=np.float64)
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    q = 1.0 - p
    denominator = p.sum(axis=1) * q.sum(axis=1) - (p * q).sum(axis=1)
    if len(s) < 2:
        return np.full(len(p), np.nan)
    values, group = np.unique(s, return_inverse=True)
    out = np.empty(len(p))
    for k in range(len(p)):
        q_by_value = np.bincount(group, weights=q[k], minlength=len(values))
        q_below = np.concatenate([[0.0], np.cumsum(q_by_value)[:-1]])
        # ties: the other rows of the same score count one half (a row is never its own pair)
        numerator = (p[k] * (q_below[group] + 0.5 * (q_by_value[group] - q[k]))).sum()
        out[k] = numerator / denominator[k] if denominator[k] > 0 else np.nan
    return out


def expected_log_loss(s: np.ndarray, p: np.ndarray) -> float:
    """``-mean(p log s + (1 - p) log(1 - s))`` (scores clipped away from 0 and 1)."""
    s = np.clip(np.asarray(s, dtype=np.float64), _EPS, 1 - _EPS)
    return float(-np.mean(p * np.log(s) + (1 - p) * np.log1p(-s)))


def auc_of_ranks(ranks: np.ndarray, y: np.ndarray) -> np.ndarray:
    """AUC per row of ``y`` (K x n, 0/1) for scores with average ``ranks`` (1-based, ties
    averaged): the Mann-Whitney form. NaN where a draw has no positive or no negative."""
    y = np.atleast_2d(y).astype(np.float64)
    n1 = y.sum(axis=1)
    n0 = y.shape[1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return (y @ ranks - n1 * (n1 + 1) / 2) / (n1 * n0)


def _ranks(s: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(s, method="average")


def _interval(samples: np.ndarray, est: float) -> Interval:
    samples = samples[np.isfinite(samples)]
    if len(samples) < 20:
        return Interval(est)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(samples, [tail, 1 - tail])
    return Interval(est, float(low), float(high))


@dataclass(frozen=True)
class DayEstimate:
    """One task's estimate on one partition.

    Attributes:
        task, day: the stage and the partition.
        rows: impressions with a served score and offline features.
        served_auc: expected AUC of the served scores, 95 % interval of the realized one
            (label and calibration draws).
        served_auc_estimate: the same expected AUC, 95 % interval from calibration draws
            alone: how well the expectation itself is known (what decisions use).
        replayed_auc: expected AUC of the replayed (offline-feature) scores, realized interval.
        gap_auc: expected AUC served minus replayed, interval from calibration draws (paired).
        served_log_loss, replayed_log_loss: expected log loss with intervals.
        calibration: ``sum s / sum p`` of the served scores, interval from calibration draws.
        expected_positives: ``sum p`` with its interval.
        realized_auc: the served scores' AUC on final labels once the day matured, else None.
        oracle_auc: the served scores' expected AUC under the true probabilities, where the
            project has an oracle table (simulated warehouses), else None.
        completion: the delay-aware completion of the day's labels, where known
            (``positive_rate``, ``calibration_ratio``, ``completed_share`` ...).
        served_draws, gap_draws: the expected served AUC and the gap under each calibration
            draw; the draws are shared by every day of a task, so days compare paired.
    """

    task: str
    day: dt.date
    rows: int
    served_auc: Interval
    served_auc_estimate: Interval
    replayed_auc: Interval
    gap_auc: Interval
    served_log_loss: Interval
    replayed_log_loss: Interval
    calibration: Interval
    expected_positives: Interval
    realized_auc: float | None = None
    oracle_auc: float | None = None
    completion: Mapping[str, Any] = field(default_factory=dict)
    served_draws: tuple[float, ...] = field(default=(), repr=False)
    gap_draws: tuple[float, ...] = field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"task": self.task, "partition": self.day.isoformat(),
                               "rows": self.rows}
        for name in ("served_auc", "served_auc_estimate", "replayed_auc", "gap_auc",
                     "served_log_loss",
                     "replayed_log_loss", "calibration", "expected_positives"):
            doc[name] = getattr(self, name).to_json()
        doc["realized_auc"] = self.realized_auc
        doc["oracle_auc"] = self.oracle_auc
        doc["completion"] = dict(self.completion)
        return doc


def estimate_day(task: str, day: dt.date, served: np.ndarray, replayed: np.ndarray,
                 calibration: PlattCalibration, params: np.ndarray, rng: np.random.Generator,
                 *, oracle: np.ndarray | None = None, realized: np.ndarray | None = None
                 ) -> DayEstimate:
    """Expected metrics of one day's served and replayed scores (see module doc).

    Args:
        task, day: what is estimated.
        served: the logged (served) scores, one per impression.
        replayed: the model's scores of the same impressions' offline features.
        calibration: the task's calibration (replayed score -> probability).
        params: K x 2 calibration parameter draws (:meth:`PlattCalibration.draws`), the same
            for every day of the task; one label draw per parameter draw.
        rng: the random stream of the label draws.
        oracle: true probabilities of the same impressions, where known.
        realized: final labels of the same impressions (NaN: not final), once the day matured.
    """
    ok = np.isfinite(served) & np.isfinite(replayed)
    s, r = served[ok], replayed[ok]
    p = calibration.apply(r)
    p_draws = calibration.apply(r, params)
    y = rng.random(p_draws.shape) < p_draws
    rank_s, rank_r = _ranks(s), _ranks(r)
    auc_s, auc_r = auc_of_ranks(rank_s, y), auc_of_ranks(rank_r, y)
    sc = np.clip(s, _EPS, 1 - _EPS)
    rc = np.clip(r, _EPS, 1 - _EPS)
    ll_s = -(y * np.log(sc) + (~y) * np.log1p(-sc)).mean(axis=1)
    ll_r = -(y * np.log(rc) + (~y) * np.log1p(-rc)).mean(axis=1)
    est_s, est_r = expected_auc(s, p), expected_auc(r, p)
    # the expectation's own uncertainty: calibration draws alone, no label noise
    p_some = p_draws[:ESTIMATE_DRAWS]
    e_s, e_r = expected_aucs(s, p_some), expected_aucs(r, p_some)
    sum_p = p_draws.sum(axis=1)
    return DayEstimate(
        task=task, day=day, rows=int(ok.sum()),
        served_auc=_interval(auc_s, est_s), served_auc_estimate=_interval(e_s, est_s),
        replayed_auc=_interval(auc_r, est_r), gap_auc=_interval(e_s - e_r, est_s - est_r),
        served_log_loss=_interval(ll_s, expected_log_loss(s, p)),
        replayed_log_loss=_interval(ll_r, expected_log_loss(r, p)),
        calibration=_interval(s.sum() / sum_p, float(s.sum() / p.sum())),
        expected_positives=_interval(sum_p, float(p.sum())),
        realized_auc=_realized_auc(s, None if realized is None else realized[ok]),
        oracle_auc=(expected_auc(s, np.asarray(oracle, dtype=np.float64)[ok])
                    if oracle is not None else None),
        served_draws=tuple(float(v) for v in e_s), gap_draws=tuple(float(v) for v in e_s - e_r))


def _realized_auc(s: np.ndarray, labels: np.ndarray | None) -> float | None:
    """The AUC of ``s`` on the final labels (NaN rows left out), None when not measurable."""
    if labels is None:
        return None
    labels = np.asarray(labels, dtype=np.float64)
    final = np.isfinite(labels)
    y = labels[final]
    if not 0 < y.sum() < len(y):
        return None
    return float(auc_of_ranks(_ranks(s[final]), y[None, :])[0])
