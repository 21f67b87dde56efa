"""The edge between Airflow and funnelguard: run one command in-process, map its outcome.

A DAG task body imports this module (never at parse time), resolves the partition and the
connections, runs one ``funnelguard`` command through :func:`funnelguard.cli.run` and turns the
exit code into what Airflow understands:

- 0 → success; the task returns a small XCom (command, partition, status, artifact paths);
- 1 (a failed check, a gate block, a guard stop) and 2 (bad input) →
  ``AirflowFailException`` carrying the result's summary: no retry, the run goes red and the
  Slack failure notifier posts the summary;
- 3 (environment failure: database unreachable …) → :class:`EnvironmentRetry`, a plain
  exception, so Airflow retries the task.

The decision itself (:func:`outcome_of`) is pure; only :func:`raise_for` touches Airflow.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from funnelguard.errors import EXIT_ENVIRONMENT, EXIT_FAIL, EXIT_INPUT, EXIT_PASS
from funnelguard.findings import ErrorInfo, RunResult

__all__ = [
    "OUTPUT_ENV",
    "EnvironmentRetry",
    "TaskOutcome",
    "outcome_of",
    "failure_summary",
    "raise_for",
    "run_command",
    "snapshot_partitions",
    "nightly_partition",
    "output_root",
    "connection_urls",
]

OUTPUT_ENV = "FUNNELGUARD_OUTPUT_DIR"
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


def failure_summary(result: RunResult, *, max_lines: int = MAX_SUMMARY_LINES) -> str:
    """A short plain-language summary of a failed or errored run, for the task log and the
    Slack failure notifier: the alerts package's run summary (numbers in words, PII values
    redacted, never the examples) plus the run's artifact paths.

    Args:
        result: the command's result.
        max_lines: at most this many findings are described; the rest are counted.
    """
    from monitors.alerts.message import render_run_summary

    lines = [render_run_summary(result, max_lines=max_lines)]
    lines += [f"{name}: {path}" for name, path in result.artifacts.items()]
    return "\n".join(lines)


def outcome_of(code: int, result: RunResult | None, argv: Sequence[str] = ()) -> TaskOutcome:
    """Map a command's exit code and result to the task's action (pure).

    Args:
        code: the exit code ``funnelguard.cli.run`` returned.
        result: its result (``None`` for non-check commands).
        argv: the command line, for messages about commands without a result.
    """
    command = " ".join(argv[:2]) if argv else "command"
    if result is None:
        summary = f"funnelguard {command}: exit {code}"
        xcom: dict[str, Any] = {"command": command, "exit_code": code}
    else:
        summary = (failure_summary(result) if code != EXIT_PASS
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


def _store_error_run(result: RunResult, store_url: str | None) -> None:
    """The CLI stores only runs that completed; an errored check is stored here, so the
    nightly job sees "could not run" instead of "not run yet"."""
    if store_url is None or result.error is None:
        return
    from monitors.store import open_store

    try:
        open_store(store_url).record_run(result)
    except Exception as exc:  # noqa: BLE001 - the original error is the one to report
        print(f"funnelguard: could not store the error run: {exc}")


def run_command(argv: Sequence[str], *, store_url: str | None = None,
                environment: str | None = None) -> Mapping[str, Any]:
    """Run ``funnelguard ARGV`` in-process and map its outcome (see the module docstring).

    Args:
        argv: the command line without the program name, e.g. ``["gate", "--as-of", ...]``.
        store_url: the results store, where an errored run is recorded too.
        environment: the environment the command checks, recorded on an errored run.

    Returns:
        The task's XCom: command, partition, dataset, environment, status and artifact paths.
    """
    from funnelguard.cli import run

    argv = [str(a) for a in argv]
    print("funnelguard " + " ".join(argv))
    try:
        code, result = run(argv)
    except SystemExit as exc:  # argparse usage errors exit 2 with their message on stderr
        code = exc.code if isinstance(exc.code, int) else EXIT_INPUT
        result = RunResult(command=argv[0] if argv else "", partition=None,
                           error=ErrorInfo("input", f"usage error in: funnelguard {' '.join(argv)}"))
    if result is not None and result.error is not None:
        if environment is not None and result.environment is None:
            result = replace(result, environment=environment)
        _store_error_run(result, store_url)
    outcome = outcome_of(code, result, argv)
    print(outcome.summary)
    return raise_for(outcome)


def _parse_partition(value: Any, where: str) -> str:
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            f"expected a partition date YYYY-MM-DD in {where}, found {value!r}") from None


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


def output_root() -> Path:
    """Where reports, results and models go: ``$FUNNELGUARD_OUTPUT_DIR``, else the Airflow
    Variable ``funnelguard_output_dir``, else ``funnelguard-output`` in the working directory."""
    if os.environ.get(OUTPUT_ENV):
        return Path(os.environ[OUTPUT_ENV]).resolve()
    from airflow.sdk import Variable

    value = Variable.get("funnelguard_output_dir", default=None)
    return Path(value or "funnelguard-output").resolve()


def connection_urls() -> tuple[str, str]:
    """(warehouse URL, store URL) from the ``funnelguard_warehouse`` and ``funnelguard_store``
    connections; a missing or unusable connection fails the task (no retry)."""
    from funnelguard.orchestration.connections import (
        STORE_CONN_ID,
        WAREHOUSE_CONN_ID,
        ConnectionConfigError,
        url_for_connection,
    )

    try:
        return url_for_connection(WAREHOUSE_CONN_ID), url_for_connection(STORE_CONN_ID)
    except ConnectionConfigError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from exc
