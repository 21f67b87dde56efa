"""A second, differently shaped project for the tests: a lending marketplace's warehouse.

``build_marketplace(root, url)`` writes ``root/funnelguard.yaml`` and ``root/contracts/*.yaml``
(:mod:`tests.byow.contracts_text`) and fills the warehouse at ``url`` (SQLite or PostgreSQL)
with ``days`` partitions of ``per_day`` shown listings: tables ``ranking_requests``,
``features_batch`` (offline), ``features_served`` (online, with the logged scores ``pred_*``)
and ``outcomes`` (event and landing times per stage, censored at the as-of date). Nothing here
uses the product's code except the project loader and ``tables_for`` (the tables the contracts
describe), so the product is tested on tables it did not design.

The one fault (``fault=True``): on the last partition, online ``quoted_apr`` is stuck at its
sentinel -9.0 for 40 % of ``channel = 'app'`` rows, and their logged scores are recomputed from
the served features.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tests.byow.contracts_text import CONTRACT_FILES, PROJECT_YAML, STAGES

__all__ = ["Marketplace", "build_marketplace", "START", "DAYS", "FAULT_FEATURE", "FAULT_SEGMENT"]

START = dt.date(2026, 9, 1)
DAYS = 21
FAULT_FEATURE = "quoted_apr"
FAULT_SEGMENT = ("channel", "app")
FAULT_SHARE = 0.4
SENTINELS = {"loan_amount": -999.0, "quoted_apr": -9.0, "tenure_months": -999,
             "prior_signups": -999, "member_tier": "none", "channel": "na"}


@dataclass(frozen=True)
class Marketplace:
    """A built second project.

    Attributes:
        root: folder with ``funnelguard.yaml`` and ``contracts/``.
        project_path: ``root / "funnelguard.yaml"``.
        warehouse_url: where its tables are.
        start, last: first and last partition (``event_date``).
        as_of: the day after ``last``: labels are censored at ``as_of`` 00:00 UTC.
        faulted: whether the online fault is in ``last``.
    """

    root: Path
    project_path: Path
    warehouse_url: str
    start: dt.date
    last: dt.date
    as_of: dt.date
    faulted: bool

    @property
    def days(self) -> int:
        return (self.last - self.start).days + 1


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _stage_probabilities(f: pd.DataFrame) -> dict[str, np.ndarray]:
    """The stand-in production model: chained stage probabilities from (served) features."""
    apr = np.where(f["quoted_apr"] < 0, 20.0, f["quoted_apr"])
    tier = f["member_tier"].map({"gold": 0.5, "silver": 0.25}).fillna(0.0).to_numpy()
    app = (f["channel"] == "app").to_numpy() * 0.3
    prior = np.where(f["prior_signups"] < 0, 0, f["prior_signups"])
    loan = np.where(f["loan_amount"] < 0, 10000.0, f["loan_amount"])
    tenure = np.where(f["tenure_months"] < 0, 60, f["tenure_months"])
    p_click = _sigmoid(-1.4 + tier + app - 0.06 * (apr - 20))
    p_signup = p_click * _sigmoid(-1.1 + 0.3 * prior - 0.05 * (apr - 20) + tier)
    p_funded = p_signup * _sigmoid(-0.8 - 0.00004 * (loan - 10000) + 0.003 * (tenure - 60))
    return {"click": p_click, "signup": p_signup, "funded": p_funded}


def _features(rng: np.random.Generator, n: int) -> pd.DataFrame:
    f = pd.DataFrame({
        "member_ref": [f"M-{i:05d}" for i in rng.integers(0, 6000, n)],
        "listing_ref": [f"L-{i:04d}" for i in rng.integers(0, 400, n)],
        "loan_amount": np.round(np.clip(rng.lognormal(9.1, 0.7, n), 500, 50000), 2),
        "quoted_apr": np.round(rng.uniform(4.0, 36.0, n), 2),
        "tenure_months": rng.integers(0, 360, n),
        "member_tier": rng.choice(["bronze", "silver", "gold"], n, p=[0.6, 0.3, 0.1]),
        "channel": rng.choice(["app", "web", "partner"], n, p=[0.5, 0.35, 0.15]),
        "prior_signups": rng.poisson(0.6, n),
    })
    for col, sentinel in SENTINELS.items():  # legitimate missing values, ~1 % each
        missing = rng.random(n) < 0.01
        f[col] = f[col].astype(object if isinstance(sentinel, str) else f[col].dtype)
        f.loc[missing, col] = sentinel
    f["tenure_months"] = f["tenure_months"].astype("int64")
    f["prior_signups"] = f["prior_signups"].astype("int64")
    return f


def _outcomes(rng: np.random.Generator, shown: pd.Series, p: dict[str, np.ndarray],
              now: pd.Timestamp) -> dict[str, pd.Series]:
    """Event and landing times per stage; nothing that lands after ``now`` is visible."""
    n = len(shown)
    u = rng.random((3, n))
    reached = {"click": u[0] < p["click"]}
    reached["signup"] = reached["click"] & (u[1] < p["signup"] / p["click"])
    reached["funded"] = reached["signup"] & (u[2] < p["funded"] / p["signup"])
    delays = {"click": rng.exponential(0.01, n), "signup": rng.exponential(1.0, n),
              "funded": rng.exponential(1.8, n)}
    land = {"click": (0.05, 0.2), "signup": (0.05, 0.8), "funded": (0.1, 1.0)}
    out: dict[str, pd.Series] = {}
    at = shown.copy()
    for stage, window in STAGES.items():
        at = at + pd.to_timedelta(np.minimum(delays[stage], window * 0.45), unit="D")
        landed = at + pd.to_timedelta(rng.uniform(*land[stage], n), unit="D")
        visible = reached[stage] & (landed < now).to_numpy()
        out[f"{stage}_time"] = at.where(visible)
        out[f"{stage}_landed"] = landed.where(visible)
    return out


def _tables(seed: int, start: dt.date, days: int, per_day: int, fault: bool
            ) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = days * per_day
    day = np.repeat(np.arange(days), per_day)
    dates = np.array([start + dt.timedelta(days=int(d)) for d in range(days)], dtype=object)[day]
    midnight = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(day, unit="D")
    shown = pd.Series(midnight + pd.to_timedelta(rng.uniform(0, 86_399, n), unit="s"))
    keys = [f"req{d:03d}-{i:05d}" for d, i in zip(day, np.tile(np.arange(per_day), days),
                                                  strict=True)]
    feats = _features(rng, n)
    base = pd.DataFrame({"imp_key": keys, "event_date": dates})
    requests = pd.concat([base, pd.DataFrame({"shown_at": shown}),
                          feats[["member_ref", "listing_ref"]],
                          feats[["channel"]].replace({"na": "web"})], axis=1)
    offline = pd.concat([base, feats], axis=1)
    online = pd.concat([base, pd.DataFrame({
        "served_ts": shown - pd.to_timedelta(rng.integers(20, 400, n), unit="ms"),
        "scorer_tag": "mkt-ranker-7"}), feats.copy()], axis=1)
    if fault:
        last = np.flatnonzero((day == days - 1) & (online["channel"] == "app").to_numpy())
        hit = last[rng.random(len(last)) < FAULT_SHARE]
        online.loc[hit, FAULT_FEATURE] = SENTINELS[FAULT_FEATURE]
    for stage, p in _stage_probabilities(online).items():
        online[f"pred_{stage}"] = np.round(p, 6)
    now = pd.Timestamp(start + dt.timedelta(days=days), tz="UTC")
    outcomes = pd.concat([base, pd.DataFrame(_outcomes(rng, shown, _stage_probabilities(offline),
                                                       now))], axis=1)
    return {"ranking_requests": requests, "features_batch": offline,
            "features_served": online, "outcomes": outcomes}


def _write(url: str, project_path: Path, frames: dict[str, pd.DataFrame]) -> None:
    from funnelguard.project import load_project
    from funnelguard.warehouse import tables_for

    project = load_project(project_path)
    metadata = tables_for(project.contracts.values())
    engine = sa.create_engine(url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        with engine.begin() as conn:
            for name, frame in frames.items():
                table = metadata.tables[name]
                frame = frame[[c.name for c in table.columns]]
                if engine.dialect.name == "sqlite":  # naive UTC on SQLite (warehouse convention)
                    frame = frame.copy()
                    for col in frame.columns:
                        if isinstance(frame[col].dtype, pd.DatetimeTZDtype):
                            frame[col] = frame[col].dt.tz_convert("UTC").dt.tz_localize(None)
                frame.to_sql(name, conn, if_exists="append", index=False, chunksize=5000)
    finally:
        engine.dispose()


def build_marketplace(root: Path, warehouse_url: str | None = None, *, days: int = DAYS,
                      per_day: int = 600, seed: int = 11, fault: bool = False,
                      start: dt.date = START) -> Marketplace:
    """Write the project files under ``root`` and fill its warehouse (SQLite by default)."""
    root.mkdir(parents=True, exist_ok=True)
    url = warehouse_url or f"sqlite:///{root / 'marketplace.db'}"
    (root / "contracts").mkdir(exist_ok=True)
    for name, text in CONTRACT_FILES.items():
        (root / "contracts" / name).write_text(text)
    project_path = root / "funnelguard.yaml"
    project_path.write_text(PROJECT_YAML.format(warehouse=url))
    _write(url, project_path, _tables(seed, start, days, per_day, fault))
    last = start + dt.timedelta(days=days - 1)
    return Marketplace(root, project_path, url, start, last, last + dt.timedelta(days=1), fault)
