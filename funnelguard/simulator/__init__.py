"""The simulated funnel warehouse: a known truth for every monitor and the model to be proven on.

``simulate(engine, SimConfig(start, days, per_day, seed, faults))`` writes the warehouse tables
of :mod:`funnelguard.warehouse` (impressions, offline_features, serving_log, labels, oracle,
fault_manifest); ``parse_fault("NAME:key=value,...", start=, days=)`` parses a fault of the
catalogue; :class:`ProductionModel` is the stand-in production model behind
``serving_log.score_*``. Names are imported lazily so ``funnelguard --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "SimConfig",
    "FaultSpec",
    "SimSummary",
    "ManifestEntry",
    "parse_fault",
    "simulate",
    "FAULTS",
    "ProductionModel",
    "Scorer",
]

_HOME = {
    "SimConfig": "config", "FaultSpec": "config", "SimSummary": "build", "simulate": "build",
    "ManifestEntry": "inject", "parse_fault": "catalogue", "FAULTS": "catalogue",
    "ProductionModel": "funnel", "Scorer": "funnel",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        module = importlib.import_module(f"funnelguard.simulator.{_HOME[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'funnelguard.simulator' has no attribute {name!r}")
