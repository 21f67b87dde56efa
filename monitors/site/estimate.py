"""The estimate section of an ``estimate`` run's page: expected performance before the labels.

``funnelguard estimate`` stores per task and day (segment ``<partition column>=<day>``) the
expected AUC of the served scores with its interval (``estimated_auc[_low|_high]``), the
replayed scores' (``replayed_auc``), their gap, log loss and calibration, the labels'
delay-aware completion (``completed_positive_rate``, ``completed_calibration_ratio``) and,
once a day has matured, the realized AUC and the estimator's own error against the estimate
first stored for that day (``estimate_error.auc.<task>``, ``estimate_covered.auc.<task>``).
:func:`estimate_section` turns them into one table per task and one accuracy table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from monitors.site.pages import format_value
from monitors.site.queries import MetricPoint
from monitors.site.templates import render

__all__ = ["estimate_section", "ESTIMATE_COLUMNS"]

ESTIMATE_COLUMNS = (("estimated_auc", "served AUC (expected)"), ("replayed_auc", "replayed AUC"),
                    ("estimated_gap_auc", "gap"), ("estimated_log_loss", "log loss"),
                    ("estimated_calibration", "Σs / Σp"),
                    ("completed_positive_rate", "positive rate (completed)"),
                    ("completed_calibration_ratio", "calibration (completed)"),
                    ("realized_auc", "realized AUC"))


def _day(segment: str | None) -> str:
    return segment.split("=", 1)[1] if segment and "=" in segment else (segment or "")


def _interval(values: dict[str, float | None]) -> str:
    est, low, high = (values.get(k) for k in ("estimated_auc", "estimated_auc_low",
                                               "estimated_auc_high"))
    if est is None:
        return ""
    if low is None or high is None:
        return format_value(est)
    return f"{format_value(est)} ({format_value(low)}–{format_value(high)})"


def estimate_section(points: Sequence[MetricPoint]) -> str | None:
    """The fragment of an estimate run's page (None when it stored no estimates)."""
    by_task: dict[str, dict[str, dict[str, float | None]]] = defaultdict(lambda: defaultdict(dict))
    accuracy: list[list[str]] = []
    for p in points:
        if p.name.startswith("estimate_error.auc."):
            accuracy.append([p.task or "", _day(p.segment), format_value(p.value), ""])
        elif p.name.startswith("estimate_covered.auc."):
            for row in accuracy:
                if row[:2] == [p.task or "", _day(p.segment)]:
                    row[3] = "yes" if p.value else "no"
        elif p.task:
            by_task[p.task][_day(p.segment)][p.name] = p.value
    if not by_task and not accuracy:
        return None
    columns = ["day", *(label for _, label in ESTIMATE_COLUMNS)]
    sections = []
    for task, days in by_task.items():
        rows = [[day, _interval(v), *(format_value(v.get(name)) if v.get(name) is not None
                                      else "" for name, _ in ESTIMATE_COLUMNS[1:])]
                for day, v in sorted(days.items())]
        sections.append({"task": task, "columns": columns, "rows": rows})
    return render("estimate.html", sections=sections, accuracy=accuracy)
