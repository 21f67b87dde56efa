"""The steps of the scheduled jobs, one function per DAG task.

Each function resolves at run time the project (the DAG's ``project`` param, else
``$FUNNELGUARD_PROJECT`` ...; :func:`~funnelguard.orchestration.airflow_tasks.job_project`), the
warehouse and store URLs (connections, else the project's) and the output folder, then calls
the command's typed function by its registered name (:func:`funnelguard.commands.job`) through
:func:`~funnelguard.orchestration.airflow_tasks.run_job` (exit 0 → XCom, 1/2 →
``AirflowFailException``, 3 → retry). No command line is built. Output layout under
:func:`~funnelguard.orchestration.airflow_tasks.output_root`::

    results/PARTITION/ENV/CHECK.json      every command's result document
    reports/PARTITION/                     HTML reports (drift, skew, freshness)
    models/candidates/AS_OF/               the nightly candidate (train's out_dir)
    models/published/VERSION/              published models (the champion is in fg_models)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funnelguard.orchestration.airflow_tasks import (
    job_project,
    output_root,
    run_job,
    store_url,
    warehouse_url,
)

if TYPE_CHECKING:
    from funnelguard.findings import RunResult
    from funnelguard.project import Project

__all__ = [
    "SNAPSHOT_CHECKS",
    "SnapshotCall",
    "snapshot_call",
    "snapshot_check",
    "record_snapshot",
    "send_alerts",
    "flush_alerts",
    "snapshot_checks_ready",
    "label_gate",
    "train_candidate",
    "evaluate_candidate",
    "publish_candidate",
    "estimate_performance",
]

# What each snapshot DAG runs (the DAG's task ids). The offline snapshot is validated on its
# own as soon as it lands; drift (online vs offline and each vs its trailing window, with the
# default-value rate per segment), replay skew and freshness/volume compare both environments,
# so they run in the online DAG, which waits for both assets.
SNAPSHOT_CHECKS: Mapping[str, tuple[str, ...]] = {
    "offline": ("validate_features", "validate_impressions"),
    "online": ("validate_features", "drift", "skew", "freshness"),
}


@dataclass(frozen=True)
class SnapshotCall:
    """One snapshot check as a call: the registered command and its keyword options."""

    command: str
    options: Mapping[str, Any]


def _as_of(partition: str) -> dt.date:
    """Training on partition D uses the knowledge available at D + 1, 00:00 UTC."""
    return dt.date.fromisoformat(partition) + dt.timedelta(days=1)


def snapshot_call(check: str, environment: str, partition: str, *, store: str,
                  root: Path) -> SnapshotCall:
    """The command and options of one snapshot check (pure).

    Args:
        check: one of :data:`SNAPSHOT_CHECKS` ``[environment]``; ``validate_<part>``
            validates that part of the project (``features``, ``impressions``).
        environment: ``offline`` or ``online``.
        partition: the partition, ISO.
        store: the results store URL (history for "failing since").
        root: the output folder.

    Raises:
        ValueError: ``check`` is not one of the environment's checks.
    """
    if check not in SNAPSHOT_CHECKS.get(environment, ()):
        raise ValueError(f"expected a check of {dict(SNAPSHOT_CHECKS)}, found {check!r} for "
                         f"environment {environment!r}")
    if check.startswith("validate_"):
        return SnapshotCall("validate", {"environment": environment,
                                         "dataset": check.removeprefix("validate_")})
    # drift, skew, freshness: both environments of the features contract, HTML beside results
    return SnapshotCall(check, {"store_url": store,
                                "html_dir": str(root / "reports" / partition)})


def _call(command: str, project: Project, warehouse: str, when: dt.date,
          options: Mapping[str, Any]):
    """A call of the registered function ``command`` on a fresh warehouse engine."""
    from funnelguard.commands import job

    def call() -> RunResult:
        from funnelguard.warehouse import connect

        function = job(command)
        engine = connect(warehouse)
        try:
            return function(project, engine, when, **options)
        finally:
            engine.dispose()

    return call


def _run(command: str, project: Project, when: dt.date, options: Mapping[str, Any], *,
         store: str, json_out: Path, environment: str | None = None) -> Mapping[str, Any]:
    call = _call(command, project, warehouse_url(project), when, options)
    return run_job(command, call, project=project, partition=when, store_url=store,
                   json_out=json_out, environment=environment)


def snapshot_check(check: str, environment: str, partition: str,
                   project: str | None = None) -> Mapping[str, Any]:
    """Run one snapshot check of ``environment`` on ``partition`` (a snapshot DAG task)."""
    proj = job_project(project)
    store, root = store_url(proj), output_root(proj)
    planned = snapshot_call(check, environment, partition, store=store, root=root)
    return _run(planned.command, proj, dt.date.fromisoformat(partition), planned.options,
                store=store, json_out=root / "results" / partition / environment / f"{check}.json",
                environment=environment)


def record_snapshot(environment: str, partitions: Sequence[str],
                    project: str | None = None) -> Mapping[str, Any]:
    """Store the marker saying the environment's snapshot checks finished for ``partitions``
    (whatever their verdicts: the nightly job reads those from the store)."""
    from funnelguard.orchestration.readiness import snapshot_marker
    from monitors.store import open_store

    proj = job_project(project)
    store = open_store(store_url(proj))
    for partition in partitions:
        store.record_run(snapshot_marker(environment, partition, SNAPSHOT_CHECKS[environment]),
                         project=proj)
    return {"environment": environment, "partitions": list(partitions)}


def send_alerts(project: str | None = None) -> Mapping[str, Any]:
    """The DAGs' ``send_alerts`` task: :func:`flush_alerts`, unless no Slack connection exists.

    Without a ``funnelguard_slack`` connection the task is skipped (not failed): the alerts
    stay queued in the store's outbox and go out with the first run after the connection is
    added. A connection that exists but cannot be used (no webhook URL …) is not skipped: the
    flush fails on it as before.

    Raises:
        AirflowSkipException: no ``funnelguard_slack`` connection.
    """
    from funnelguard.orchestration.airflow_tasks import connection_defined
    from funnelguard.orchestration.connections import SLACK_CONN_ID

    if not connection_defined(SLACK_CONN_ID):
        from airflow.sdk.exceptions import AirflowSkipException

        queued = _queued_alerts(project)
        waiting = ("queued alerts stay" if queued is None
                   else "no alert is queued; new ones wait" if queued == 0
                   else f"{queued} queued alert(s) stay")
        line = (f"alerts not sent: no Airflow connection {SLACK_CONN_ID!r}; {waiting} in the "
                f"results store's outbox until it exists (airflow connections add "
                f"{SLACK_CONN_ID} --conn-type slackwebhook --conn-password WEBHOOK_URL, or "
                f"AIRFLOW_CONN_{SLACK_CONN_ID.upper()}; docs/operations.md)")
        print(line)
        raise AirflowSkipException(line)
    return flush_alerts(project)


def _queued_alerts(project: str | None) -> int | None:
    """How many alerts wait in the outbox (None when the store cannot say)."""
    import sqlalchemy as sa
    from airflow.sdk.exceptions import AirflowFailException

    from funnelguard.errors import FunnelguardError
    from monitors.store import open_store
    from monitors.store.models import AlertOutbox

    try:
        with open_store(store_url(job_project(project))).session() as s:
            return s.scalar(sa.select(sa.func.count()).select_from(AlertOutbox)
                            .where(AlertOutbox.status.in_(("pending", "sending"))))
    except (AirflowFailException, FunnelguardError, sa.exc.SQLAlchemyError):
        return None  # the count is a courtesy: the skip stands without it


def flush_alerts(project: str | None = None) -> Mapping[str, Any]:
    """Deliver the alerts queued in the store's outbox to Slack (``funnelguard_slack``).

    Each queued alert is addressed from the contracts its own run used (carried on the row),
    so one flush serves every project that shares the store.
    """
    from funnelguard.errors import FunnelguardError
    from funnelguard.findings import ErrorInfo, RunResult
    from funnelguard.orchestration.airflow_tasks import outcome_of, raise_for
    from funnelguard.orchestration.connections import SLACK_CONN_ID
    from monitors.alerts.dispatch import flush

    url = store_url(job_project(project))
    try:
        report = flush(url, SLACK_CONN_ID)
    except FunnelguardError as exc:
        code, result = exc.exit_code, RunResult("alerts flush", None,
                                                error=ErrorInfo(exc.kind, str(exc)))
    else:
        code, result = report.exit_code, report.to_result()
        print(f"alerts flush: {len(report.sent)} sent, {len(report.kept)} kept for retry, "
              f"{len(report.failed)} rejected")
        if code != 3:  # a rejection is an operator-visible, stored finding (as from the CLI)
            from monitors.store import open_store

            try:
                open_store(url).record_run(result)
            except FunnelguardError as exc:
                print(f"alerts flush: the result could not be stored: {exc}")
    return raise_for(outcome_of(code, result, "alerts flush"))


def snapshot_checks_ready(partition: str,
                          project: str | None = None) -> tuple[bool, dict[str, Any]]:
    """Poke: are the partition's snapshot checks stored, in both environments, and clean?

    Returns:
        (done, summary): ``done`` is false while an environment has not finished.

    Raises:
        AirflowFailException: a snapshot check failed or could not run: training must not use
            this partition (no retry, the notifier fires with the list).
    """
    from funnelguard.orchestration.readiness import snapshot_readiness
    from monitors.store import open_store

    readiness = snapshot_readiness(open_store(store_url(job_project(project))), partition)
    print(readiness.describe())
    if readiness.blocking:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"training held: {readiness.describe()}")
    return readiness.ready, {"partition": partition, "missing": list(readiness.missing)}


def label_gate(partition: str, project: str | None = None) -> Mapping[str, Any]:
    """The label-maturity gate as of the day after ``partition``; a block fails the run."""
    proj = job_project(project)
    store = store_url(proj)
    out = output_root(proj) / "results" / partition / "training" / "gate.json"
    return _run("gate", proj, _as_of(partition), {}, store=store, json_out=out)


def train_candidate(partition: str, config: str | None, *, run_id: str = "",
                    project: str | None = None) -> Mapping[str, Any]:
    """Train the candidate under the guard as of the day after ``partition``.

    A guard stop exits 1: the task fails with the triage verdict in its summary.

    Args:
        partition: the nightly partition.
        config: a training config file; None: the project's ``defaults.model_config``, else
            the packaged one.
        run_id: the DAG run, kept in the XCom.
        project: the DAG's ``project`` param.
    """
    proj = job_project(project)
    store, root, as_of = store_url(proj), output_root(proj), _as_of(partition)
    out_dir = root / "models" / "candidates" / as_of.isoformat()
    options = {"out_dir": str(out_dir), "config": config or None, "store_url": store}
    out = root / "results" / partition / "training" / "train.json"
    xcom = dict(_run("train", proj, as_of, options, store=store, json_out=out))
    xcom.update(model_dir=str(out_dir.resolve()), as_of=as_of.isoformat(), run_id=run_id)
    return xcom


def evaluate_candidate(partition: str, candidate: Mapping[str, Any], *,
                       thresholds: str | None = None,
                       project: str | None = None) -> Mapping[str, Any]:
    """Evaluate the candidate on the matured holdout, against the champion when there is one.

    Args:
        partition: the nightly partition.
        candidate: the train task's XCom (``model_dir``, ``as_of``).
        thresholds: a file overriding the evaluation floors and tolerances.
        project: the DAG's ``project`` param.
    """
    from funnelguard.orchestration.publishing import champion
    from monitors.store import open_store

    proj = job_project(project)
    store = store_url(proj)
    current = champion(open_store(store))
    options = {"model": candidate["model_dir"], "thresholds": thresholds or None,
               "champion": current.path if current is not None and Path(current.path).is_dir()
               else None}
    out = output_root(proj) / "results" / partition / "training" / "evaluate.json"
    xcom = dict(_run("evaluate", proj, dt.date.fromisoformat(candidate["as_of"]), options,
                     store=store, json_out=out))
    xcom["champion"] = current.version if current else None
    return xcom


def publish_candidate(partition: str, candidate: Mapping[str, Any],
                      evaluation: Mapping[str, Any],
                      project: str | None = None) -> Mapping[str, Any]:
    """Publish the evaluated candidate and record it as the champion."""
    from funnelguard.orchestration.publishing import publish_model
    from monitors.store import open_store

    proj = job_project(project)
    published = publish_model(
        open_store(store_url(proj)), model_dir=candidate["model_dir"], as_of=candidate["as_of"],
        published_root=output_root(proj) / "models" / "published",
        metrics={"evaluation": evaluation.get("artifacts", {}),
                 "replaced": evaluation.get("champion")})
    return {"version": published.version, "path": published.path, "partition": partition}


def estimate_performance(partition: str, candidate: Mapping[str, Any] | None = None,
                         project: str | None = None) -> Mapping[str, Any]:
    """Estimated performance of the served scores of the days up to ``partition``, before
    their labels arrive; a drop beyond the trailing days and the replayed scores fails.

    The model replayed on the offline features is the served one where it can be re-run,
    else the candidate the train task wrote (:func:`model.evaluation.estimate_commands.
    replay_model`).

    Args:
        partition: the nightly partition (the last day estimated; as of the day after).
        candidate: the train task's XCom (``model_dir``), or None.
        project: the DAG's ``project`` param.
    """
    from model.evaluation.estimate_commands import replay_model

    proj = job_project(project)
    store = store_url(proj)
    model = replay_model(proj, (candidate or {}).get("model_dir"))
    out = output_root(proj) / "results" / partition / "training" / "estimate.json"
    return _run("estimate", proj, _as_of(partition), {"model": model, "store_url": store},
                store=store, json_out=out)
