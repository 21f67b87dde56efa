"""The simulated warehouse in memory: one DataFrame per table, built from the clean world.

Frames carry ``ds`` as a day number and timestamps as microseconds (``-1`` = NULL), plus a
hidden ``_row`` column (the impression's index in the draw) that survives duplication so faults
can recompute a row's features; the writer only writes the table's own columns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from funnelguard.simulator.config import SimConfig, model_version_for
from funnelguard.simulator.funnel import ProductionModel, draw_outcomes, stage_logits
from funnelguard.simulator.schema import TASKS, feature_names
from funnelguard.simulator.world import ImpressionDraw, draw_impressions, feature_values, key_text

__all__ = ["WorldTables", "build_clean_world", "ENVIRONMENT_TABLES"]

# Where each fault environment lives.
ENVIRONMENT_TABLES = {"offline": "offline", "online": "online", "impressions": "impressions",
                      "labels": "labels"}


@dataclass
class WorldTables:
    """The warehouse tables in memory, and what is needed to recompute a row."""

    config: SimConfig
    draw: ImpressionDraw
    impressions: pd.DataFrame
    offline: pd.DataFrame
    online: pd.DataFrame
    labels: pd.DataFrame
    oracle: pd.DataFrame
    model: ProductionModel

    @property
    def now_us(self) -> int:
        """The simulator's "now" in microseconds since the epoch."""
        return int(self.config.now.timestamp()) * 10**6

    def frame(self, environment: str) -> pd.DataFrame:
        """The frame behind an environment name (``offline``, ``online``, ``impressions``, ``labels``)."""
        return getattr(self, ENVIRONMENT_TABLES[environment])

    def set_frame(self, environment: str, frame: pd.DataFrame) -> None:
        """Replace the frame behind an environment name."""
        setattr(self, ENVIRONMENT_TABLES[environment], frame)

    def rescore(self, rows: np.ndarray) -> None:
        """Recompute the logged scores of ``serving_log`` positions ``rows`` from their features."""
        if len(rows) == 0:
            return
        served = self.online.iloc[rows]
        scores = self.model.predict(served)
        for task in TASKS:
            col = self.online.columns.get_loc(f"score_{task}")
            self.online.iloc[rows, col] = scores[task]


def _day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def build_clean_world(config: SimConfig) -> WorldTables:
    """Draw the clean world of ``config`` (faults are applied afterwards, on their own streams)."""
    rng = np.random.default_rng(config.seed)
    draw = draw_impressions(rng, seed=config.seed, start=config.start, days=config.days,
                            per_day=config.per_day)
    n = len(draw)
    offline_values = feature_values(draw, config.seed, online=False)
    online_values = feature_values(draw, config.seed, online=True)
    keys = {
        "impression_id": key_text("imp-", np.arange(n), 10),
        "ds": draw.day,
    }
    row = {"_row": np.arange(n)}
    impressions = pd.DataFrame({
        **keys,
        "request_id": key_text("req-", draw.request, 10),
        "user_id": offline_values["user_id"], "item_id": offline_values["item_id"],
        "merchant_id": offline_values["merchant_id"], "event_ts": draw.event_us,
        "position": draw.position, "device_type": offline_values["device_type"], **row,
    })
    names = feature_names()
    offline = pd.DataFrame({**keys, **{f: offline_values[f] for f in names}, **row})
    model = ProductionModel(model_version_for(config.start))
    scores = model.predict(online_values)
    online = pd.DataFrame({
        **keys, "served_at": draw.served_us,
        "model_version": np.full(n, model.version, dtype=object),
        **{f: online_values[f] for f in names},
        **{f"score_{t}": scores[t] for t in TASKS}, **row,
    })
    now_us = int(config.now.timestamp()) * 10**6
    truth, events = draw_outcomes(rng, stage_logits(offline_values), draw.event_us, now_us)
    labels = pd.DataFrame({**keys, **events, **row})
    oracle = pd.DataFrame({**keys, **truth, **row})
    return WorldTables(config, draw, impressions, offline, online, labels, oracle, model)
