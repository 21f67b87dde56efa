"""The index, history and run pages: view objects built from store rows, then rendered.

Pure functions of their inputs (rows from :mod:`monitors.site.queries`, an owner lookup, the
site folder for relative links). Ordering rules live here: partitions newest first; within a
partition failures first (error, fail, warn, pass); within a run failing findings first, errors
before warnings. Passing checks are summarised one line per check. Every page is kept under
:data:`MAX_PAGE_BYTES`: a run page that would be larger shortens its examples and messages, then
lists fewer failures, and says so.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitors.site.owners import Owners
from monitors.site.queries import FindingView, RunSummary
from monitors.site.templates import render

__all__ = ["MAX_PAGE_BYTES", "MODEL_COMMANDS", "state_of", "slug", "dataset_page",
           "run_page_path", "Grid", "build_grid", "attention", "run_rows", "render_index",
           "render_history", "render_run", "render_replaced", "format_value", "ArtifactLinks"]

MAX_PAGE_BYTES = 1_000_000
# Commands whose stored dataset is a model version, not a contract: one grid column for all.
MODEL_COMMANDS = frozenset({"evaluate", "replay", "explain"})
_STATE_RANK = {"error": 0, "fail": 1, "warn": 2, "pass": 3}
_EXAMPLE_ROWS = 20


def state_of(run: RunSummary) -> str:
    """``error``, ``fail``, ``warn`` (passed, with failing warnings) or ``pass``."""
    if run.status in ("error", "fail"):
        return run.status
    return "warn" if run.failing else "pass"


def slug(name: str) -> str:
    """A file name for a dataset: letters, digits, ``.``, ``_`` and ``-`` kept, others ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def dataset_page(dataset: str) -> str:
    """``datasets/<dataset>.html``, relative to the site's top."""
    return f"datasets/{slug(dataset)}.html"


def run_page_path(run_id: int) -> str:
    """``runs/<id>.html``, relative to the site's top."""
    return f"runs/{int(run_id)}.html"


def format_value(value: Any) -> str:
    """A stored value for a person: numbers to 4 significant digits, pairs as ranges, no reprs."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list) and len(value) == 2 and all(
            v is None or isinstance(v, int | float) for v in value):
        low, high = value
        if low is None:
            return f"≤ {format_value(high)}"
        if high is None:
            return f"≥ {format_value(low)}"
        return f"{format_value(low)} – {format_value(high)}"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)


def _check_text(run: RunSummary, limit: int = 3) -> tuple[str, str]:
    """('default_rate 6, drift 4 +1', full list) of a run's failing checks, errors first."""
    items = sorted(run.failing.items(), key=lambda kv: (kv[0][1] != "error", -kv[1], kv[0][0]))
    merged: dict[str, int] = {}
    for (check, _), n in items:
        merged[check] = merged.get(check, 0) + n
    parts = [f"{check} {n}" for check, n in merged.items()]
    text = ", ".join(parts[:limit]) + (f" +{len(parts) - limit}" if len(parts) > limit else "")
    if run.status == "error":
        text = (run.error_kind or "error") + (f"; {text}" if text else "")
    return text, ", ".join(parts) or run.error_message or ""


# -- the status grid ----------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: tuple[str, str, str]
    dataset: str
    command: str
    environment: str
    slug: str
    dataset_page: str | None


@dataclass(frozen=True)
class Cell:
    run_id: int
    state: str
    text: str
    title: str


@dataclass(frozen=True)
class Row:
    partition: str
    cells: tuple[Cell | None, ...]


@dataclass(frozen=True)
class Grid:
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]


def _column_key(run: RunSummary) -> tuple[str, str, str]:
    dataset = "model" if run.command in MODEL_COMMANDS else (run.dataset or "-")
    return (dataset, run.command, run.environment)


def _command_order() -> dict[str, int]:
    from funnelguard.commands import JOBS

    return {name: i for i, name in enumerate(JOBS)}


def build_grid(runs: Sequence[RunSummary]) -> Grid:
    """Partitions (newest first) x (dataset, command, environment) columns; a cell is a run."""
    order = _command_order()
    by_cell: dict[tuple[str, tuple[str, str, str]], RunSummary] = {}
    for run in runs:
        key = (run.partition, _column_key(run))
        old = by_cell.get(key)
        rank = (_STATE_RANK[state_of(run)], -run.id)
        if old is None or rank < (_STATE_RANK[state_of(old)], -old.id):
            by_cell[key] = run
    keys = sorted({k for _, k in by_cell}, key=lambda k: (k[0], order.get(k[1], 99), k[1], k[2]))
    columns = tuple(Column(k, k[0], k[1], k[2], slug("-".join(k)),
                           None if k[0] in ("-", "model") else dataset_page(k[0])) for k in keys)
    rows = []
    for partition in sorted({p for p, _ in by_cell}, reverse=True):
        cells = []
        for k in keys:
            run = by_cell.get((partition, k))
            if run is None:
                cells.append(None)
                continue
            text, title = _check_text(run)
            if run.command in MODEL_COMMANDS:
                text = f"{run.dataset} {text}".strip()
            cells.append(Cell(run.id, state_of(run), text, title))
        rows.append(Row(partition, tuple(cells)))
    return Grid(columns, tuple(rows))


@dataclass(frozen=True)
class RunRow:
    run_id: int
    partition: str
    state: str
    command: str
    dataset: str
    environment: str
    text: str


def run_rows(runs: Sequence[RunSummary], *, only_failing: bool = False,
             limit: int | None = None) -> list[RunRow]:
    """Runs newest partition first, failures first within a partition, then newest run."""
    chosen = [r for r in runs if not only_failing or state_of(r) != "pass"]
    chosen.sort(key=lambda r: (_STATE_RANK[state_of(r)], -r.id))
    chosen.sort(key=lambda r: r.partition, reverse=True)  # stable: failures stay first
    return [RunRow(r.id, r.partition, state_of(r), r.command, r.dataset, r.environment,
                   _check_text(r, limit=5)[0]) for r in chosen[:limit]]


def attention(runs: Sequence[RunSummary], limit: int = 200) -> list[RunRow]:
    """The runs of the grid's partitions that did not pass, newest first, failures first."""
    return run_rows(runs, only_failing=True, limit=limit)


def render_index(*, grid: Grid, recent: Sequence[RunSummary], datasets: Sequence[str],
                 history: Sequence[tuple[str, str]], totals: Mapping[str, int],
                 built_at: str) -> str:
    """The index: totals, dataset links, what needs attention, the grid, older months."""
    return render("index.html", title="funnelguard results", root="", built_at=built_at,
                  grid=grid, attention=attention(recent), totals=totals,
                  datasets=[{"name": d, "page": dataset_page(d)} for d in datasets],
                  history=[{"label": label, "page": page} for label, page in history])


def render_history(label: str, grid: Grid, built_at: str) -> str:
    return render("history.html", title=f"Runs of {label}", root="../", built_at=built_at,
                  grid=grid)


# -- run pages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExamplesView:
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    more: int = 0


def examples_view(examples: Any, limit: int = _EXAMPLE_ROWS) -> ExamplesView | None:
    """Stored examples as a small table (records) or a list of values, never a Python repr."""
    if examples in (None, [], {}, ""):
        return None
    items = examples if isinstance(examples, list) else [examples]
    shown, more = items[:limit], max(0, len(items) - limit)
    if all(isinstance(e, dict) for e in shown):
        columns = list(dict.fromkeys(k for e in shown for k in e))
        rows = [[format_value(e.get(c)) for c in columns] for e in shown]
        return ExamplesView(columns=columns, rows=rows, more=more)
    return ExamplesView(values=[format_value(e) for e in shown], more=more)


class ArtifactLinks:
    """Links from ``runs/`` to artifacts: relative when under the site folder, ``file://``
    otherwise. Relative artifact paths are read from the working directory of the build."""

    def __init__(self, out: Path) -> None:
        self.site = out.resolve()
        self.runs_dir = self.site / "runs"
        self.cwd = Path.cwd()

    def of(self, artifacts: Mapping[str, Any]) -> list[dict[str, Any]]:
        links = []
        for name, raw in artifacts.items():
            if not isinstance(raw, str) or not raw:
                continue
            path = Path(raw).expanduser()
            path = Path(os.path.normpath(path if path.is_absolute() else self.cwd / path))
            if path.is_relative_to(self.site):
                href = Path(os.path.relpath(path, self.runs_dir)).as_posix()
            else:
                href = path.as_uri()
            links.append({"name": name, "path": str(path), "href": href,
                          "missing": not path.exists()})
        return links




def _finding_view(f: FindingView, run: RunSummary, owners: Owners, *, examples: int,
                  message_chars: int | None) -> dict[str, Any]:
    owner = None if f.passed else owners.owner_of(run.contract, run.project, run.dataset,
                                                  f.feature)
    message = f.message if message_chars is None or len(f.message) <= message_chars else (
        f.message[:message_chars] + " …")
    state = "pass" if f.passed else ("fail" if f.severity == "error" else "warn")
    return {"check": f.check, "state": state, "environment": f.environment or "",
            "feature": f.feature or "", "task": f.task or "", "segment": f.segment or "",
            "value": format_value(f.value), "threshold": format_value(f.threshold),
            "count": format_value(f.count), "message": message,
            "owner": owner.team if owner else ("unknown" if run.contract and not f.passed else ""),
            "anchor": slug(f.check),
            "examples": None if f.passed or examples == 0 else examples_view(f.examples, examples)}


def _passing_summary(passing: Sequence[FindingView], names: int = 12) -> list[dict[str, Any]]:
    """Passing findings as one row per (check, environment): how many, and on what."""
    groups: dict[tuple[str, str], list[FindingView]] = defaultdict(list)
    for f in passing:
        groups[(f.check, f.environment or "")].append(f)
    rows = []
    for (check, env), fs in groups.items():
        on = list(dict.fromkeys(" ".join(x for x in (f.feature, f.task, f.segment) if x)
                                for f in fs))
        on = [x for x in on if x]
        text = ", ".join(on[:names]) + (f" +{len(on) - names}" if len(on) > names else "")
        rows.append({"check": check, "environment": env, "count": len(fs), "on": text})
    return rows


def _run_view(run: RunSummary, findings: Sequence[FindingView], owners: Owners,
              links: ArtifactLinks, *, level: int, evaluation_html: str | None) -> dict[str, Any]:
    # level 0: everything; 1: short examples and messages, no charts; 2+: fewer failures
    examples = _EXAMPLE_ROWS if level == 0 else 3
    chars = None if level == 0 else 400
    failing = [f for f in findings if not f.passed]
    passing = [f for f in findings if f.passed]
    shown = failing if level < 2 else failing[:max(1, len(failing) >> (level - 1))]
    teams: dict[str, set[str]] = defaultdict(set)
    for f in failing:
        o = owners.owner_of(run.contract, run.project, run.dataset, f.feature)
        if o is not None:
            teams[o.team + (f" ({o.channel})" if o.channel else "")].add(f.feature or "the dataset")
    return {
        "id": run.id, "state": state_of(run), "command": run.command, "dataset": run.dataset,
        "dataset_page": dataset_page(run.dataset) if run.dataset and run.command not in
        MODEL_COMMANDS else None,
        "environment": run.environment, "partition": run.partition,
        "recorded_at": run.recorded_at.strftime("%Y-%m-%d %H:%M:%S UTC") if run.recorded_at else "",
        "contract": run.contract,
        "error": f"{run.error_kind}: {run.error_message}" if run.error_kind else None,
        "owners": [f"{team}: {', '.join(sorted(what))}" for team, what in sorted(teams.items())],
        "failing": [_finding_view(f, run, owners, examples=examples, message_chars=chars)
                    for f in shown],
        "failing_omitted": len(failing) - len(shown),
        "passed": len(passing),
        "passing": _passing_summary(passing, names=12 if level == 0 else 3),
        "artifacts": links.of(run.artifacts),
        "evaluation": evaluation_html if level == 0 else None,
    }


def render_run(run: RunSummary, findings: Sequence[FindingView], owners: Owners,
               links: ArtifactLinks, *, built_at: str, evaluation_html: str | None = None) -> str:
    """The page of one run, shrunk step by step until it is under :data:`MAX_PAGE_BYTES`.

    Args:
        findings: the run's findings, failures first.
        links: artifact links of the site (:class:`ArtifactLinks`).
        evaluation_html: the evaluation fragment of an evaluate run.
    """
    from markupsafe import Markup

    title = " ".join(x for x in (run.command, run.dataset, run.environment, run.partition) if x)
    fragment = Markup(evaluation_html) if evaluation_html else None
    level = 0
    while True:
        view = _run_view(run, findings, owners, links, level=level, evaluation_html=fragment)
        page = render("run.html", title=f"Run {run.id}: {title}", root="../", built_at=built_at,
                      run=view, has_plots=bool(view["evaluation"]))
        if len(page.encode()) <= MAX_PAGE_BYTES or len(view["failing"]) <= 1:
            return page
        level += 1


def render_replaced(old_id: int, key: tuple[str, ...], new_id: int | None, built_at: str) -> str:
    """The page left at ``runs/<old id>.html`` when a rerun replaced (or removed) the run."""
    what = " / ".join(k for k in key if k)
    if new_id is None:
        return render("gone.html", title=f"Run {old_id}", root="../", built_at=built_at,
                      old_id=old_id, key=what)
    return render("replaced.html", title=f"Run {old_id} was rerun", root="../",
                  built_at=built_at, old_id=old_id, new_id=new_id, key=what,
                  target=f"{int(new_id)}.html")
