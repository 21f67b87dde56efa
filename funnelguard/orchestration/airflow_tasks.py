"""The edge between Airflow and funnelguard: run one command's function, map its outcome.

A DAG task body imports this module (never at parse time), resolves the project, the partition
and the URLs, calls one registered command function (:data:`funnelguard.commands.JOBS`)
through :func:`funnelguard.commands.execute` — the one edge the CLI uses too: it stores the
result (errors included), writes the ``--json`` document and returns the exit code — and turns
the exit code into what Airflow understands:

- 0 → success; the task returns a small XCom (command, partition, status, artifact paths);
- 1 (a failed check, a gate block, a guard stop) and 2 (bad input) →
  ``AirflowFailException`` carrying the result's summary: no retry, the run goes red and the
  Slack failure notifier posts the summary;
- 3 (environment failure: database unreachable …) → :class:`EnvironmentRetry`, a plain
  exception, so Airflow retries the task.

The decision itself (:func:`outcome_of`) is pure; only :func:`raise_for` touches Airflow. No
command line is built or parsed here.

Each run's page on the results site (``$FUNNELGUARD_BASE_URL/runs/<stored run id>.html``,
docs/site.md) is named in the task's log and XCom (``store_run_id``, ``site_page``) and, when
the base URL is set, pushed as the XCom :data:`SITE_LINK_KEY` that the DAGs' "Results site"
extra link reads — also for a task that fails, where the page is most wanted.

The project is the DAG's ``project`` param (a project file or its folder), else
``$FUNNELGUARD_PROJECT``, else ``./funnelguard.yaml``, else the packaged demo project. The
warehouse and the store are the ``funnelguard_warehouse`` / ``funnelguard_store`` connections,
else the project's ``warehouse:`` / ``store:``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funnelguard.errors import EXIT_ENVIRONMENT, EXIT_FAIL, EXIT_INPUT, EXIT_PASS, FunnelguardError
from funnelguard.findings import RunResult

if TYPE_CHECKING:
    from funnelguard.project import Project

__all__ = [
    "OUTPUT_ENV",
    "BASE_URL_ENV",
    "SITE_LINK_KEY",
    "EnvironmentRetry",
    "TaskOutcome",
    "outcome_of",
    "failure_summary",
    "raise_for",
    "run_job",
    "site_page",
    "stored_run_id",
    "connection_defined",
    "job_project",
    "snapshot_partitions",
    "nightly_partition",
    "output_root",
    "warehouse_url",
    "store_url",
]

OUTPUT_ENV = "FUNNELGUARD_OUTPUT_DIR"
BASE_URL_ENV = "FUNNELGUARD_BASE_URL"
# The XCom the DAG files' ResultsSiteLink reads (the same literal is in each DAG file).
SITE_LINK_KEY = "funnelguard_site_page"
MAX_SUMMARY_LINES = 8


class EnvironmentRetry(RuntimeError):
    """An environment failure (exit 3): a plain exception, so Airflow retries the task."""


@dataclass(frozen=True)
class TaskOutcome:
    """What one command's run means for its Airflow task.

    Attributes:
        code: the command's exit code.
        action: ``succeed``, ``fail`` (no retry) or ``retry``.
        summary: plain-language lines for the log and the Slack failure notifier.
        xcom: what a successful task returns: ids and paths, never frames.
    """

    code: int
    action: str
    summary: str
    xcom: Mapping[str, Any] = field(default_factory=dict)


def _describe(result: RunResult) -> str:
    about = ", ".join(x for x in (result.dataset, result.environment) if x)
    return (f"funnelguard {result.command} {result.partition or ''}".rstrip()
            + (f" ({about})" if about else ""))


def failure_summary(result: RunResult, *, max_lines: int = MAX_SUMMARY_LINES,
                    project: Project | None = None) -> str:
    """A short plain-language summary of a failed or errored run, for the task log and the
    Slack failure notifier: the alerts package's run summary (numbers in words, PII values
    redacted, never the examples) plus the run's artifact paths.

    Args:
        result: the command's result.
        max_lines: at most this many findings are described; the rest are counted.
        project: the project whose contracts say which fields are personal data (default:
            the one the result's dataset is found in, :func:`monitors.store.provenance_of`).
    """
    from monitors.alerts.message import render_run_summary

    directory = None
    if project is not None:
        from monitors.alerts.owners import OwnerDirectory
        from monitors.store.store import provenance_of

        source = provenance_of(result, project)
        directory = OwnerDirectory("").scoped(source.project, source.contract)
    lines = [render_run_summary(result, directory=directory, max_lines=max_lines)]
    lines += [f"{name}: {path}" for name, path in result.artifacts.items()]
    return "\n".join(lines)


def outcome_of(code: int, result: RunResult | None, command: str = "command", *,
               project: Project | None = None) -> TaskOutcome:
    """Map a command's exit code and result to the task's action (pure).

    Args:
        code: the exit code :func:`funnelguard.commands.execute` returned.
        result: its result (``None`` for commands without one).
        command: the command's name, for messages about commands without a result.
        project: the run's project (which fields the summary must redact).
    """
    if result is None:
        summary = f"funnelguard {command}: exit {code}"
        xcom: dict[str, Any] = {"command": command, "exit_code": code}
    else:
        summary = (failure_summary(result, project=project) if code != EXIT_PASS
                   else f"{_describe(result)}: {result.status}")
        xcom = {"command": result.command, "partition": result.partition,
                "dataset": result.dataset, "environment": result.environment,
                "status": result.status, "artifacts": dict(result.artifacts)}
    if code == EXIT_PASS:
        return TaskOutcome(code, "succeed", summary, xcom)
    if code in (EXIT_FAIL, EXIT_INPUT):
        return TaskOutcome(code, "fail", summary)
    if code == EXIT_ENVIRONMENT:
        return TaskOutcome(code, "retry", summary)
    return TaskOutcome(code, "retry", f"{summary} (unexpected exit code {code})")


def raise_for(outcome: TaskOutcome) -> Mapping[str, Any]:
    """Return the XCom of a successful outcome, or raise what Airflow needs.

    Raises:
        AirflowFailException: a failed check or bad input (no retry; the notifier fires).
        EnvironmentRetry: an environment failure (Airflow retries).
    """
    if outcome.action == "succeed":
        return outcome.xcom
    if outcome.action == "fail":
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(outcome.summary)
    raise EnvironmentRetry(outcome.summary)


def _fail(message: str):
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(message)


def run_job(command: str, call: Callable[[], RunResult], *, project: Project,
            partition: Any, store_url: str, json_out: str | os.PathLike | None = None,
            environment: str | None = None) -> Mapping[str, Any]:
    """Run one command's function at the edge and map its outcome (module docstring).

    Args:
        command: the registered name (``validate``, ``drift`` ...), for an error result.
        call: runs the command's function; returns its RunResult.
        project: the project the function runs on; its alerts are addressed from it.
        partition: the partition or as-of date, for an error result.
        store_url: where the result is stored (an errored run too).
        json_out: where its result document goes.
        environment: recorded on an errored run that names none.

    Returns:
        The task's XCom: command, partition, dataset, environment, status and artifact paths.
    """
    from funnelguard.commands import execute

    print(f"funnelguard {command} {partition} ({project.describe()})")
    done = execute(command, call, partition=partition, store_url=store_url,
                   json_out=None if json_out is None else str(json_out),
                   environment=environment, store_errors=True, project=project)
    outcome = outcome_of(done.code, done.result, command, project=project)
    print(outcome.summary)
    page = _announce_site_page(store_url, done.result)
    if outcome.action == "succeed" and page is not None:
        outcome = dataclasses.replace(outcome, xcom={**outcome.xcom, **page})
    return raise_for(outcome)


def site_page(run_id: int, base_url: str | None = None) -> str:
    """A stored run's page on the results site: ``BASE/runs/<id>.html``, or the path
    ``runs/<id>.html`` relative to the site's top when there is no base URL."""
    page = f"runs/{int(run_id)}.html"
    base = (base_url or "").rstrip("/")
    return f"{base}/{page}" if base else page


def stored_run_id(store_url: str, result: RunResult) -> int | None:
    """The id (``fg_runs.id``) of the stored run of ``result``'s key (command, dataset,
    environment, partition); None when it is not in the store (spooled, or no store)."""
    import sqlalchemy as sa

    from monitors.store import open_store
    from monitors.store.models import Run

    key = dict(command=result.command, dataset=result.dataset or "",
               environment=result.environment or "", partition=result.partition or "")
    try:
        with open_store(store_url).session() as s:
            return s.scalar(sa.select(Run.id).filter_by(**key))
    except (FunnelguardError, sa.exc.SQLAlchemyError):
        return None


def _announce_site_page(store_url: str, result: RunResult | None) -> dict[str, Any] | None:
    """Log the run's site page, push it for the "Results site" link; the XCom fields."""
    if result is None:
        return None
    run_id = stored_run_id(store_url, result)
    if run_id is None:
        print("results site: this run is not in the store yet (no page to link)")
        return None
    base = os.environ.get(BASE_URL_ENV, "").strip() or None
    page = site_page(run_id, base)
    if base:
        print(f"results site: {page}")
        _push_xcom(SITE_LINK_KEY, page)
    else:
        print(f"results site: {page} (a page of `funnelguard site build`; set "
              f"${BASE_URL_ENV} to link it)")
    return {"store_run_id": run_id, "site_page": page}


def _push_xcom(key: str, value: Any) -> None:
    """Push an XCom from the running task; outside a task (the CLI, unit tests) do nothing."""
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
    except Exception:  # noqa: BLE001 - no task context: nothing to push to
        return
    ti.xcom_push(key=key, value=value)


def connection_defined(conn_id: str) -> bool:
    """Whether the Airflow connection ``conn_id`` exists (metadata DB, secrets backend or
    ``AIRFLOW_CONN_*``). Only its existence: a connection that exists but cannot be used is
    for the sender to report. Call at run time only."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        Connection.get(conn_id)
    except AirflowNotFoundException:
        return False
    return True


def job_project(path: str | None) -> Project:
    """The project a DAG task runs on: ``path`` (the DAG's ``project`` param), else
    ``$FUNNELGUARD_PROJECT``, ``./funnelguard.yaml``, the packaged project.

    Raises:
        AirflowFailException: the project cannot be loaded (each problem, file:line).
    """
    from funnelguard.project import load_project

    try:
        return load_project(path or None)
    except FunnelguardError as exc:
        raise _fail(str(exc)) from exc


def _parse_partition(value: Any, where: str) -> str:
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise _fail(f"expected a partition date YYYY-MM-DD in {where}, found {value!r}") from None


def snapshot_partitions(params: Mapping[str, Any], events: Mapping[Any, Iterable[Any]] | None) -> list[str]:
    """The partitions a snapshot run checks: the ``partition`` param, else every partition
    named by the triggering asset events' ``extra["partition"]`` (sorted, distinct).

    Args:
        params: the run's params (manual runs and ``dag.test(run_conf=...)`` set ``partition``).
        events: ``triggering_asset_events`` from the task context (asset → events).

    Raises:
        AirflowFailException: no partition named anywhere, or a malformed one.
    """
    if params.get("partition"):
        return [_parse_partition(params["partition"], "the 'partition' param")]
    named: set[str] = set()
    seen = 0
    for asset, asset_events in (events or {}).items():
        for event in asset_events:
            seen += 1
            extra = getattr(event, "extra", None) or {}
            if "partition" in extra:
                named.add(_parse_partition(extra["partition"], f"the event extra of {asset}"))
    if not named:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            "expected a partition: the 'partition' param, or extra={'partition': 'YYYY-MM-DD'} "
            f"on the triggering asset events; found {seen} events without one")
    return sorted(named)


def nightly_partition(params: Mapping[str, Any], logical_date: dt.datetime | None,
                      run_after: dt.datetime | None) -> str:
    """The nightly job's partition: the ``partition`` param, else the UTC day before the run's
    logical date (or ``run_after`` when there is none). Airflow 3's daily timetable has a
    zero-width data interval, so the day is derived here, explicitly."""
    if params.get("partition"):
        return _parse_partition(params["partition"], "the 'partition' param")
    moment = logical_date or run_after
    if moment is None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("expected a logical date or run_after on the run, found neither")
    return (moment.astimezone(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


def output_root(project: Project | None = None) -> Path:
    """Where reports, results and models go: ``$FUNNELGUARD_OUTPUT_DIR``, else the Airflow
    Variable ``funnelguard_output_dir``, else the project's ``defaults.output_dir``, else
    ``funnelguard-output`` in the working directory."""
    if os.environ.get(OUTPUT_ENV):
        return Path(os.environ[OUTPUT_ENV]).resolve()
    from airflow.sdk import Variable

    value = Variable.get("funnelguard_output_dir", default=None)
    if not value and project is not None:
        value = project.defaults.get("output_dir")
    return Path(value or "funnelguard-output").resolve()


def _connection_or_project(conn_id: str, fallback: str | None, key: str,
                           project: Project) -> str:
    from funnelguard.orchestration.connections import (
        ConnectionConfigError,
        ConnectionMissing,
        url_for_connection,
    )

    try:
        return url_for_connection(conn_id)
    except ConnectionMissing as exc:
        if fallback:
            return fallback
        raise _fail(f"{exc}; nor does project {project.path} name a `{key}:` URL") from exc
    except ConnectionConfigError as exc:  # a connection that exists but is unusable
        raise _fail(str(exc)) from exc


def warehouse_url(project: Project) -> str:
    """The ``funnelguard_warehouse`` connection's URL, else the project's ``warehouse:``.

    Raises:
        AirflowFailException: neither, or an unusable connection (no retry).
    """
    from funnelguard.orchestration.connections import WAREHOUSE_CONN_ID

    return _connection_or_project(WAREHOUSE_CONN_ID, project.warehouse, "warehouse", project)


def store_url(project: Project) -> str:
    """The ``funnelguard_store`` connection's URL, else the project's ``store:``.

    Raises:
        AirflowFailException: neither, or an unusable connection (no retry).
    """
    from funnelguard.orchestration.connections import STORE_CONN_ID

    return _connection_or_project(STORE_CONN_ID, project.store, "store", project)
