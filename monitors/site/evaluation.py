"""Evaluation pages: AUC and calibration per segment with their intervals, oracle gap, champion.

``evaluate`` stores each estimate as metrics ``[oracle_|champion_]<metric>[_low|_high]`` per task
and segment (``model.evaluation``). :func:`estimates` reads them back into one table;
:func:`evaluation_section` is the fragment of an evaluate run's page (a table and interval charts
per task); :func:`render_evaluations` is ``evaluations.html``: the overall AUC per task across
evaluate runs, and the runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitors.site.pages import RunRow, format_value
from monitors.site.plots import Interval, Series, interval_chart, line_chart
from monitors.site.queries import MetricPoint
from monitors.site.templates import render

__all__ = ["Estimate", "estimates", "evaluation_section", "render_evaluations", "OVERALL_METRICS"]

_SOURCES = (("oracle_", "oracle"), ("champion_", "champion"), ("", "model"))
_SHOWN = (("auc", "AUC"), ("pr_auc", "PR AUC"), ("calibration_ratio", "calibration Σp/Σy"),
          ("ece", "ECE"), ("log_loss", "log loss"))
OVERALL_METRICS = ("auc", "auc_low", "auc_high")
OVERALL = "overall"


@dataclass
class Estimate:
    value: float | None = None
    low: float | None = None
    high: float | None = None

    def text(self) -> str:
        if self.value is None:
            return ""
        if self.low is None or self.high is None:
            return format_value(self.value)
        return f"{format_value(self.value)} ({format_value(self.low)}–{format_value(self.high)})"


def _parse(name: str) -> tuple[str, str, str]:
    """``oracle_auc_low`` -> (``oracle``, ``auc``, ``low``)."""
    source = next((s for p, s in _SOURCES if p and name.startswith(p)), "model")
    rest = name[len(source) + 1:] if source != "model" else name
    for part in ("low", "high"):
        if rest.endswith(f"_{part}"):
            return source, rest[: -len(part) - 1], part
    return source, rest, "value"


def estimates(points: Sequence[MetricPoint]) -> dict[tuple[str, str, str, str], Estimate]:
    """``{(task, segment or 'overall', source, metric): Estimate}`` in stored order."""
    out: dict[tuple[str, str, str, str], Estimate] = {}
    for p in points:
        source, metric, part = _parse(p.name)
        key = (p.task or "", p.segment or OVERALL, source, metric)
        setattr(out.setdefault(key, Estimate()), part, p.value)
    return out


def _task_section(task: str, est: Mapping[tuple[str, str, str, str], Estimate], n: int
                  ) -> dict:
    segments = list(dict.fromkeys(seg for (t, seg, _, _) in est if t == task))
    sources = {src for (t, _, src, _) in est if t == task}
    columns = ["segment"] + [label for _, label in _SHOWN]
    if "champion" in sources:
        columns.append("champion AUC")
    if "oracle" in sources:
        columns += ["oracle AUC", "oracle gap (AUC)"]
    rows = []
    for seg in segments:
        row = [seg] + [est.get((task, seg, "model", m), Estimate()).text() for m, _ in _SHOWN]
        if "champion" in sources:
            row.append(est.get((task, seg, "champion", "auc"), Estimate()).text())
        if "oracle" in sources:
            oracle = est.get((task, seg, "oracle", "auc"), Estimate())
            model = est.get((task, seg, "model", "auc"), Estimate())
            gap = (None if oracle.value is None or model.value is None
                   else oracle.value - model.value)
            row += [oracle.text(), format_value(gap)]
        rows.append(row)

    def intervals(metric: str) -> list[Interval]:
        out = []
        for src in ("model", "champion", "oracle"):
            got = [est.get((task, seg, src, metric)) for seg in segments]
            if any(g is not None for g in got):
                e = [g or Estimate() for g in got]
                out.append(Interval(src, segments, [x.value for x in e], [x.low for x in e],
                                    [x.high for x in e]))
        return out

    plots = [interval_chart(f"eval-{n}-auc", f"{task}: AUC per segment (95 % interval)",
                            intervals("auc"), y_title="AUC"),
             interval_chart(f"eval-{n}-cal", f"{task}: calibration ratio per segment",
                            intervals("calibration_ratio"), y_title="Σp / Σy", reference=1.0)]
    return {"task": task, "columns": columns, "rows": rows, "plots": plots}


def evaluation_section(points: Sequence[MetricPoint]) -> str | None:
    """The evaluation fragment of an evaluate run's page (None when it stored no estimates)."""
    from markupsafe import Markup

    est = estimates(points)
    tasks = list(dict.fromkeys(t for (t, _, _, _) in est))
    if not tasks:
        return None
    sections = [_task_section(t, est, i) for i, t in enumerate(tasks)]
    for s in sections:
        s["plots"] = [Markup(p) for p in s["plots"]]
    return render("evaluation.html", sections=sections)


def render_evaluations(runs: Sequence[RunRow], overall: Mapping[int, Sequence[MetricPoint]],
                       *, built_at: str) -> str:
    """``evaluations.html``: overall AUC per task over the evaluated as-of dates, and the runs.

    Args:
        runs: evaluate runs, newest first (a window of them).
        overall: their overall (segment-less) AUC metrics by run id.
    """
    from markupsafe import Markup

    by_task: dict[str, dict[str, Estimate]] = defaultdict(dict)
    for run in sorted(runs, key=lambda r: (r.partition, r.run_id)):  # newer run of a day wins
        for (task, seg, src, metric), e in estimates(overall.get(run.run_id, ())).items():
            if seg == OVERALL and src == "model" and metric == "auc":
                by_task[task][run.partition] = e
    partitions = sorted({p for values in by_task.values() for p in values})
    series = [Series(task, partitions, [v.get(p, Estimate()).value for p in partitions],
                     low=[v.get(p, Estimate()).low for p in partitions],
                     high=[v.get(p, Estimate()).high for p in partitions])
              for task, v in by_task.items()]
    plots = [Markup(line_chart("eval-auc-trend", "Overall AUC per task (band: 95 % interval)",
                               series, y_title="AUC"))] if series else []
    sections = [{"title": "AUC over time", "note": "Per evaluated as-of date; the newest "
                 "evaluate run of a date is shown.", "plots": plots, "table": None}]
    intro = (f"{len(runs)} evaluate runs. Each run's page has AUC and calibration per segment "
             "with intervals, the champion and the oracle gap where they were evaluated."
             if runs else "No evaluate runs stored.")
    return render("plots.html", title="Evaluations", root="", built_at=built_at,
                  has_plots=bool(plots), intro=intro, sections=sections if plots else [],
                  runs=runs)
