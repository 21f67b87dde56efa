"""The steps of the scheduled jobs, one function per DAG task.

Each function resolves the connections and the output folder at run time, builds one
``funnelguard`` command line and runs it through :func:`funnelguard.orchestration.airflow_tasks.run_command`
(exit 0 → XCom, 1/2 → ``AirflowFailException``, 3 → retry). Output layout under
:func:`~funnelguard.orchestration.airflow_tasks.output_root`::

    results/PARTITION/ENV/CHECK.json      every command's --json document
    reports/PARTITION/ENV/                 HTML reports (drift, skew)
    models/candidates/AS_OF/               the nightly candidate (train --out)
    models/published/VERSION/              published models (the champion is in fg_models)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from funnelguard.orchestration.airflow_tasks import connection_urls, output_root, run_command

__all__ = [
    "SNAPSHOT_CHECKS",
    "snapshot_argv",
    "snapshot_check",
    "record_snapshot",
    "flush_alerts",
    "snapshot_checks_ready",
    "label_gate",
    "train_candidate",
    "evaluate_candidate",
    "publish_candidate",
]

# What each snapshot DAG runs (the DAG's task ids). The offline snapshot is validated on its
# own as soon as it lands; drift (online vs offline and each vs its trailing window, with the
# default-value rate per segment), replay skew and freshness/volume compare both environments,
# so they run in the online DAG, which waits for both assets.
SNAPSHOT_CHECKS: Mapping[str, tuple[str, ...]] = {
    "offline": ("validate_features", "validate_impressions"),
    "online": ("validate_features", "drift", "skew", "freshness"),
}


def _as_of(partition: str) -> str:
    """Training on partition D uses the knowledge available at D + 1, 00:00 UTC."""
    return (dt.date.fromisoformat(partition) + dt.timedelta(days=1)).isoformat()


def snapshot_argv(check: str, environment: str, partition: str, *, warehouse: str, store: str,
                  root: Path) -> list[str]:
    """The command line of one snapshot check.

    Args:
        check: one of :data:`SNAPSHOT_CHECKS` ``[environment]``.
        environment: ``offline`` or ``online``.
        partition: the partition (ds), ISO.
        warehouse, store: SQLAlchemy URLs.
        root: the output folder.

    Raises:
        ValueError: ``check`` is not one of the environment's checks.
    """
    if check not in SNAPSHOT_CHECKS.get(environment, ()):
        raise ValueError(f"expected a check of {dict(SNAPSHOT_CHECKS)}, found {check!r} for "
                         f"environment {environment!r}")
    common = ["--warehouse", warehouse, "--date", partition, "--store", store,
              "--json", str(root / "results" / partition / environment / f"{check}.json")]
    if check == "validate_features":
        return ["validate", "--env", environment, *common]
    if check == "validate_impressions":
        return ["validate", "--contract", "impressions", "--env", environment, *common]
    # drift, skew, freshness: both environments of ranking_features, HTML beside the results
    return [check, *common, "--html", str(root / "reports" / partition)]


def snapshot_check(check: str, environment: str, partition: str) -> Mapping[str, Any]:
    """Run one snapshot check of ``environment`` on ``partition`` (a snapshot DAG task)."""
    warehouse, store = connection_urls()
    argv = snapshot_argv(check, environment, partition, warehouse=warehouse, store=store,
                         root=output_root())
    return run_command(argv, store_url=store, environment=environment)


def record_snapshot(environment: str, partitions: Sequence[str]) -> Mapping[str, Any]:
    """Store the marker saying the environment's snapshot checks finished for ``partitions``
    (whatever their verdicts: the nightly job reads those from the store)."""
    from funnelguard.orchestration.readiness import snapshot_marker
    from monitors.store import open_store

    _, store_url = connection_urls()
    store = open_store(store_url)
    for partition in partitions:
        store.record_run(snapshot_marker(environment, partition, SNAPSHOT_CHECKS[environment]))
    return {"environment": environment, "partitions": list(partitions)}


def flush_alerts() -> Mapping[str, Any]:
    """Deliver the alerts queued in the store's outbox to Slack (``funnelguard_slack``)."""
    from funnelguard.orchestration.connections import SLACK_CONN_ID

    _, store = connection_urls()
    return run_command(["alerts", "flush", "--store", store, "--slack-conn", SLACK_CONN_ID],
                       store_url=store)


def snapshot_checks_ready(partition: str) -> tuple[bool, dict[str, Any]]:
    """Poke: are the partition's snapshot checks stored, in both environments, and clean?

    Returns:
        (done, summary): ``done`` is false while an environment has not finished.

    Raises:
        AirflowFailException: a snapshot check failed or could not run: training must not use
            this partition (no retry, the notifier fires with the list).
    """
    from funnelguard.orchestration.readiness import snapshot_readiness
    from monitors.store import open_store

    _, store_url = connection_urls()
    readiness = snapshot_readiness(open_store(store_url), partition)
    print(readiness.describe())
    if readiness.blocking:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"training held: {readiness.describe()}")
    return readiness.ready, {"partition": partition, "missing": list(readiness.missing)}


def label_gate(partition: str) -> Mapping[str, Any]:
    """The label-maturity gate as of the day after ``partition``; a block fails the run."""
    warehouse, store = connection_urls()
    as_of = _as_of(partition)
    out = output_root() / "results" / partition / "training" / "gate.json"
    return run_command(["gate", "--warehouse", warehouse, "--as-of", as_of, "--store", store,
                        "--json", str(out)], store_url=store)


def train_candidate(partition: str, config: str | None, *, run_id: str = "") -> Mapping[str, Any]:
    """Train the candidate under the guard as of the day after ``partition``.

    A guard stop exits 1: the task fails with the triage verdict in its summary.
    """
    warehouse, store = connection_urls()
    as_of = _as_of(partition)
    root = output_root()
    out_dir = root / "models" / "candidates" / as_of
    argv = ["train", "--warehouse", warehouse, "--as-of", as_of, "--out", str(out_dir),
            "--store", store, "--json", str(root / "results" / partition / "training" / "train.json")]
    if config:
        argv += ["--config", config]
    xcom = dict(run_command(argv, store_url=store))
    xcom.update(model_dir=str(out_dir.resolve()), as_of=as_of, run_id=run_id)
    return xcom


def evaluate_candidate(partition: str, candidate: Mapping[str, Any], *,
                       thresholds: str | None = None) -> Mapping[str, Any]:
    """Evaluate the candidate on the matured holdout, against the champion when there is one.

    Args:
        partition: the nightly partition.
        candidate: the train task's XCom (``model_dir``, ``as_of``).
        thresholds: a file overriding the evaluation floors and tolerances.
    """
    from funnelguard.orchestration.publishing import champion
    from monitors.store import open_store

    warehouse, store = connection_urls()
    current = champion(open_store(store))
    argv = ["evaluate", "--model", candidate["model_dir"], "--warehouse", warehouse,
            "--as-of", candidate["as_of"], "--store", store,
            "--json", str(output_root() / "results" / partition / "training" / "evaluate.json")]
    if current is not None and Path(current.path).is_dir():
        argv += ["--champion", current.path]
    if thresholds:
        argv += ["--thresholds", thresholds]
    xcom = dict(run_command(argv, store_url=store))
    xcom["champion"] = current.version if current else None
    return xcom


def publish_candidate(partition: str, candidate: Mapping[str, Any],
                      evaluation: Mapping[str, Any]) -> Mapping[str, Any]:
    """Publish the evaluated candidate and record it as the champion."""
    from funnelguard.orchestration.publishing import publish_model
    from monitors.store import open_store

    _, store = connection_urls()
    published = publish_model(
        open_store(store), model_dir=candidate["model_dir"], as_of=candidate["as_of"],
        published_root=output_root() / "models" / "published",
        metrics={"evaluation": evaluation.get("artifacts", {}),
                 "replaced": evaluation.get("champion")})
    return {"version": published.version, "path": published.path, "partition": partition}
