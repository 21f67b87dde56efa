"""``build_site``: read the results store once, write the static site, skip what is unchanged.

Layout (stable URLs, docs/site.md): ``index.html``, ``runs/<run id>.html``,
``datasets/<dataset>.html``, ``history/<YYYY-MM>.html``, ``evaluations.html``,
``training.html``, ``training/<id>.html``, ``assets/plotly.min.js``. The manifest
(``.funnelguard-site.json``) remembers which version of each run (id and ``recorded_at``) and
training run each page shows: a rebuild rewrites only the pages of new or changed runs, leaves
a forwarding page where a rerun replaced a run (its old URL keeps working), and always
rewrites the index, history, dataset, evaluation and training index pages.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from monitors.site import evaluation, pages, queries, trends
from monitors.site import training as training_pages
from monitors.site.estimate import estimate_section
from monitors.site.owners import Owners
from monitors.site.plots import copy_plotly_js

__all__ = ["build_site", "BuildReport", "MANIFEST", "SITE_VERSION", "INDEX_PARTITIONS",
           "TREND_PARTITIONS"]

SITE_VERSION = "1"  # bump when pages change shape: the next build rewrites every page
MANIFEST = ".funnelguard-site.json"
INDEX_PARTITIONS = 30
TREND_PARTITIONS = 90
RECENT_RUNS = 100
_MONTH = re.compile(r"^\d{4}-\d{2}")


@dataclass(frozen=True)
class BuildReport:
    """What a build wrote.

    Attributes:
        run_pages_written: run pages (re)written because their run is new or changed.
        run_pages_unchanged: run pages left as they were.
        forwarding_pages_written: pages of replaced runs (re)written to point at the rerun.
        training_pages_written: training run pages (re)written.
        dataset_pages: dataset (trend) pages written.
        seconds: wall time of the build.
    """

    out: Path
    runs: int
    run_pages_written: int
    run_pages_unchanged: int
    forwarding_pages_written: int
    training_pages_written: int
    dataset_pages: int
    seconds: float

    def summary(self) -> str:
        return (f"site {self.out}: {self.runs} runs, {self.run_pages_written} run pages written, "
                f"{self.run_pages_unchanged} unchanged, {self.dataset_pages} dataset pages, "
                f"{self.training_pages_written} training pages, {self.seconds:.1f} s; "
                f"open {self.out / 'index.html'}")


def _open(store_url: str):
    import sqlalchemy as sa

    from funnelguard.errors import InputError
    from monitors.store import open_store

    try:
        url = sa.engine.make_url(store_url)
    except (sa.exc.ArgumentError, ValueError) as exc:  # ValueError: e.g. a non-numeric port
        from monitors.store.errors import shown_url

        raise InputError(f"--store: expected a SQLAlchemy URL, found {shown_url(store_url)!r}"
                         ) from exc
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:") \
            and not Path(url.database).is_file():
        raise InputError(f"site build: expected a results store at {store_url}, found no file "
                         f"{url.database} (run a check with --store first)")
    return open_store(store_url)


def _read_manifest(out: Path, full: bool) -> dict[str, Any]:
    empty: dict[str, Any] = {"version": SITE_VERSION, "runs": {}, "replaced": {}, "training": {}}
    if full:
        return empty
    try:
        doc = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return empty
    if not isinstance(doc, dict) or doc.get("version") != SITE_VERSION:
        return empty
    return {**empty, **doc}


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, separators=(",", ":")))
    os.replace(tmp, path)


def build_site(store_url: str, out: str | Path, *, full: bool = False,
               index_partitions: int = INDEX_PARTITIONS,
               trend_partitions: int = TREND_PARTITIONS) -> BuildReport:
    """Write the site for the store at ``store_url`` into ``out``.

    Args:
        store_url: the results store (SQLAlchemy URL).
        out: the site folder (created).
        full: rewrite every page, ignoring the manifest.
        index_partitions: partitions on the index grid (older ones on monthly history pages).
        trend_partitions: newest partitions of a dataset its trend charts cover.

    Raises:
        InputError: a malformed URL, or no store file at a SQLite URL.
        EnvironmentFailure: the store cannot be reached.
    """
    started = time.perf_counter()
    out = Path(out)
    for folder in ("runs", "datasets", "history", "training", "assets"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    store = _open(store_url)
    manifest = _read_manifest(out, full)
    built_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with Session(store.engine) as s:
        runs = queries.run_summaries(s)
        written, unchanged = _run_pages(s, runs, manifest, out, built_at)
        forwarded = _forwarding_pages(runs, manifest, out, built_at)
        _index_pages(runs, out, index_partitions, built_at)
        datasets = _dataset_pages(s, runs, out, trend_partitions, built_at)
        _evaluations_page(s, runs, out, built_at)
        trained = _training_pages(s, runs, manifest, out, built_at)
    copy_plotly_js(out)
    _write_json_atomic(out / MANIFEST, manifest)
    return BuildReport(out, len(runs), written, unchanged, forwarded, trained, datasets,
                       time.perf_counter() - started)


def _run_pages(s: Session, runs: Sequence[queries.RunSummary], manifest: dict[str, Any],
               out: Path, built_at: str) -> tuple[int, int]:
    known = manifest["runs"]
    existing = {p.name for p in os.scandir(out / "runs")}
    changed = [r for r in runs
               if (known.get(str(r.id)) or [None])[0] != r.stamp or f"{r.id}.html" not in existing]
    if not changed:
        return 0, len(runs)
    ids = None if len(changed) == len(runs) else [r.id for r in changed]
    findings = queries.findings_of(s, ids)
    evaluated = [r.id for r in changed if r.command in ("evaluate", "estimate")]
    metrics = queries.metrics_of(s, evaluated) if evaluated else {}
    owners = Owners()
    links = pages.ArtifactLinks(out)
    for r in changed:
        section = evaluation.evaluation_section(metrics.get(r.id, ())) if r.id in metrics else None
        if r.command == "estimate":
            section = estimate_section(metrics.get(r.id, ()))
        page = pages.render_run(r, findings.get(r.id, ()), owners, links, built_at=built_at,
                                evaluation_html=section)
        _write(out / pages.run_page_path(r.id), page)
        known[str(r.id)] = [r.stamp, *r.key]
    return len(changed), len(runs) - len(changed)


def _forwarding_pages(runs: Sequence[queries.RunSummary], manifest: dict[str, Any], out: Path,
                      built_at: str) -> int:
    """Pages of runs no longer stored: forward to the run that now has the same key."""
    current = {str(r.id) for r in runs}
    by_key = {r.key: r.id for r in runs}
    replaced = manifest["replaced"]
    for old in [k for k in manifest["runs"] if k not in current]:
        replaced[old] = manifest["runs"].pop(old)[1:]  # its key
    written = 0
    for old, entry in replaced.items():
        key = tuple(entry[:4])
        target = by_key.get(key)
        if len(entry) > 4 and entry[4] == target:
            continue
        _write(out / pages.run_page_path(int(old)),
               pages.render_replaced(int(old), key, target, built_at))
        replaced[old] = [*key, target]
        written += 1
    return written


def _index_pages(runs: Sequence[queries.RunSummary], out: Path, window: int,
                 built_at: str) -> None:
    partitions = sorted({r.partition for r in runs}, reverse=True)
    newest = set(partitions[:window])
    recent = [r for r in runs if r.partition in newest]
    older: dict[str, list[queries.RunSummary]] = defaultdict(list)
    for r in runs:
        if r.partition not in newest:
            older[r.partition[:7] if _MONTH.match(r.partition) else "other"].append(r)
    history = []
    for label in sorted(older, reverse=True):
        page = f"history/{pages.slug(label)}.html"
        _write(out / page, pages.render_history(label, pages.build_grid(older[label]), built_at))
        history.append((label, page))
    datasets = sorted({r.dataset for r in runs
                       if r.dataset and r.command not in pages.MODEL_COMMANDS})
    totals = {"runs": len(runs), "partitions": len(partitions),
              "failing": sum(1 for r in runs if pages.state_of(r) != "pass")}
    _write(out / "index.html", pages.render_index(
        grid=pages.build_grid(recent), recent=recent, datasets=datasets, history=history,
        totals=totals, built_at=built_at))


def _dataset_pages(s: Session, runs: Sequence[queries.RunSummary], out: Path, window: int,
                   built_at: str) -> int:
    by_dataset: dict[str, list[queries.RunSummary]] = defaultdict(list)
    for r in runs:
        if r.dataset and r.command not in pages.MODEL_COMMANDS:
            by_dataset[r.dataset].append(r)
    if not by_dataset:
        return 0
    shown = {d: sorted({r.partition for r in rs})[-window:] for d, rs in by_dataset.items()}
    since = min((p[0] for p in shown.values() if p), default="")
    points: dict[str, list] = defaultdict(list)
    for p in queries.trend_metrics(s, trends.TREND_METRICS, since):
        points[p.dataset].append(p)
    volume: dict[str, list] = defaultdict(list)
    for v in queries.volume_points(s, trends.VOLUME_CHECK, since):
        volume[v.dataset].append(v)
    for dataset, rs in by_dataset.items():
        page = trends.render_dataset(dataset, points.get(dataset, ()), volume.get(dataset, ()),
                                     shown[dataset], pages.run_rows(rs, limit=RECENT_RUNS),
                                     built_at=built_at)
        _write(out / pages.dataset_page(dataset), page)
    return len(by_dataset)


def _evaluations_page(s: Session, runs: Sequence[queries.RunSummary], out: Path,
                      built_at: str) -> None:
    evaluated = pages.run_rows([r for r in runs if r.command == "evaluate"], limit=RECENT_RUNS)
    overall = queries.metrics_of(s, [r.run_id for r in evaluated],
                                 names=evaluation.OVERALL_METRICS, overall_only=True)
    _write(out / "evaluations.html",
           evaluation.render_evaluations(evaluated, overall, built_at=built_at))


def _training_pages(s: Session, runs: Sequence[queries.RunSummary], manifest: dict[str, Any],
                    out: Path, built_at: str) -> int:
    trained = queries.training_runs(s)
    models = queries.models(s)
    _write(out / "training.html",
           training_pages.render_training_index(trained, models, built_at=built_at))
    train_runs: dict[str, list[int]] = defaultdict(list)
    for r in runs:
        if r.command == "train":
            train_runs[r.partition].append(r.id)
    known = manifest["training"]
    written = 0
    for t in trained:
        stamp = f"{t.status}@{t.finished_at.isoformat() if t.finished_at else ''}"
        path = out / training_pages.training_page_path(t.id)
        if known.get(str(t.id)) == stamp and path.is_file():
            continue
        page = training_pages.render_training_run(
            t, [m for m in models if m.training_run_id == t.id], train_runs.get(t.as_of, []),
            built_at=built_at)
        _write(path, page)
        known[str(t.id)] = stamp
        written += 1
    return written
