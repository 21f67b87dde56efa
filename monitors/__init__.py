"""Monitors: what differs between the data the model trained on and the data it serves.

Drift with Evidently's statistical tests on bounded samples (:mod:`monitors.drift`, agreement with
a full ``DataDriftPreset`` run in :mod:`monitors.drift_agreement`), default-value rates online vs
offline by segment (:mod:`monitors.default_rate`), per-impression replay skew
(:mod:`monitors.skew`), freshness and volume (:mod:`monitors.freshness`), the label-maturity gate
(:mod:`monitors.maturity`), the results store (:mod:`monitors.store`) and Slack alerts
(:mod:`monitors.alerts`). Every check returns frozen results and findings; the commands in
:mod:`monitors.cli` are the edge. Nothing heavy is imported here.
"""

__all__ = [
    "drift",
    "drift_agreement",
    "default_rate",
    "skew",
    "freshness",
    "reports",
    "maturity",
    "store",
    "alerts",
]
