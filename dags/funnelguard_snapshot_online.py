"""Snapshot checks of the **online** (served) feature partition of a funnelguard project.

Runs when both the serving-log export (`funnelguard://warehouse/serving_log`) and the batch
feature pipeline (`funnelguard://warehouse/offline_features`) have updated their assets with
`extra={"partition": "YYYY-MM-DD"}` — the replay-skew join needs both sides of the partition (a
manual run takes the `partition` param instead). The project is the `project` param (a
`funnelguard.yaml` or its folder), else `$FUNNELGUARD_PROJECT`, else `./funnelguard.yaml`, else
the packaged demo project; the warehouse is the connection `funnelguard_warehouse`, else the
project's `warehouse:`. For each partition named: validation of the online table of the
project's features contract, drift online vs offline and against the trailing reference
window with the default-value rate per segment, replay skew (online joined to offline on the
contract's key), and freshness and volume. Every result goes to the results store
(connection `funnelguard_store`, else the project's `store:`); queued alerts are flushed to
Slack (`funnelguard_slack`) even when a check fails (no such connection: `send_alerts` is
skipped and they stay queued). Each mapped check is labelled by its partition and links to its
stored run's page on the results site ("Results site", with `$FUNNELGUARD_BASE_URL` set). A
failed check fails its task without retry and the run goes red; only environment failures
(database unreachable) are retried.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
from airflow.sdk import Asset, BaseOperatorLink, Param, TriggerRule, dag, get_current_context, task

ENVIRONMENT = "online"
OFFLINE_FEATURES = Asset(name="funnelguard_offline_features",
                         uri="funnelguard://warehouse/offline_features", group="funnelguard")
SERVING_LOG = Asset(name="funnelguard_serving_log",
                    uri="funnelguard://warehouse/serving_log", group="funnelguard")

# A mapped check's label in the UI: its partition, not "[0]".
BY_PARTITION = "{{ task.op_kwargs['partition'] }}"

FAILURE_TEXT = (":red_circle: *{{ dag.dag_id }}* task `{{ ti.task_id }}` failed "
                "(try {{ ti.try_number }})\n{{ exception }}\nLog: {{ ti.log_url }}")


def notify_slack_of_failure(context) -> None:
    """Post the failed task's summary to ``funnelguard_slack``. A fresh notifier per call:
    a notifier renders its template in place, so a shared one would repeat its first text."""
    SlackWebhookNotifier(slack_webhook_conn_id="funnelguard_slack", text=FAILURE_TEXT)(context)


class ResultsSiteLink(BaseOperatorLink):
    """A task's "Results site" button: its run's page, ``$FUNNELGUARD_BASE_URL/runs/<id>.html``.

    The task pushes the URL (XCom ``funnelguard_site_page``) before it succeeds or fails; the
    link reads it back, so the UI needs no plugin. No base URL: no link (the log names the page).
    """

    name = "Results site"
    xcom_key = "funnelguard_site_page"

    def get_link(self, operator, *, ti_key) -> str:
        from airflow.sdk import BaseXCom

        return BaseXCom.get_one(key=self.xcom_key, dag_id=ti_key.dag_id, task_id=ti_key.task_id,
                                run_id=ti_key.run_id, map_index=ti_key.map_index) or ""


def linked_to_site(*outputs):
    """Give each task of ``outputs`` the "Results site" extra link (set after the ``@task``
    call: the decorator has no argument for it)."""
    for output in outputs:
        output.operator.operator_extra_links = [ResultsSiteLink()]
    return list(outputs)


def project_param() -> str | None:
    """The run's ``project`` param (None: the environment's or the packaged project)."""
    return get_current_context()["params"].get("project")


@dag(
    dag_id="funnelguard_snapshot_online",
    schedule=(SERVING_LOG & OFFLINE_FEATURES),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["funnelguard", "snapshot", "online"],
    doc_md=__doc__,
    params={
        "partition": Param(None, type=["null", "string"], format="date",
                           description="partition for a manual run, YYYY-MM-DD"),
        "project": Param(None, type=["null", "string"],
                         description="project file (funnelguard.yaml) or its folder; default: "
                                     "$FUNNELGUARD_PROJECT, else ./funnelguard.yaml, else the "
                                     "packaged demo project"),
    },
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "execution_timeout": dt.timedelta(minutes=45),
        "on_failure_callback": [notify_slack_of_failure],
    },
)
def funnelguard_snapshot_online():
    @task
    def resolve_partitions() -> list[str]:
        from funnelguard.orchestration.airflow_tasks import snapshot_partitions

        context = get_current_context()
        return snapshot_partitions(context["params"], context["triggering_asset_events"])

    @task(map_index_template=BY_PARTITION)
    def validate_features(partition: str) -> dict:
        from funnelguard.orchestration.jobs import snapshot_check

        return snapshot_check("validate_features", ENVIRONMENT, partition, project_param())

    @task(map_index_template=BY_PARTITION)
    def drift(partition: str) -> dict:
        from funnelguard.orchestration.jobs import snapshot_check

        return snapshot_check("drift", ENVIRONMENT, partition, project_param())

    @task(map_index_template=BY_PARTITION)
    def skew(partition: str) -> dict:
        from funnelguard.orchestration.jobs import snapshot_check

        return snapshot_check("skew", ENVIRONMENT, partition, project_param())

    @task(map_index_template=BY_PARTITION)
    def freshness(partition: str) -> dict:
        from funnelguard.orchestration.jobs import snapshot_check

        return snapshot_check("freshness", ENVIRONMENT, partition, project_param())

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def record_snapshot(partitions: list[str]) -> dict:
        from funnelguard.orchestration.jobs import record_snapshot

        return record_snapshot(ENVIRONMENT, partitions, project_param())

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def send_alerts() -> dict:
        from funnelguard.orchestration.jobs import send_alerts

        return send_alerts(project_param())

    @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0, on_failure_callback=None)
    def checks_failed() -> None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a snapshot check failed: see the failed tasks and the alert")

    partitions = resolve_partitions()
    checks = linked_to_site(validate_features.expand(partition=partitions),
                            drift.expand(partition=partitions), skew.expand(partition=partitions),
                            freshness.expand(partition=partitions))
    recorded = record_snapshot(partitions)
    checks >> recorded >> send_alerts()
    checks >> checks_failed()


funnelguard_snapshot_online()
