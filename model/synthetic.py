"""A TrainingSet-shaped frame with known truth, for tests and benchmarks of the model.

The training-set builder (``model.trainset``) reads a simulated warehouse; tests of the network,
the guard and the triage need frames of a chosen size in milliseconds, and the throughput
benchmark needs 100k-row id vocabularies. :func:`synthetic_training_set` produces the same
columns (``impression_id, ds, event_ts``, every feature of ``funnelguard.warehouse.FEATURES``,
``label_{task}``, ``mask_{task}``, ``split``) with nested outcomes that depend on the features.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from funnelguard.warehouse import DEVICE_TYPES, ITEM_TYPES, TASKS

__all__ = ["SyntheticSet", "synthetic_training_set"]


@dataclass(frozen=True)
class SyntheticSet:
    """Duck-type of ``model.trainset.TrainingSet`` (frame, as_of, tasks, rate, description).

    ``truth`` holds, per task, each row's true unconditional probability (the known truth a
    calibration test compares the model with), in frame order.
    """

    frame: pd.DataFrame
    as_of: dt.date
    tasks: tuple[str, ...] = TASKS
    downsample_rate: float | None = None
    description: dict[str, Any] = field(default_factory=dict)
    truth: dict[str, np.ndarray] = field(default_factory=dict)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def synthetic_training_set(rows: int = 20000, *, seed: int = 0, ids: int = 5000,
                           days: int = 10, holdout_share: float = 0.15,
                           default_share: float = 0.02,
                           as_of: dt.date = dt.date(2026, 10, 25)) -> SyntheticSet:
    """Build a synthetic training set.

    Args:
        rows: examples.
        seed: random seed (same seed, same frame).
        ids: distinct users (items: ids // 10, merchants: ids // 50, at least 5).
        days: days before ``as_of`` the rows spread over (ordered by ``event_ts``).
        holdout_share: the latest share of rows marked ``holdout``.
        default_share: share of each numeric feature replaced by its default sentinel.
        as_of: the as-of date.
    """
    rng = np.random.default_rng(seed)
    n = rows

    def zipf_ids(prefix: str, count: int) -> np.ndarray:
        ranks = np.minimum(rng.zipf(1.3, n), count) - 1
        return np.char.add(prefix, ranks.astype(str)).astype(object)

    start = pd.Timestamp(as_of - dt.timedelta(days=days), tz="UTC")
    event_ts = start + pd.to_timedelta(np.sort(rng.uniform(0, days * 86400, n)), unit="s")
    f: dict[str, Any] = {
        "user_id": zipf_ids("u", ids), "item_id": zipf_ids("i", max(ids // 10, 5)),
        "merchant_id": zipf_ids("m", max(ids // 50, 5)),
        "credit_score": rng.integers(300, 851, n),
        "credit_utilization": rng.beta(2, 3, n),
        "annual_income": rng.lognormal(11, 0.5, n),
        "num_open_accounts": rng.poisson(4, n),
        "num_recent_inquiries": rng.poisson(1, n),
        "account_age_days": rng.integers(0, 5000, n),
        "days_since_last_visit": rng.geometric(0.2, n) - 1,
        "user_ctr_30d": rng.beta(1, 25, n),
        "item_type": rng.choice(ITEM_TYPES, n).astype(object),
        "item_apr": rng.uniform(0, 40, n),
        "merchant_approval_rate_90d": rng.beta(5, 5, n),
        "approval_odds": rng.beta(2, 5, n),
        "hour_of_day": np.asarray(event_ts.hour),
        "device_type": rng.choice(DEVICE_TYPES, n).astype(object),
        "position": rng.integers(1, 21, n),
    }
    frame = pd.DataFrame({"impression_id": [f"imp{seed}-{i}" for i in range(n)],
                          "ds": event_ts.date, "event_ts": event_ts, **f})
    z = (0.02 * (20 - frame["position"]) + 8 * frame["user_ctr_30d"]
         + 0.5 * (frame["device_type"] == "ios"))
    p_click = _sigmoid(-3.6 + z)
    p_app = _sigmoid(-1.0 + 2 * frame["approval_odds"] - 0.02 * frame["item_apr"])
    p_conv = _sigmoid(-1.5 + 3 * frame["approval_odds"] + 0.002 * (frame["credit_score"] - 600))
    p_appr = _sigmoid(-0.5 + 2 * frame["approval_odds"] - frame["credit_utilization"])
    click = rng.random(n) < p_click
    app = click & (rng.random(n) < p_app)
    conv = app & (rng.random(n) < p_conv)
    appr = conv & (rng.random(n) < p_appr)
    for spec_name, default in (("credit_score", -1), ("credit_utilization", -1.0),
                               ("annual_income", -1.0), ("approval_odds", 0.0),
                               ("user_ctr_30d", 0.0), ("item_apr", -1.0)):
        hit = rng.random(n) < default_share
        frame.loc[hit, spec_name] = default
    age = (pd.Timestamp(as_of, tz="UTC") - frame["event_ts"]).dt.total_seconds() / 86400
    maturity = {"click": 1.0, "application": 3.0, "conversion": 14.0, "approval": 14.0}
    # As the builder does: a row is known once its window has closed; an immature row is
    # masked even when its event already loaded early (label 1.0 under a False mask).
    loaded_early = rng.random(n) < 0.5
    for task, outcome in zip(TASKS, (click, app, conv, appr), strict=True):
        mask = (age >= maturity[task]).to_numpy()
        if not mask.any():
            mask = rng.random(n) < 0.5
        frame[f"label_{task}"] = (outcome & (mask | loaded_early)).astype(np.float64)
        frame[f"mask_{task}"] = mask
    split = np.where(np.arange(n) >= int(n * (1 - holdout_share)), "holdout", "train")
    frame["split"] = split
    description = {"synthetic": True, "rows": {"total": n}, "seed": seed}
    p_app_u = p_click * p_app
    p_conv_u = p_app_u * p_conv
    truth = {t: np.asarray(p, dtype=np.float64) for t, p in zip(
        TASKS, (p_click, p_app_u, p_conv_u, p_conv_u * p_appr), strict=True)}
    return SyntheticSet(frame, as_of, TASKS, None, description, truth)
