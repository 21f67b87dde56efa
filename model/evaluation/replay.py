"""Serving-score replay: same data through the same model must give the same score.

For one partition, the logged serving features (``serving_log``) and the offline features of the
same impressions (``offline_features``) are scored by one model — the one that served them
(``served``, the stand-in production model) or a candidate directory — and compared:

- *replayed vs logged*: the serving model on its own logged features must reproduce the logged
  ``score_*`` (a difference means the serving path and the training path compute different
  models: a preprocessing, version or numerics mismatch);
- *online vs offline*: scores from served features against scores from offline features — per
  task the score distributions, the mean absolute difference, and the share of impressions whose
  rank within their request moves by more than ``k`` positions;
- *which features*: each feature that differs is swapped from offline into online on its own,
  and the drop in the mean absolute difference is that feature's contribution.

Check names: ``score_replay_logged``, ``score_replay_skew``, ``score_replay_rank_moves``,
``score_replay_contributor`` (docs/evaluation.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from funnelguard.warehouse import FEATURES, TASKS, feature_names, read_partition
from model.evaluation.errors import EvaluationInputError
from model.evaluation.scorers import ResolvedScorer

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

__all__ = ["ReplayFrames", "TaskReplay", "ScoreReplay", "load_replay_frames", "replay_scores",
           "differing", "swap_contributions", "QUANTILES"]

QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.99)


@dataclass(frozen=True)
class ReplayFrames:
    """One partition's impressions as served and as computed offline, row-aligned.

    Attributes:
        served: ``serving_log`` rows (feature columns, ``score_*``, ``model_version``).
        offline: ``offline_features`` rows of the same impressions, same order.
        request_id: the impression's request (from ``impressions``), same order.
        ds: the partition.
        unmatched: served impressions without an offline row (left out).
    """

    served: pd.DataFrame
    offline: pd.DataFrame
    request_id: np.ndarray
    ds: dt.date | None = None
    unmatched: int = 0

    @property
    def model_version(self) -> str | None:
        if "model_version" not in self.served.columns or self.served.empty:
            return None
        return str(self.served["model_version"].mode().iloc[0])

    @property
    def logged(self) -> dict[str, np.ndarray] | None:
        if not all(f"score_{t}" in self.served.columns for t in TASKS):
            return None
        return {t: self.served[f"score_{t}"].to_numpy(dtype=np.float64) for t in TASKS}


def load_replay_frames(engine: Engine, ds: dt.date) -> ReplayFrames:
    """Partition ``ds`` of ``serving_log`` joined to ``offline_features`` and ``impressions``.

    Duplicate impression ids (the ``duplicate_keys`` fault) keep their first row.

    Raises:
        EvaluationInputError: the partition has no served rows, or none with offline features.
    """
    features = feature_names()
    served = read_partition(engine, "serving_log", ds).drop_duplicates("impression_id")
    offline = read_partition(engine, "offline_features", ds, ["impression_id", *features])
    offline = offline.drop_duplicates("impression_id").set_index("impression_id")
    requests = read_partition(engine, "impressions", ds, ["impression_id", "request_id"])
    requests = requests.drop_duplicates("impression_id").set_index("impression_id")
    where = engine.url.render_as_string(hide_password=True)
    if served.empty:
        raise EvaluationInputError(f"replay: expected serving_log rows with ds = {ds} in {where}, "
                                   f"found none")
    matched = served["impression_id"].isin(offline.index)
    if not matched.any():
        raise EvaluationInputError(
            f"replay: expected offline_features rows for the {len(served)} served impressions of "
            f"{ds} in {where}, found none")
    served = served.loc[matched].reset_index(drop=True)
    ids = served["impression_id"]
    request_id = requests["request_id"].reindex(ids).fillna("").to_numpy()
    return ReplayFrames(served, offline.loc[ids].reset_index(), request_id, ds,
                        int((~matched).sum()))


def differing(online: pd.DataFrame, offline: pd.DataFrame, feature: str) -> np.ndarray:
    """Rows where ``feature`` differs between the two frames (NULL equals NULL)."""
    a, b = online[feature], offline[feature]
    if a.dtype == object or b.dtype == object:
        a, b = a.astype(object).where(a.notna(), None), b.astype(object).where(b.notna(), None)
        return (a.astype(str) != b.astype(str)).to_numpy()
    x, y = a.to_numpy(dtype=np.float64), b.to_numpy(dtype=np.float64)
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    return ~same


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    d = np.abs(a - b)
    d = d[np.isfinite(d)]
    return float(d.mean()) if len(d) else float("nan")


def swap_contributions(
    scorer: ResolvedScorer, online: pd.DataFrame, offline: pd.DataFrame,
    base_online: Mapping[str, np.ndarray], base_offline: Mapping[str, np.ndarray],
    tasks: tuple[str, ...] = TASKS,
) -> dict[str, dict[str, tuple[float, int]]]:
    """Per feature that differs: per task, the drop in mean |online - offline| score when that
    feature alone takes its offline value, and the rows where it differs.

    Returns:
        ``{feature: {task: (reduction, rows_differing)}}``, features in warehouse order.
    """
    out: dict[str, dict[str, tuple[float, int]]] = {}
    for spec in FEATURES:
        rows = differing(online, offline, spec.name)
        if not rows.any():
            continue
        swapped = online.copy()
        swapped[spec.name] = offline[spec.name].to_numpy()
        scores = scorer.predict(swapped, tasks)
        out[spec.name] = {
            t: (_mad(base_online[t], base_offline[t]) - _mad(scores[t], base_offline[t]),
                int(rows.sum()))
            for t in tasks}
    return out


def _rank_moves(request_id: np.ndarray, online: np.ndarray, offline: np.ndarray) -> np.ndarray:
    """Absolute change of each impression's rank (by descending score) within its request."""
    import pandas as pd

    frame = pd.DataFrame({"r": request_id, "on": online, "off": offline})
    by = frame.groupby("r", sort=False)
    return np.abs(by["on"].rank(ascending=False, method="first").to_numpy()
                  - by["off"].rank(ascending=False, method="first").to_numpy())


def _quantiles(x: np.ndarray) -> dict[str, float]:
    x = x[np.isfinite(x)]
    if not len(x):
        return {}
    return {"mean": float(x.mean()),
            **{f"q{int(q * 100):02d}": float(v) for q, v in zip(QUANTILES, np.quantile(x, QUANTILES),
                                                             strict=True)}}


@dataclass(frozen=True)
class TaskReplay:
    """One task's replay numbers.

    Attributes:
        task: the model task.
        rows: impressions compared.
        logged_mad, logged_max: mean and largest ``|replayed - logged|`` (None without logs).
        logged_off: impressions whose replayed score differs from the logged one beyond tolerance.
        worst_logged: a few impression ids with the largest replayed-vs-logged difference.
        skew_mad: mean ``|online - offline|`` score.
        skew_relative: ``skew_mad`` over the mean offline score.
        rank_moved_share: share of impressions whose rank in their request moves by more than k.
        distributions: ``logged`` / ``online`` / ``offline`` -> mean and quantiles.
        contributions: ``(feature, reduction, share of skew_mad, rows differing)``, largest first.
    """

    task: str
    rows: int
    logged_mad: float | None
    logged_max: float | None
    logged_off: int
    worst_logged: tuple[str, ...]
    skew_mad: float
    skew_relative: float
    rank_moved_share: float
    distributions: Mapping[str, Mapping[str, float]]
    contributions: tuple[tuple[str, float, float, int], ...]

    @property
    def main_contributor(self) -> str | None:
        return self.contributions[0][0] if self.contributions else None

    def to_json(self) -> dict[str, Any]:
        doc = {k: getattr(self, k) for k in ("task", "rows", "logged_mad", "logged_max",
                                             "logged_off", "skew_mad", "skew_relative",
                                             "rank_moved_share")}
        doc["worst_logged"] = list(self.worst_logged)
        doc["distributions"] = {k: dict(v) for k, v in self.distributions.items()}
        doc["contributions"] = [{"feature": f, "reduction": r, "share": s, "rows": n}
                                for f, r, s, n in self.contributions]
        return doc


@dataclass(frozen=True)
class ScoreReplay:
    """The replay of one partition with one model."""

    model: str
    serves: bool
    ds: dt.date | None
    rank_k: int
    logged_tolerance: float
    tasks: tuple[TaskReplay, ...]

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "serves": self.serves,
                "ds": self.ds.isoformat() if self.ds else None, "rank_k": self.rank_k,
                "logged_tolerance": self.logged_tolerance,
                "tasks": [t.to_json() for t in self.tasks]}


def replay_scores(scorer: ResolvedScorer, frames: ReplayFrames, *, rank_k: int = 1,
                  logged_tolerance: float = 1e-6, tasks: tuple[str, ...] = TASKS) -> ScoreReplay:
    """Score served and offline features with ``scorer`` and compare (see module doc)."""
    features = feature_names()
    online, offline = frames.served[features], frames.offline[features]
    s_on, s_off = scorer.predict(online, tasks), scorer.predict(offline, tasks)
    logged = frames.logged
    contributions = swap_contributions(scorer, online, offline, s_on, s_off, tasks)
    ids = frames.served["impression_id"].to_numpy()
    out = []
    for t in tasks:
        mad = _mad(s_on[t], s_off[t])
        mean_off = float(np.nanmean(s_off[t])) if len(s_off[t]) else float("nan")
        moved = _rank_moves(frames.request_id, s_on[t], s_off[t]) > rank_k
        dists = {"online": _quantiles(s_on[t]), "offline": _quantiles(s_off[t])}
        logged_mad = logged_max = None
        logged_off, worst = 0, ()
        if logged is not None:
            diff = np.abs(s_on[t] - logged[t])
            diff = np.where(np.isfinite(diff), diff, np.inf)
            logged_mad, logged_max = _mad(s_on[t], logged[t]), float(diff.max())
            logged_off = int((diff > logged_tolerance).sum())
            worst = tuple(str(i) for i in ids[np.argsort(-diff, kind="stable")[:min(5, logged_off)]])
            dists["logged"] = _quantiles(logged[t])
        ranked = sorted(((f, red[t][0], red[t][0] / mad if mad > 0 else 0.0, red[t][1])
                         for f, red in contributions.items()), key=lambda c: -c[1])
        out.append(TaskReplay(
            task=t, rows=len(online), logged_mad=logged_mad, logged_max=logged_max,
            logged_off=logged_off, worst_logged=worst, skew_mad=mad,
            skew_relative=mad / mean_off if mean_off > 0 else float("nan"),
            rank_moved_share=float(moved.mean()) if len(moved) else 0.0, distributions=dists,
            contributions=tuple(ranked)))
    return ScoreReplay(scorer.name, scorer.serves, frames.ds, rank_k, logged_tolerance, tuple(out))
