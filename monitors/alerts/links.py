"""Where a message points people: the results site's run and dataset pages, the local report
files, the Airflow task logs and the runbook.

With ``FUNNELGUARD_BASE_URL`` (where ``funnelguard site build`` is published, docs/site.md):
``BASE/runs/<run id>.html`` per run of the message and ``BASE/datasets/<dataset>.html``.
Without it: each run's report as an absolute ``file://`` URL (a relative path, stored before
the outbox made paths absolute, is left out: it would resolve against the wrong directory).
The Airflow log links ``$FUNNELGUARD_AIRFLOW_URL/dags/DAG/runs/RUN/tasks/TASK``, else names
the task. The runbook is ``$FUNNELGUARD_RUNBOOK_URL#runbook-CHECK``, else the section of
docs/alerts.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from monitors.alerts.settings import AlertSettings

__all__ = ["LOCAL_RUNBOOK", "site_page", "context_links"]

LOCAL_RUNBOOK = "docs/alerts.md#runbook"


def site_page(base: str, kind: str, name: str | int) -> str:
    """A page of the results site: ``runs/<id>.html``, ``datasets/<dataset>.html`` (the
    dataset with every character other than letters, digits, ``.``, ``_``, ``-`` as ``_``)."""
    slug = str(name) if kind == "runs" else re.sub(r"[^A-Za-z0-9._-]", "_", str(name))
    return f"{base}/{kind}/{quote(slug, safe='')}.html"


def _report(artifacts: Mapping[str, Any]) -> str | None:
    report = artifacts.get("report") or next(
        (v for k, v in artifacts.items() if "report" in k), None)
    if not isinstance(report, str) or not report:
        return None
    if "://" in report:
        return report
    path = Path(report)
    return path.as_uri() if path.is_absolute() else None


def _runs(payloads: Sequence[Mapping[str, Any]]) -> list[tuple[str, int | None, Mapping]]:
    """(command, run id, artifacts) of each run, once, in order."""
    seen, out = set(), []
    for p in payloads:
        key = (p.get("command", "run"), p.get("run_id"))
        if key not in seen:
            seen.add(key)
            out.append((key[0], key[1], p.get("artifacts") or {}))
    return out


def _airflow(payloads: Sequence[Mapping[str, Any]], settings: AlertSettings) -> list[str]:
    tasks = list(dict.fromkeys(
        (af["dag_id"], af["run_id"], af["task_id"]) for af in (p.get("airflow") or {}
                                                               for p in payloads)
        if {"dag_id", "run_id", "task_id"} <= af.keys()))
    out = []
    for dag, run, task in tasks[:3]:
        if settings.airflow_ui:
            url = (f"{settings.airflow_ui}/dags/{quote(dag, safe='')}/runs/"
                   f"{quote(run, safe='')}/tasks/{quote(task, safe='')}")
            out.append(f"<{url}|Airflow log: {task}>" if len(tasks) > 1 else f"<{url}|Airflow log>")
        else:
            out.append(f"Airflow log: `{dag} / {run} / {task}`")
    return out


def context_links(payloads: Sequence[Mapping[str, Any]], dataset: str, checks: Sequence[str],
                  settings: AlertSettings) -> list[str]:
    """The links of one message, a few context elements (Block Kit allows ten).

    Args:
        payloads: the payloads of the message's outbox rows (command, run id, artifacts,
            Airflow task of each run).
        dataset: the message's dataset (its trends page).
        checks: the checks of its findings (runbook sections, at most three).
        settings: base URL, Airflow UI and runbook URL.
    """
    base, links = settings.base_url, []
    runs = _runs(payloads)
    if base:
        pages = [f"<{site_page(base, 'runs', run_id)}|{command} run>"
                 for command, run_id, _ in runs if run_id is not None]
        if dataset:
            pages.append(f"<{site_page(base, 'datasets', dataset)}|{dataset} trends>")
        if pages:
            links.append(" · ".join(pages))
    else:
        reports = [f"{command} report: `{url}`" for command, _, artifacts in runs
                   if (url := _report(artifacts))]
        if reports:
            links.append(" · ".join(reports))
    links += _airflow(payloads, settings)
    books = list(dict.fromkeys(checks))[:3]
    if settings.runbook_url:
        links += [" · ".join(f"<{settings.runbook_url}#runbook-{c.replace('_', '-')}|Runbook: "
                             f"{c}>" for c in books)] if books else []
    elif books:
        links.append(("Runbook: " if len(books) == 1 else "Runbooks: ") + ", ".join(
            f"`{LOCAL_RUNBOOK}-{c.replace('_', '-')}`" for c in books))
    return links
