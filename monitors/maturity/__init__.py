"""Label maturity: the as-of rule, the gate that decides whether training may run, and its checks.

Deep funnel outcomes arrive days after the impression. :func:`resolve_labels` applies the as-of
rule (positive if loaded before A, negative once the maturity window has closed, otherwise
unknown); :func:`evaluate_gate` judges each stage's maturity, label freshness, completeness
and label delays (:mod:`monitors.maturity.delay_monitor` on the curves of
:mod:`monitors.maturity.delays`) and returns a :class:`GateDecision`;
:func:`monitors.maturity.commands.run_gate` is the typed command the ``funnelguard gate`` CLI
and the DAG tasks call. Stages, windows, tables and columns all come from the project's
contracts (:class:`LabelColumns`).
"""

from monitors.maturity.asof import (
    LabelColumns,
    as_of_instant,
    matured_through,
    maturity_windows,
    normalise_label_frame,
    read_label_frame,
    resolve_labels,
    select_tasks,
)
from monitors.maturity.completeness import CompletenessResult, check_completeness
from monitors.maturity.delay_monitor import LabelDelayResult, check_label_delay
from monitors.maturity.delays import (
    DayCompletion,
    DelayCurve,
    complete_labels,
    delay_curves,
)
from monitors.maturity.freshness import FreshnessResult, check_freshness, landing_due_at
from monitors.maturity.gate import (
    DEFAULT_WINDOW_DAYS,
    GateDecision,
    GatePolicy,
    TaskGate,
    evaluate_gate,
    window_days_of,
)

__all__ = [
    "DEFAULT_WINDOW_DAYS",
    "GateDecision",
    "LabelColumns",
    "GatePolicy",
    "TaskGate",
    "CompletenessResult",
    "DayCompletion",
    "DelayCurve",
    "LabelDelayResult",
    "FreshnessResult",
    "as_of_instant",
    "check_completeness",
    "check_label_delay",
    "complete_labels",
    "delay_curves",
    "check_freshness",
    "evaluate_gate",
    "landing_due_at",
    "matured_through",
    "maturity_windows",
    "normalise_label_frame",
    "read_label_frame",
    "resolve_labels",
    "select_tasks",
    "window_days_of",
]
