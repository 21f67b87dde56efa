"""Label maturity: the as-of rule, the gate that decides whether training may run, and its checks.

Conversion and approval labels arrive days after the impression. :func:`resolve_labels` applies
the as-of rule (positive if loaded before A, negative once the maturity window has closed,
otherwise unknown); :func:`evaluate_gate` judges each task's maturity, label freshness and
completeness and returns a :class:`GateDecision`; the ``funnelguard gate`` command
(:mod:`monitors.maturity.cli`) stores it and exits 1 when training must not run.
"""

from monitors.maturity.asof import (
    as_of_instant,
    matured_through,
    maturity_windows,
    normalise_label_frame,
    read_label_frame,
    resolve_labels,
)
from monitors.maturity.completeness import CompletenessResult, check_completeness
from monitors.maturity.freshness import FreshnessResult, check_freshness, landing_due_at
from monitors.maturity.gate import (
    DEFAULT_WINDOW_DAYS,
    GateDecision,
    GatePolicy,
    TaskGate,
    evaluate_gate,
)

__all__ = [
    "DEFAULT_WINDOW_DAYS",
    "GateDecision",
    "GatePolicy",
    "TaskGate",
    "CompletenessResult",
    "FreshnessResult",
    "as_of_instant",
    "check_completeness",
    "check_freshness",
    "evaluate_gate",
    "landing_due_at",
    "matured_through",
    "maturity_windows",
    "normalise_label_frame",
    "read_label_frame",
    "resolve_labels",
]
