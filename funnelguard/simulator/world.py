"""The clean simulated world: who sees what, when, and every feature's true value on any day.

Users, items and merchants are integer keys drawn from Zipf-like (discrete Lomax) laws, with new
keys every day (sign-up and new-listing cohorts). An entity's attributes come from a keyed hash
of (seed, attribute, key), never from a random stream, so a user's features are consistent
across days, evolve slowly with the day, and can be evaluated on *any* day: that is how
``stale_online`` serves "the value as it was lag_days earlier". Per-impression randomness
(volume, time of day, positions, device switches, the streaming noise of the online CTR, the
upstream ``approval_odds`` outage) comes from the main random stream ``default_rng(seed)``.

Offline and online values are two code paths for one logical feature (docs/data.md):
``user_ctr_30d`` online = offline + streaming-approximation noise (|delta| <= 0.005);
``merchant_approval_rate_90d`` online = the previous day's batch value (|delta| <= 0.01);
``account_age_days`` online = offline - 1 (floor 0) for impressions in the first UTC hour.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from funnelguard.simulator.schema import DEVICE_TYPES, ITEM_TYPES

__all__ = [
    "WEEKLY_FACTOR",
    "ImpressionDraw",
    "draw_impressions",
    "feature_values",
    "CTR_NOISE_BOUND",
    "key_text",
]

# Monday..Sunday multipliers of --per-day (mean 1.0, within +-12 %).
WEEKLY_FACTOR = np.array([1.04, 1.07, 1.08, 1.05, 0.98, 0.88, 0.90])
_HOURS = np.arange(24)
DIURNAL = 1.0 + 0.8 * np.cos(2 * np.pi * (_HOURS - 20) / 24)
DIURNAL = DIURNAL / DIURNAL.sum()
CTR_NOISE_BOUND = 0.0049
_ITEM_TYPE_SHARE = np.array([0.40, 0.25, 0.15, 0.08, 0.12])
_DEVICE_SHARE = np.array([0.40, 0.35, 0.25])
_APR_RANGE = {"card": (15.0, 30.0), "personal_loan": (6.0, 36.0), "auto_loan": (3.0, 15.0),
              "mortgage": (3.0, 8.0), "insurance": (0.0, 5.0)}
NEW_USER_BASE = 10**9
NEW_ITEM_BASE = 10**8
NEW_MERCHANT_BASE = 10**7
US_PER_DAY = 86_400 * 10**6


# ---- keyed hashing: attributes that are a pure function of (seed, attribute, key) -------------

def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hashed_uniform(seed: int, salt: int, *keys: np.ndarray) -> np.ndarray:
    """Uniform (0, 1) values, one per element, a pure function of seed, salt and keys."""
    with np.errstate(over="ignore"):
        h = _mix(np.full(np.shape(keys[0]), seed * 1_000_003 + salt * 7_919, dtype=np.uint64))
        for key in keys:
            h = _mix(h ^ (np.asarray(key).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) / float(2**53)


def hashed_normal(seed: int, salt: int, *keys: np.ndarray) -> np.ndarray:
    """Standard normal values from two hashed uniforms (Box-Muller)."""
    u1 = hashed_uniform(seed, salt, *keys)
    u2 = hashed_uniform(seed, salt + 1, *keys)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _lomax(u: np.ndarray, scale: float, alpha: float, cap: int) -> np.ndarray:
    """Discrete Lomax (Zipf-like) ranks 0, 1, 2, ... from uniforms; rank 0 is the most frequent."""
    k = np.floor(scale * ((1.0 - u) ** (-1.0 / alpha) - 1.0))
    return np.minimum(k, cap - 1).astype(np.int64)


# ---- who sees what, when -------------------------------------------------------------------------

@dataclass
class ImpressionDraw:
    """The per-impression draw of the clean world, in event-time order.

    Attributes:
        day: UTC day of ``event_ts`` as days since 1970-01-01 (``ds``).
        event_us, served_us: ``event_ts`` and ``served_at`` in microseconds since the epoch.
        request, position: request index (global) and 1-based position within the request.
        hour: UTC hour of ``event_ts``.
        device: device type index into ``DEVICE_TYPES``.
        user, item, merchant: entity keys.
        approval_odds_missing: the upstream pre-qualification score was unavailable (default).
        ctr_noise: the online streaming approximation's error on ``user_ctr_30d``.
        start_day: the first partition, days since 1970-01-01.
    """

    day: np.ndarray
    event_us: np.ndarray
    served_us: np.ndarray
    request: np.ndarray
    position: np.ndarray
    hour: np.ndarray
    device: np.ndarray
    user: np.ndarray
    item: np.ndarray
    merchant: np.ndarray
    approval_odds_missing: np.ndarray
    ctr_noise: np.ndarray
    start_day: int

    def __len__(self) -> int:
        return len(self.day)


def _day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _draw_day(rng: np.random.Generator, seed: int, day: int, n: int, per_day: int,
              first_request: int) -> dict[str, np.ndarray]:
    sizes = np.minimum(rng.geometric(0.35, size=n), 10)
    ends = np.cumsum(sizes)
    n_req = int(np.searchsorted(ends, n) + 1)
    sizes = sizes[:n_req].copy()
    sizes[-1] -= ends[n_req - 1] - n
    request_of = np.repeat(np.arange(n_req), sizes)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    position = np.arange(n) - starts[request_of] + 1

    hour = rng.choice(24, size=n_req, p=DIURNAL)
    micro = rng.integers(0, 3_599 * 10**6, size=n_req)
    is_new = rng.random(n_req) < 0.04
    established = _lomax(rng.random(n_req), max(50.0, per_day / 20), 1.1, NEW_ITEM_BASE)
    cohort = day - np.where(rng.random(n_req) < 0.6, 0, rng.integers(1, 30, size=n_req))
    newcomer = NEW_USER_BASE + cohort * 100_000 + _lomax(rng.random(n_req), 20.0, 1.2, 100_000)
    user = np.where(is_new, newcomer, established).astype(np.int64)
    preferred = np.searchsorted(np.cumsum(_DEVICE_SHARE), hashed_uniform(seed, 11, user))
    switch = rng.random(n_req) < 0.10
    device = np.where(switch, rng.integers(0, 3, size=n_req), np.minimum(preferred, 2))

    new_item = rng.random(n) < 0.02
    item_cohort = day - rng.integers(0, 7, size=n)
    item = np.where(new_item,
                    NEW_ITEM_BASE + item_cohort * 1_000 + _lomax(rng.random(n), 5.0, 1.2, 1_000),
                    _lomax(rng.random(n), 40.0, 1.2, NEW_ITEM_BASE)).astype(np.int64)

    event_us = (day * US_PER_DAY + hour[request_of].astype(np.int64) * 3_600 * 10**6
                + micro[request_of] + (position - 1) * 3_000)
    served_us = event_us - rng.integers(2_000, 40_000, size=n)
    return {
        "day": np.full(n, day, dtype=np.int64), "event_us": event_us, "served_us": served_us,
        "request": request_of + first_request, "position": position.astype(np.int64),
        "hour": hour[request_of].astype(np.int64), "device": device[request_of].astype(np.int64),
        "user": user[request_of], "item": item,
        "approval_odds_missing": rng.random(n) < 0.005,
        "ctr_noise": np.clip(rng.normal(0.0, 0.0015, size=n), -CTR_NOISE_BOUND, CTR_NOISE_BOUND),
    }


def merchant_of(seed: int, item: np.ndarray) -> np.ndarray:
    """Each item belongs to one merchant; about 30 % of new items come from a new merchant."""
    u = hashed_uniform(seed, 21, item)
    established = _lomax(u, 10.0, 1.0, NEW_MERCHANT_BASE)
    created = (item - NEW_ITEM_BASE) // 1_000
    brand_new = (item >= NEW_ITEM_BASE) & (hashed_uniform(seed, 22, item) < 0.3)
    return np.where(brand_new, NEW_MERCHANT_BASE + created * 100 + (u * 100).astype(np.int64),
                    established).astype(np.int64)


def draw_impressions(rng: np.random.Generator, *, seed: int, start: dt.date, days: int,
                     per_day: int) -> ImpressionDraw:
    """Draw every impression of ``days`` partitions from ``start``, about ``per_day`` a day."""
    first = _day_number(start)
    parts: list[dict[str, np.ndarray]] = []
    next_request = 0
    for offset in range(days):
        day = first + offset
        weekday = (start + dt.timedelta(days=offset)).weekday()
        n = max(1, int(rng.poisson(per_day * WEEKLY_FACTOR[weekday])))
        part = _draw_day(rng, seed, day, n, per_day, next_request)
        order = np.argsort(part["event_us"], kind="stable")
        parts.append({k: v[order] for k, v in part.items()})
        next_request = int(part["request"].max()) + 1
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return ImpressionDraw(merchant=merchant_of(seed, cols["item"]), start_day=first, **cols)


def key_text(prefix: str, keys: np.ndarray, width: int = 0) -> np.ndarray:
    """Entity keys as id strings (``u123``; zero-padded to ``width`` digits), an object array."""
    digits = np.asarray(keys).astype(np.str_)
    if width:
        digits = np.char.zfill(digits, width)
    return np.char.add(prefix, digits).astype(object)


# ---- feature values on any day -------------------------------------------------------------------

def _user_features(seed: int, user: np.ndarray, day: np.ndarray, start_day: int
                   ) -> dict[str, np.ndarray]:
    is_new = user >= NEW_USER_BASE
    signup = np.where(is_new, (user - NEW_USER_BASE) // 100_000,
                      start_day - np.exp(np.log(45) + hashed_uniform(seed, 31, user)
                                         * np.log(5000 / 45)).astype(np.int64))
    age = np.maximum(day - signup, 0)
    thin = hashed_uniform(seed, 32, user) < np.where(is_new, 0.08, 0.008)

    score = (690 + 70 * hashed_normal(seed, 33, user)
             + 0.3 * hashed_normal(seed, 35, user) * (day - start_day))
    credit_score = np.clip(np.rint(score), 300, 850).astype(np.int64)
    phase = hashed_uniform(seed, 37, user)
    util = (0.9 * hashed_uniform(seed, 38, user) ** 1.5
            + 0.05 * np.sin(2 * np.pi * (day / 60.0 + phase)))
    credit_utilization = np.round(np.clip(util, 0.0, 1.0), 4)
    income = (np.exp(np.log(55_000) + 0.6 * hashed_normal(seed, 39, user))
              * (1 + 0.0001 * (day - start_day)))
    annual_income = np.round(np.maximum(income, 0.0), 2)
    period = 60 + (hashed_uniform(seed, 41, user) * 300).astype(np.int64)
    accounts = (np.floor(hashed_uniform(seed, 42, user) * 12)
                + np.floor((day + phase * period) / period) % 3).astype(np.int64)
    inquiries = np.floor(-np.log(hashed_uniform(seed, 43, user, day // 7)) * 1.2).astype(np.int64)
    visit_gap = np.floor(-np.log(hashed_uniform(seed, 44, user, day)) * 4.0).astype(np.int64)
    base_ctr = 0.01 + 0.08 * hashed_uniform(seed, 45, user) ** 2
    ctr = np.round(base_ctr * (1 + 0.25 * np.sin(2 * np.pi * (day / 45.0 + phase))), 5)
    return {
        "credit_score": np.where(thin, -1, credit_score),
        "credit_utilization": np.where(thin, -1.0, credit_utilization),
        "annual_income": np.where(thin, -1.0, annual_income),
        "num_open_accounts": accounts,
        "num_recent_inquiries": inquiries,
        "account_age_days": age.astype(np.int64),
        "days_since_last_visit": np.minimum(visit_gap, age).astype(np.int64),
        "user_ctr_30d": ctr,
    }


def merchant_approval_rate(seed: int, merchant: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The 90-day approval rate of a merchant on a day: moves at most ~0.006 a day."""
    base = 0.3 + 0.6 * hashed_uniform(seed, 51, merchant)
    phase = hashed_uniform(seed, 52, merchant)
    return np.round(np.clip(base + 0.05 * np.sin(2 * np.pi * (day / 60.0 + phase)), 0.05, 0.98), 4)


_TYPE_ODDS_OFFSET = np.array([0.2, -0.1, 0.3, -0.6, 0.8])


def _approval_odds(seed: int, user_values: dict[str, np.ndarray], user: np.ndarray,
                   item: np.ndarray, item_type: np.ndarray) -> np.ndarray:
    cs = user_values["credit_score"].astype(np.float64)
    cs = np.where(cs < 0, 620.0, cs)
    util = user_values["credit_utilization"]
    util = np.where(util < 0, 0.5, util)
    income = user_values["annual_income"]
    income = np.where(income < 0, 30_000.0, income)
    z = (1.1 * (cs - 690) / 70 - 1.5 * (util - 0.3) + 0.5 * np.log(income / 55_000)
         + _TYPE_ODDS_OFFSET[item_type] + 0.6 * hashed_normal(seed, 61, user, item))
    return np.round(1.0 / (1.0 + np.exp(-z)), 4)


def feature_values(draw: ImpressionDraw, seed: int, *, online: bool, lag_days: int = 0,
                   rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every feature of the selected impressions as computed ``lag_days`` before the event day.

    Args:
        draw: the impressions.
        seed: the simulation seed (keys the attribute hashes).
        online: the online pipeline's code path (see the module docstring) instead of the batch one.
        lag_days: evaluate time-varying features this many days before the event day.
        rows: indices of the impressions to compute (default: all).

    Returns:
        Column name -> array: numbers as int64/float64, categoricals and ids as object arrays.
    """
    idx = np.arange(len(draw)) if rows is None else rows
    day = draw.day[idx] - lag_days
    user, item, merchant = draw.user[idx], draw.item[idx], draw.merchant[idx]
    values = _user_features(seed, user, day, draw.start_day)
    type_u = hashed_uniform(seed, 71, item)
    item_type = np.minimum(np.searchsorted(np.cumsum(_ITEM_TYPE_SHARE), type_u), 4)
    lows = np.array([_APR_RANGE[t][0] for t in ITEM_TYPES])[item_type]
    highs = np.array([_APR_RANGE[t][1] for t in ITEM_TYPES])[item_type]
    apr = np.round(lows + (highs - lows) * hashed_uniform(seed, 72, item), 2)
    odds = _approval_odds(seed, values, user, item, item_type)
    hour = draw.hour[idx]
    if online:
        values["user_ctr_30d"] = np.round(values["user_ctr_30d"] + draw.ctr_noise[idx], 5)
        values["account_age_days"] = np.where(hour == 0, np.maximum(values["account_age_days"] - 1, 0),
                                              values["account_age_days"])
        rate = merchant_approval_rate(seed, merchant, day - 1)
    else:
        rate = merchant_approval_rate(seed, merchant, day)
    values.update({
        "user_id": key_text("u", user),
        "item_id": key_text("i", item),
        "merchant_id": key_text("m", merchant),
        "item_type": np.array(ITEM_TYPES, dtype=object)[item_type],
        "item_apr": apr,
        "merchant_approval_rate_90d": rate,
        "approval_odds": np.where(draw.approval_odds_missing[idx], 0.0, odds),
        "hour_of_day": hour.astype(np.int64),
        "device_type": np.array(DEVICE_TYPES, dtype=object)[draw.device[idx]],
        "position": draw.position[idx].astype(np.int64),
    })
    return values
