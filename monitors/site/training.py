"""Training pages: ``training.html`` (every training run and published model) and
``training/<id>.html`` (one run: outcome, guard events, triage verdict, loss curves).

A training run's row (``fg_training_runs``) keeps its outcome, final losses and the path of its
forensic bundle when the guard stopped it. The bundle's ``bundle.json`` (written redacted by
``model.bundle``) holds the per-task loss and gradient-norm history up to the stop; when the
file is still there its curves are drawn, and the page says when it is not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monitors.site.pages import format_value
from monitors.site.plots import Series, line_chart
from monitors.site.templates import render

__all__ = ["training_page_path", "render_training_run", "render_training_index",
           "read_bundle", "MAX_BUNDLE_BYTES"]

MAX_BUNDLE_BYTES = 50_000_000


def training_page_path(training_id: int) -> str:
    """``training/<id>.html``, relative to the site's top."""
    return f"training/{int(training_id)}.html"


def read_bundle(path: str | None) -> dict[str, Any] | None:
    """The forensic bundle document, or None when absent, too large or unreadable."""
    if not path:
        return None
    file = Path(path)
    try:
        if not file.is_file() or file.stat().st_size > MAX_BUNDLE_BYTES:
            return None
        doc = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    return {"columns": list(columns), "rows": [list(r) for r in rows]}


def _section(title: str, *, plots: Sequence[str] = (), table: dict | None = None,
             note: str = "") -> dict[str, Any]:
    from markupsafe import Markup

    return {"title": title, "note": note, "plots": [Markup(p) for p in plots], "table": table}


def _curves(history: Mapping[str, Any]) -> list[str]:
    plots = []
    losses = history.get("loss") or {}
    series = [Series(task, [p[0] for p in pts], [_float(p[1]) for p in pts])
              for task, pts in losses.items() if pts]
    if series:
        plots.append(line_chart("loss", "Loss per task", series, y_title="loss", x_title="step"))
    grad = history.get("grad_norm") or []
    if grad:
        plots.append(line_chart("grad-norm", "Gradient norm",
                                [Series("grad norm", [p[0] for p in grad],
                                        [_float(p[1]) for p in grad])],
                                y_title="norm", x_title="step"))
    return plots


def _plain(v: Any) -> str | None:
    """A triage entry for a table cell: text, numbers and lists of them; None for nested data."""
    if isinstance(v, str | int | float | bool) or v is None:
        return format_value(v) if v is not None else "-"
    if isinstance(v, list) and all(isinstance(x, str | int | float) for x in v):
        return ", ".join(format_value(x) for x in v) or "-"
    return None


def _float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def render_training_run(run, models: Sequence, train_run_ids: Sequence[int], *,
                        built_at: str) -> str:
    """The page of one training run (``fg_training_runs`` row ``run``).

    Args:
        models: published models (``fg_models``) of this training run.
        train_run_ids: ``train`` runs in ``fg_runs`` of the same as-of date (linked).
    """
    facts = [("status", run.status), ("as of", run.as_of), ("steps", format_value(run.steps)),
             ("guard anomaly", run.anomaly or "none"), ("triage verdict", run.verdict or "-"),
             ("model directory", run.out_dir), ("forensic bundle", run.bundle_path or "-"),
             ("started", _time(run.started_at)), ("finished", _time(run.finished_at))]
    facts += [("stored run", {"text": f"run {i}", "href": f"../runs/{i}.html"})
              for i in train_run_ids]
    sections = [_section("Outcome", table=_table((), facts))]
    summary = run.summary or {}
    finals = [(task, format_value(summary.get("train_loss", {}).get(task)),
               format_value(summary.get("holdout_loss", {}).get(task)))
              for task in dict.fromkeys([*summary.get("train_loss", {}),
                                         *summary.get("holdout_loss", {})])]
    if finals:
        sections.append(_section("Final losses",
                                 table=_table(("task", "train", "holdout"), finals)))
    bundle = read_bundle(run.bundle_path)
    lines = list(summary.get("lines") or (bundle or {}).get("summary") or [])
    if run.anomaly or bundle:
        events = [("step", format_value((bundle or {}).get("step", run.steps))),
                  ("anomaly", run.anomaly or (bundle or {}).get("anomaly", "")),
                  ("message", (bundle or {}).get("message", "")),
                  ("tasks", ", ".join((bundle or {}).get("tasks") or [])),
                  ("value", format_value((bundle or {}).get("value"))),
                  ("threshold", format_value((bundle or {}).get("threshold")))]
        sections.append(_section("Guard event", table=_table((), events)))
    if lines:
        sections.append(_section("What the guard and the triage concluded",
                                 table=_table((), [(line,) for line in lines])))
    triage = (bundle or {}).get("triage")
    if isinstance(triage, dict):
        rows = [(k, _plain(v)) for k, v in triage.items() if _plain(v) is not None]
        sections.append(_section("Triage verdict", table=_table((), rows), note=(
            f"Replays and evidence in full: {run.bundle_path}" if run.bundle_path else "")))
    curves = _curves(bundle.get("history") or {}) if bundle else []
    curve_history = summary.get("history")
    if not curves and isinstance(curve_history, dict):
        curves = _curves(curve_history)
    if curves:
        sections.append(_section("Training curves", plots=curves,
                                 note="From the forensic bundle: the history up to the stop."))
    else:
        sections.append(_section("Training curves", note=(
            "No per-step history is stored for this run (only a stopped run's forensic "
            "bundle keeps one)" + (f"; the bundle {run.bundle_path} was not readable"
                                    if run.bundle_path and bundle is None else "") + ".")))
    if models:
        sections.append(_section("Published models", table=_table(
            ("version", "champion", "path"),
            [(m.version, "yes" if m.is_champion else "no", m.path) for m in models])))
    return render("plots.html", title=f"Training run {run.id}: {run.as_of} {run.status}",
                  root="../", built_at=built_at, has_plots=bool(curves), intro="",
                  sections=sections, runs=[])


def render_training_index(runs: Sequence, models: Sequence, *, built_at: str) -> str:
    """``training.html``: holdout loss per task over as-of dates, the runs and the models."""
    losses: dict[str, dict[str, float | None]] = {}
    for r in sorted(runs, key=lambda r: (r.as_of, r.id)):
        for task, v in ((r.summary or {}).get("holdout_loss") or {}).items():
            losses.setdefault(task, {})[r.as_of] = _float(v)
    dates = sorted({d for v in losses.values() for d in v})
    plots = ([line_chart("holdout-loss", "Holdout loss per task", [
        Series(task, dates, [v.get(d) for d in dates]) for task, v in losses.items()],
        y_title="loss")] if losses else [])
    rows = [({"text": f"training {r.id}", "href": training_page_path(r.id)}, r.as_of, r.status,
             format_value(r.steps), r.anomaly or "", r.verdict or "") for r in runs]
    sections = [_section("Holdout loss", plots=plots)] if plots else []
    sections.append(_section("Training runs (newest first)", table=_table(
        ("run", "as of", "status", "steps", "guard anomaly", "triage verdict"), rows)))
    if models:
        sections.append(_section("Published models", table=_table(
            ("version", "as of", "champion", "training run", "path"),
            [(m.version, m.as_of, "yes" if m.is_champion else "no",
              {"text": f"training {m.training_run_id}",
               "href": training_page_path(m.training_run_id)} if m.training_run_id else "",
              m.path) for m in models])))
    return render("plots.html", title="Training", root="", built_at=built_at,
                  has_plots=bool(plots), intro="" if runs else "No training runs stored.",
                  sections=sections, runs=[])


def _time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""
