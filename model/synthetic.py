"""TrainingSet-shaped frames with known truth, for tests and benchmarks of the model.

The training-set builder (``model.trainset``) reads a warehouse; tests of the network, the
guard and the triage need frames of a chosen size in milliseconds, and the throughput benchmark
needs 100k-row id vocabularies. :func:`synthetic_training_set` produces the columns a training
set has (the project's key, partition and event-time columns, every feature of the project's
features contract, ``label_{task}`` and ``mask_{task}`` per funnel stage, ``split``) with nested
outcomes that depend on the features. The features, stages, maturity windows, key and personal
columns come from a project (default: the packaged demo project) or from explicit arguments.

On the packaged demo project's features (the shape the model tests and benchmarks were tuned
on) the values follow hand-written distributions of those features; on any other features a
generic generator draws from each feature's kind, range and categories.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from funnelguard.project import Project
    from funnelguard.warehouse import FeatureSpec

__all__ = ["SyntheticSet", "synthetic_training_set"]

# The packaged demo features the hand-written generator knows (its own simulated shape).
_DEMO_SHAPE = frozenset({
    "user_id", "item_id", "merchant_id", "credit_score", "credit_utilization", "annual_income",
    "num_open_accounts", "num_recent_inquiries", "account_age_days", "days_since_last_visit",
    "user_ctr_30d", "item_type", "item_apr", "merchant_approval_rate_90d", "approval_odds",
    "hour_of_day", "device_type", "position"})


@dataclass(frozen=True)
class SyntheticSet:
    """Duck-type of ``model.trainset.TrainingSet`` plus what a project would otherwise say.

    ``truth`` holds, per task, each row's true unconditional probability (the known truth a
    calibration test compares the model with), in frame order. ``features`` and ``pii`` are
    the catalogue :func:`model.job.run_training` uses when no project is passed.
    """

    frame: pd.DataFrame
    as_of: dt.date
    tasks: tuple[str, ...] = ()
    downsample_rate: float | None = None
    description: dict[str, Any] = field(default_factory=dict)
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    features: tuple[FeatureSpec, ...] = ()
    pii: frozenset[str] = frozenset()
    key: str = ""
    partition: str = ""
    event_time: str = ""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _packaged() -> Project:
    from funnelguard.project import PACKAGED_PROJECT, load_project

    return load_project(PACKAGED_PROJECT)


def synthetic_training_set(rows: int = 20000, *, seed: int = 0, ids: int = 5000,
                           days: int = 10, holdout_share: float = 0.15,
                           default_share: float = 0.02,
                           as_of: dt.date = dt.date(2026, 10, 25),
                           project: Project | None = None,
                           features: Sequence[FeatureSpec] | None = None,
                           tasks: Sequence[str] | None = None,
                           maturity: Mapping[str, float] | None = None) -> SyntheticSet:
    """Build a synthetic training set.

    Args:
        rows: examples.
        seed: random seed (same seed, same frame).
        ids: distinct values of the first id feature (the others: ids // 10, ids // 50, >= 5).
        days: days before ``as_of`` the rows spread over (ordered by event time).
        holdout_share: the latest share of rows marked ``holdout``.
        default_share: share of each numeric feature replaced by its default sentinel.
        as_of: the as-of date.
        project: where features, stages, maturity windows, key and personal columns come from
            (None: the packaged demo project).
        features, tasks, maturity: override the project's feature specs, stages and maturity
            days per stage.
    """
    project = project or _packaged()
    specs = tuple(features if features is not None else project.feature_specs("offline"))
    stages = tuple(tasks if tasks is not None else project.tasks)
    windows = dict(maturity) if maturity is not None else \
        {t: project.labels.maturity_window(t).days for t in project.tasks}
    columns = (project.key_column, project.features.partition_column, project.event_time)
    pii = frozenset(f.name for c in project.contracts.values() for f in c.fields if f.pii)
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(as_of - dt.timedelta(days=days), tz="UTC")
    event_ts = start + pd.to_timedelta(np.sort(rng.uniform(0, days * 86400, rows)), unit="s")
    if {s.name for s in specs} == _DEMO_SHAPE and len(stages) == 4:
        values, probs, sentinels = _demo_values(rng, rows, ids, event_ts,
                                                {s.name: s for s in specs})
    else:
        values, probs, sentinels = _generic_values(rng, rows, ids, specs, len(stages))
    key, partition, event_time = columns
    frame = pd.DataFrame({key: [f"imp{seed}-{i}" for i in range(rows)],
                          partition: event_ts.date, event_time: event_ts,
                          **{s.name: values[s.name] for s in specs}})
    reached, truth, p_any = np.ones(rows, bool), {}, np.ones(rows)
    outcomes = []
    for task, p in zip(stages, probs, strict=False):
        reached = reached & (rng.random(rows) < p)
        p_any = p_any * p
        outcomes.append(reached)
        truth[task] = np.asarray(p_any, dtype=np.float64)
    for name, default in sentinels:  # drawn after the outcomes: the outcomes saw true values
        hit = rng.random(rows) < default_share
        if frame[name].dtype != object and isinstance(default, str):
            frame[name] = frame[name].astype(object)
        frame.loc[hit, name] = default
    age = (pd.Timestamp(as_of, tz="UTC") - frame[event_time]).dt.total_seconds() / 86400
    # As the builder does: a row is known once its window has closed; an immature row is
    # masked even when its event already loaded early (label 1.0 under a False mask).
    loaded_early = rng.random(rows) < 0.5
    for task, outcome in zip(stages, outcomes, strict=True):
        mask = (age >= float(windows.get(task, 1.0))).to_numpy()
        if not mask.any():
            mask = rng.random(rows) < 0.5
        frame[f"label_{task}"] = (outcome & (mask | loaded_early)).astype(np.float64)
        frame[f"mask_{task}"] = mask
    frame["split"] = np.where(np.arange(rows) >= int(rows * (1 - holdout_share)), "holdout",
                              "train")
    description = {"synthetic": True, "rows": {"total": rows}, "seed": seed,
                   "project": project.name}
    return SyntheticSet(frame, as_of, stages, None, description, truth, specs,
                        pii & ({s.name for s in specs} | {key}), key, partition, event_time)


def _zipf_ids(rng: np.random.Generator, n: int, prefix: str, count: int) -> np.ndarray:
    ranks = np.minimum(rng.zipf(1.3, n), count) - 1
    return np.char.add(prefix, ranks.astype(str)).astype(object)


Values = tuple[dict[str, Any], list[np.ndarray], list[tuple[str, Any]]]


def _demo_values(rng: np.random.Generator, n: int, ids: int, event_ts: pd.DatetimeIndex,
                 spec: Mapping[str, FeatureSpec]) -> Values:
    """The packaged demo's features, drawn as the model tests and benchmarks were tuned on."""
    f: dict[str, Any] = {
        "user_id": _zipf_ids(rng, n, "u", ids), "item_id": _zipf_ids(rng, n, "i", max(ids // 10, 5)),
        "merchant_id": _zipf_ids(rng, n, "m", max(ids // 50, 5)),
        "credit_score": rng.integers(300, 851, n),
        "credit_utilization": rng.beta(2, 3, n),
        "annual_income": rng.lognormal(11, 0.5, n),
        "num_open_accounts": rng.poisson(4, n),
        "num_recent_inquiries": rng.poisson(1, n),
        "account_age_days": rng.integers(0, 5000, n),
        "days_since_last_visit": rng.geometric(0.2, n) - 1,
        "user_ctr_30d": rng.beta(1, 25, n),
        "item_type": rng.choice(spec["item_type"].categories, n).astype(object),
        "item_apr": rng.uniform(0, 40, n),
        "merchant_approval_rate_90d": rng.beta(5, 5, n),
        "approval_odds": rng.beta(2, 5, n),
        "hour_of_day": np.asarray(event_ts.hour),
        "device_type": rng.choice(spec["device_type"].categories, n).astype(object),
        "position": rng.integers(1, 21, n),
    }
    x = pd.DataFrame(f)
    z = 0.02 * (20 - x["position"]) + 8 * x["user_ctr_30d"] + 0.5 * (x["device_type"] == "ios")
    probs = [_sigmoid(-3.6 + z).to_numpy(),
             _sigmoid(-1.0 + 2 * x["approval_odds"] - 0.02 * x["item_apr"]).to_numpy(),
             _sigmoid(-1.5 + 3 * x["approval_odds"] + 0.002 * (x["credit_score"] - 600)).to_numpy(),
             _sigmoid(-0.5 + 2 * x["approval_odds"] - x["credit_utilization"]).to_numpy()]
    sentinels = [(name, spec[name].default) for name in (
        "credit_score", "credit_utilization", "annual_income", "approval_odds", "user_ctr_30d",
        "item_apr")]
    return f, probs, sentinels


def _generic_values(rng: np.random.Generator, n: int, ids: int, specs: Sequence[FeatureSpec],
                    stages: int) -> Values:
    """Values from each feature's kind, range and categories; stages depend on a few of them."""
    values: dict[str, Any] = {}
    signal = np.zeros((stages, n))
    id_count = ids
    for s in specs:
        if s.kind == "id":
            values[s.name] = _zipf_ids(rng, n, s.name[:1], max(id_count, 5))
            id_count //= 10
            continue
        if s.kind == "category":
            cats = s.categories or ("a", "b", "c")
            v = rng.choice(cats, n).astype(object)
            effect = rng.normal(0, 0.4, (stages, len(cats)))
            signal += effect[:, pd.Index(cats).get_indexer(v)]
        else:
            low = 0.0 if s.low is None else float(s.low)
            high = low + 100.0 if s.high is None else float(s.high)
            v = rng.uniform(low, high, n)
            v = np.round(v).astype(np.int64) if s.kind == "int" else v
            signal += rng.normal(0, 0.5, (stages, 1)) * (v - (low + high) / 2) / (high - low + 1e-9)
        values[s.name] = v
    probs = [_sigmoid(-1.5 + signal[i]) for i in range(stages)]
    sentinels = [(s.name, s.default) for s in specs if s.kind != "id" and s.default is not None]
    return values, probs, sentinels
