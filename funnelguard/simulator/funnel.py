"""The funnel's truth: outcome probabilities, the stand-in production model, and label timing.

Outcomes are nested (approval => conversion => application => click). Each stage has a logit
that is a fixed function of the model's features (:func:`stage_logits`); outcomes are independent
Bernoulli draws from those probabilities, and the ``oracle`` table stores the unconditional
probability of each task (the product of the stage probabilities up to it) on the true (offline)
features. Since it depends on the features alone, it is the reachable Bayes limit: a model that
learns the formula reaches the oracle's AUC.

The stand-in production model (:class:`ProductionModel`) is the same formula applied to the
served (online) features; replaying it on ``serving_log`` reproduces the logged ``score_*``
exactly, and online faults move the scores.

Timing: click minutes after the impression, application hours after the click, conversion and
approval days later (log-normal, long-tailed), all inside a 14-day attribution window. The
label pipeline lands once a day at 02:00 UTC with everything that happened the previous UTC day
or earlier; events that have not landed by "now" are not in the warehouse (``ts`` and
``loaded_at`` both NULL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np

from funnelguard.simulator.schema import FEATURE_BY_NAME, TASKS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Scorer",
    "ProductionModel",
    "stage_logits",
    "probabilities",
    "draw_outcomes",
    "ATTRIBUTION_WINDOW_DAYS",
    "LANDING_HOUR",
    "landing_time",
]

ATTRIBUTION_WINDOW_DAYS = 14
LANDING_HOUR = 2
_US_PER_MIN = 60 * 10**6
_US_PER_HOUR = 60 * _US_PER_MIN
_US_PER_DAY = 24 * _US_PER_HOUR

# Intercepts calibrated so that on the clean world CTR ~ 4 %, application ~ 1.2 %,
# conversion ~ 0.35 % and approval ~ 0.2 % of impressions.
_INTERCEPT = {"click": -2.93, "application": -1.35, "conversion": -1.55, "approval": -0.75}
_DEVICE_CLICK = {"ios": 0.10, "android": 0.0, "web": -0.15}
_TYPE_CLICK = {"card": 0.15, "personal_loan": 0.0, "auto_loan": -0.1, "mortgage": -0.3,
               "insurance": -0.2}
_TYPE_APPLICATION = {"card": 0.2, "personal_loan": 0.0, "auto_loan": -0.1, "mortgage": -0.4,
                     "insurance": 0.1}


class Scorer(Protocol):
    """Anything that scores raw feature columns: task -> probability per row."""

    def predict(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Probabilities of each task in :data:`funnelguard.warehouse.TASKS` for every row."""
        ...


def _numeric(frame: Mapping, name: str, impute: float) -> np.ndarray:
    """A numeric feature as float, its default/NULL imputed, clipped to the legitimate range."""
    spec = FEATURE_BY_NAME[name]
    x = np.asarray(frame[name], dtype=np.float64)
    missing = np.isnan(x) | (x == float(spec.default))
    x = np.where(missing, impute, x)
    return np.clip(x, spec.low if spec.low is not None else -np.inf,
                   spec.high if spec.high is not None else np.inf)


def _category_effect(frame: Mapping, name: str, effects: Mapping[str, float]) -> np.ndarray:
    import pandas as pd

    values = pd.Series(np.asarray(frame[name], dtype=object))
    return values.map(effects).fillna(0.0).to_numpy(dtype=np.float64)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def stage_logits(frame: Mapping) -> dict[str, np.ndarray]:
    """Noise-free logit of each funnel stage given the previous one (click is unconditional).

    Args:
        frame: raw feature columns (a DataFrame or a dict of arrays); defaults, NULLs and
            non-finite values are imputed, out-of-range values clipped, unknown categories
            get no effect, so the logits are always finite.
    """
    odds = _numeric(frame, "approval_odds", 0.3)
    ctr = np.clip(_numeric(frame, "user_ctr_30d", 0.03), 0.003, 0.5)
    position = np.minimum(_numeric(frame, "position", 3.0), 10.0)
    hour = _numeric(frame, "hour_of_day", 12.0)
    visit = np.minimum(_numeric(frame, "days_since_last_visit", 5.0), 30.0)
    apr = _numeric(frame, "item_apr", 15.0)
    inquiries = np.minimum(_numeric(frame, "num_recent_inquiries", 1.0), 10.0)
    score = _numeric(frame, "credit_score", 620.0)
    util = _numeric(frame, "credit_utilization", 0.5)
    rate = _numeric(frame, "merchant_approval_rate_90d", 0.6)
    return {
        "click": (_INTERCEPT["click"] + 0.8 * (_logit(ctr) - _logit(np.array(0.04)))
                  - 0.18 * (position - 1) + 0.15 * np.cos(2 * np.pi * (hour - 20) / 24)
                  - 0.1 * visit / 30 + 0.6 * (odds - 0.5)
                  + _category_effect(frame, "device_type", _DEVICE_CLICK)
                  + _category_effect(frame, "item_type", _TYPE_CLICK)),
        "application": (_INTERCEPT["application"] + 2.0 * (odds - 0.5) - 0.02 * (apr - 15)
                        - 0.08 * inquiries + _category_effect(frame, "item_type", _TYPE_APPLICATION)),
        "conversion": (_INTERCEPT["conversion"] + 4.0 * (odds - 0.5) + 0.3 * (score - 690) / 70),
        "approval": (_INTERCEPT["approval"] + 5.0 * (odds - 0.5) + 2.0 * (rate - 0.6)
                     - 0.5 * (util - 0.3)),
    }


def probabilities(logits: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Unconditional task probabilities: the running product of the stage probabilities."""
    out: dict[str, np.ndarray] = {}
    running = None
    for task in TASKS:
        stage = 1.0 / (1.0 + np.exp(-logits[task]))
        running = stage if running is None else running * stage
        out[task] = running
    return out


class ProductionModel:
    """The stand-in production model that produced ``serving_log.score_*``.

    It is the oracle's formula, applied to whatever feature
    values it is given (the served ones in ``serving_log``). ``version`` is the value logged in
    ``serving_log.model_version``.
    """

    def __init__(self, version: str = "prod-2026.10") -> None:
        self.version = version

    def predict(self, frame: pd.DataFrame | Mapping) -> dict[str, np.ndarray]:
        """Task -> probability for each row of raw feature columns."""
        return probabilities(stage_logits(frame))


def _truncated_lognormal(rng: np.random.Generator, median_us: float, sigma: float,
                         cap_us: np.ndarray) -> np.ndarray:
    """Log-normal delays below a per-row cap: redrawn up to 8 times, then uniform below the cap.

    The uniform fallback only concerns rows whose cap is far below the median (an earlier
    stage that happened at the very end of the attribution window).
    """
    out = np.exp(np.log(median_us) + sigma * rng.standard_normal(len(cap_us)))
    for _ in range(8):
        bad = np.flatnonzero(out >= cap_us)
        if len(bad) == 0:
            break
        out[bad] = np.exp(np.log(median_us) + sigma * rng.standard_normal(len(bad)))
    bad = out >= cap_us
    out[bad] = cap_us[bad] * rng.random(int(bad.sum()))
    return out.astype(np.int64)


def landing_time(event_us: np.ndarray) -> np.ndarray:
    """The daily label landing that carries an event: 02:00 UTC of the next day."""
    return (event_us // _US_PER_DAY + 1) * _US_PER_DAY + LANDING_HOUR * _US_PER_HOUR


def draw_outcomes(rng: np.random.Generator, logits: Mapping[str, np.ndarray],
                  event_us: np.ndarray, now_us: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Sample true probabilities, outcomes and their timing for every impression.

    Args:
        rng: the main random stream.
        logits: noise-free stage logits (:func:`stage_logits` on the offline features).
        event_us: impression times (microseconds since the epoch).
        now_us: the simulator's "now": events landing at or after it are censored.

    Returns:
        ``(oracle, labels)``: ``oracle`` maps ``p_{task}`` to the true unconditional probability;
        ``labels`` maps ``{task}_ts`` and ``{task}_loaded_at`` to microseconds (``-1`` = NULL).
    """
    n = len(event_us)
    truth = probabilities(logits)
    stage = {t: 1.0 / (1.0 + np.exp(-logits[t])) for t in TASKS}
    window_end = event_us + ATTRIBUTION_WINDOW_DAYS * _US_PER_DAY
    happened = np.ones(n, dtype=bool)
    previous = event_us
    labels: dict[str, np.ndarray] = {}
    delays = {"click": (2 * _US_PER_MIN, 0.8), "application": (45 * _US_PER_MIN, 1.1),
              "conversion": (1.5 * _US_PER_DAY, 1.0), "approval": (0.6 * _US_PER_DAY, 1.1)}
    caps = {"click": 30 * _US_PER_MIN, "application": 24 * _US_PER_HOUR}
    for task in TASKS:
        happened = happened & (rng.random(n) < stage[task])
        median, sigma = delays[task]
        cap = np.full(n, caps[task]) if task in caps else window_end - previous
        ts = previous + _truncated_lognormal(rng, median, sigma, np.maximum(cap, 1))
        loaded = landing_time(ts)
        observed = happened & (loaded < now_us)
        labels[f"{task}_ts"] = np.where(observed, ts, -1)
        labels[f"{task}_loaded_at"] = np.where(observed, loaded, -1)
        previous = ts
    return {f"p_{t}": truth[t] for t in TASKS}, labels

