"""Serving-score replay: same data through the same model must give the same score.

For one partition, the logged serving features (the features contract's online table) and the
offline features of the same impressions (its offline table) are scored by one model — the one
that served them (``served``, where it can be re-run) or a candidate directory — and compared:

- *replayed vs logged*: the serving model on its own logged features must reproduce the logged
  score columns (role ``score``; a difference means the serving path and the training path
  compute different models: a preprocessing, version or numerics mismatch);
- *online vs offline*: scores from served features against scores from offline features — per
  task the score distributions, the mean absolute difference, and the share of impressions whose
  rank within their request moves by more than ``k`` positions (the request is the impressions
  contract's first ``id`` property that is not a model feature; without one, rank moves are not
  measured);
- *which features*: each feature that differs is swapped from offline into online on its own,
  and the drop in the mean absolute difference is that feature's contribution. A number
  feature differs only beyond the contract's tolerance (``numericTolerance`` absolute,
  ``relativeTolerance`` relative, the larger applies, as in :mod:`monitors.skew`), and only
  the rows beyond it are swapped, so legitimate streaming noise is never named a contributor.

Check names: ``score_replay_logged``, ``score_replay_skew``, ``score_replay_rank_moves``,
``score_replay_contributor`` (docs/evaluation.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from funnelguard.project import FEATURES, IMPRESSIONS
from model.evaluation.errors import EvaluationInputError
from model.evaluation.scorers import ResolvedScorer, version_column

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from funnelguard.project import Project

__all__ = ["ReplayFrames", "TaskReplay", "ScoreReplay", "load_replay_frames", "replay_scores",
           "differing", "swap_contributions", "request_column", "feature_tolerances",
           "QUANTILES"]

QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.99)


@dataclass(frozen=True)
class ReplayFrames:
    """One partition's impressions as served and as computed offline, row-aligned.

    Attributes:
        served: online rows (key, feature columns, logged score columns, model version).
        offline: offline rows of the same impressions, same order.
        request_id: the impression's request, same order (None: no request column, rank
            moves are not measured).
        ds: the partition.
        unmatched: served impressions without an offline row (left out).
        key: the key column of both frames.
        features: the feature columns compared (the model's inputs).
        score_columns: task -> logged score column of ``served``.
        version: the model-version column of ``served``, or None.
        unparseable: environment -> number column -> rows whose text is not a number
            (replayed as missing, NULL); only columns with such rows.
        tables: environment -> the features contract's table (for messages).
        tolerances: number feature -> (absolute, relative) tolerance of online vs offline
            equality from the contract (features without one compare exactly).
    """

    served: pd.DataFrame
    offline: pd.DataFrame
    request_id: np.ndarray | None
    ds: dt.date | None = None
    unmatched: int = 0
    key: str | None = None
    features: tuple[str, ...] = ()
    score_columns: Mapping[str, str] = field(default_factory=dict)
    version: str | None = None
    unparseable: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    tables: Mapping[str, str] = field(default_factory=dict)
    tolerances: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def model_version(self) -> str | None:
        if self.version is None or self.version not in self.served.columns or self.served.empty:
            return None
        return str(self.served[self.version].mode().iloc[0])

    def logged(self, tasks: tuple[str, ...]) -> dict[str, np.ndarray] | None:
        """Task -> logged score, or None unless every one of ``tasks`` was logged."""
        if not all(self.score_columns.get(t) in self.served.columns for t in tasks):
            return None
        return {t: self.served[self.score_columns[t]].to_numpy(dtype=np.float64) for t in tasks}

    @property
    def ids(self) -> np.ndarray:
        if self.key and self.key in self.served.columns:
            return self.served[self.key].to_numpy()
        return self.served.index.to_numpy()


def request_column(project: Project) -> str | None:
    """The impressions contract's request: its first ``id`` property that is not a feature."""
    features = {f.name for f in project.features.fields}
    for f in project.impressions.fields:
        if f.role == "id" and f.name not in features and not f.primary_key:
            return f.name
    return None


def _as_numbers(frame: pd.DataFrame, columns: list[str]) -> dict[str, int]:
    """Cast ``columns`` of ``frame`` to float in place; column -> rows whose value was text that
    is not a number (now NaN), for the columns that had any."""
    import pandas as pd

    bad = {}
    for name in columns:
        if name not in frame.columns or pd.api.types.is_numeric_dtype(frame[name]):
            continue
        raw = frame[name]
        numbers = pd.to_numeric(raw, errors="coerce")
        lost = int((numbers.isna() & raw.notna()).sum())
        frame[name] = numbers.astype("float64")
        if lost:
            bad[name] = lost
    return bad


def load_replay_frames(project: Project, engine: Engine, ds: dt.date) -> ReplayFrames:
    """Partition ``ds`` of the online table joined to the offline table and the impressions.

    A duplicated key (the ``duplicate_keys`` fault) keeps its first row. A model feature the
    online environment does not declare is taken from the offline row (it cannot differ). The
    contract's number columns (features and logged scores) are read as numbers; a cell of text
    that is not one is replayed as missing and counted in ``unparseable``.

    Raises:
        EvaluationInputError: the partition has no served rows, or none with offline features.
    """
    contract = project.features
    key = contract.key_column
    features = tuple(project.feature_names("offline"))
    online_names = set(project.feature_names("online"))
    scores = {t: c for t, c in project.score_columns.items() if t in project.tasks}
    version = version_column(project)
    wanted = [key, *[f for f in features if f in online_names], *scores.values(),
              *([version] if version else [])]
    online_table, offline_table = contract.table("online"), contract.table("offline")
    served = project.read(engine, FEATURES, "online", ds, columns=wanted)
    served = served.drop_duplicates(key)
    offline = project.read(engine, FEATURES, "offline", ds, columns=[key, *features])
    offline = offline.drop_duplicates(key).set_index(key)
    where = engine.url.render_as_string(hide_password=True)
    part = contract.partition_column
    if served.empty:
        raise EvaluationInputError(f"replay: expected {online_table} rows with {part} = {ds} in "
                                   f"{where}, found none")
    matched = served[key].isin(offline.index)
    if not matched.any():
        raise EvaluationInputError(
            f"replay: expected {offline_table} rows for the {len(served)} served impressions of "
            f"{ds} in {where}, found none")
    served = served.loc[matched].reset_index(drop=True)
    ids = served[key]
    offline = offline.loc[ids].reset_index()
    numeric = [f.name for f in contract.fields if f.name in features and f.is_numeric
               and f.role != "category"]
    unparseable = {env: bad for env, bad in (
        ("online", _as_numbers(served, [*numeric, *scores.values()])),
        ("offline", _as_numbers(offline, numeric))) if bad}
    for name in features:
        if name not in served.columns:
            served[name] = offline[name].to_numpy()
    request = request_column(project)
    request_id = None
    if request is not None:
        imp = project.impressions
        requests = project.read(engine, IMPRESSIONS, "offline", ds,
                                columns=[imp.key_column, request])
        requests = requests.drop_duplicates(imp.key_column).set_index(imp.key_column)
        request_id = requests[request].reindex(ids).fillna("").to_numpy()
    return ReplayFrames(served, offline, request_id, ds, int((~matched).sum()), key=key,
                        features=features, score_columns=scores, version=version,
                        unparseable=unparseable,
                        tables={"online": online_table, "offline": offline_table},
                        tolerances=feature_tolerances(project))


def feature_tolerances(project: Project) -> dict[str, tuple[float, float]]:
    """Number feature -> (absolute, relative) equality tolerance the features contract gives."""
    out = {}
    for f in project.features.fields:
        if f.is_numeric and (f.numeric_tolerance or f.relative_tolerance):
            out[f.name] = (float(f.numeric_tolerance or 0.0), float(f.relative_tolerance or 0.0))
    return out


def differing(online: pd.DataFrame, offline: pd.DataFrame, feature: str,
              tolerance: tuple[float, float] | None = None) -> np.ndarray:
    """Rows where ``feature`` differs between the two frames (NULL equals NULL).

    ``tolerance`` = ``(absolute, relative)``: numbers within ``max(absolute, relative *
    max(|a|, |b|))`` of each other are equal (the contract's tolerances); None: exact.
    """
    a, b = online[feature], offline[feature]
    if a.dtype == object or b.dtype == object:
        a, b = a.astype(object).where(a.notna(), None), b.astype(object).where(b.notna(), None)
        return (a.astype(str) != b.astype(str)).to_numpy()
    x, y = a.to_numpy(dtype=np.float64), b.to_numpy(dtype=np.float64)
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    if tolerance is not None and any(tolerance):
        abs_tol, rel_tol = tolerance
        with np.errstate(invalid="ignore", over="ignore"):
            limit = np.maximum(abs_tol, rel_tol * np.maximum(np.abs(x), np.abs(y)))
            # a hair of slack: a rounded value exactly at the tolerance is within it
            same |= np.isfinite(x) & np.isfinite(y) & (np.abs(x - y) <= limit * (1 + 1e-9))
    return ~same


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    d = np.abs(a - b)
    d = d[np.isfinite(d)]
    return float(d.mean()) if len(d) else float("nan")


def swap_contributions(
    scorer: ResolvedScorer, online: pd.DataFrame, offline: pd.DataFrame,
    base_online: Mapping[str, np.ndarray], base_offline: Mapping[str, np.ndarray],
    tasks: tuple[str, ...], features: tuple[str, ...],
    tolerances: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, dict[str, tuple[float, int]]]:
    """Per feature that differs: per task, the drop in mean |online - offline| score when that
    feature alone takes its offline value on the rows where it differs, and those rows.

    Args:
        tolerances: feature -> (absolute, relative) tolerance (:func:`differing`); a feature
            within it everywhere is not swapped, and rows within it keep their online value.

    Returns:
        ``{feature: {task: (reduction, rows_differing)}}``, features in contract order.
    """
    tolerances = tolerances or {}
    out: dict[str, dict[str, tuple[float, int]]] = {}
    for name in features:
        rows = differing(online, offline, name, tolerances.get(name))
        if not rows.any():
            continue
        swapped = online.copy()
        swapped[name] = np.where(rows, offline[name].to_numpy(), swapped[name].to_numpy())
        scores = scorer.predict(swapped, tasks)
        out[name] = {
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
        rank_moved_share: share of impressions whose rank in their request moves by more than k
            (None: no request column).
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
    rank_moved_share: float | None
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
    partition_column: str | None = None

    def to_json(self) -> dict[str, Any]:
        partition = self.ds.isoformat() if self.ds else None
        return {"model": self.model, "serves": self.serves, "partition": partition,
                **({self.partition_column: partition} if self.partition_column else {}),
                "rank_k": self.rank_k,
                "logged_tolerance": self.logged_tolerance,
                "tasks": [t.to_json() for t in self.tasks]}


def replay_scores(scorer: ResolvedScorer, frames: ReplayFrames, *, rank_k: int = 1,
                  logged_tolerance: float = 1e-6, tasks: tuple[str, ...] | None = None,
                  partition_column: str | None = None) -> ScoreReplay:
    """Score served and offline features with ``scorer`` and compare (see module doc).

    Args:
        scorer: a model that can be run on any feature values (``rescorable``).
        frames: the partition's online and offline rows.
        rank_k: a rank move of more than ``k`` positions counts as moved.
        logged_tolerance: largest replayed-vs-logged difference of the serving model.
        tasks: the stages to replay (default: the scorer's).
        partition_column: the name the JSON document also gives the partition.

    Raises:
        EvaluationInputError: the scorer cannot be re-run on the offline features.
    """
    if not scorer.rescorable:
        raise EvaluationInputError(
            f"replay: model {scorer.name} is known only by its logged scores and cannot be "
            f"re-run on the offline features; pass a model directory (`funnelguard train --out "
            f"DIR`) as --model")
    tasks = tuple(tasks or scorer.tasks or frames.score_columns)
    features = list(frames.features)
    online, offline = frames.served[features], frames.offline[features]
    s_on, s_off = scorer.predict(online, tasks), scorer.predict(offline, tasks)
    logged = frames.logged(tasks)
    contributions = swap_contributions(scorer, online, offline, s_on, s_off, tasks,
                                       frames.features, frames.tolerances)
    ids = frames.ids
    out = []
    for t in tasks:
        mad = _mad(s_on[t], s_off[t])
        mean_off = float(np.nanmean(s_off[t])) if len(s_off[t]) else float("nan")
        moved = (None if frames.request_id is None else
                 _rank_moves(frames.request_id, s_on[t], s_off[t]) > rank_k)
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
            rank_moved_share=(None if moved is None else float(moved.mean()) if len(moved)
                              else 0.0),
            distributions=dists, contributions=tuple(ranked)))
    return ScoreReplay(scorer.name, scorer.serves, frames.ds, rank_k, logged_tolerance, tuple(out),
                       partition_column)
