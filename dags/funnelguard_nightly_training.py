"""Nightly training of a funnelguard project's funnel ranking model on the previous UTC day.

The partition is the UTC day before the run's logical date (Airflow 3's daily timetable has a
zero-width data interval, so it is derived explicitly), or the `partition` param; the model is
trained as of the day after it (`as_of = partition + 1`). The project is the `project` param
(a `funnelguard.yaml` or its folder), else `$FUNNELGUARD_PROJECT`, else `./funnelguard.yaml`,
else the packaged demo project: its contracts name the tables, the features and the funnel
stages (the model's heads). Steps: wait until the partition's offline and online snapshot
checks are stored with no error-severity failure (read from the results store: connection
`funnelguard_store`, else the project's `store:`); run the label-maturity gate; train under the
guard (the job builds the delay-aware training set, masks immature labels, stops on an anomaly
and triages it); evaluate the candidate against the champion; publish the model directory and
record it in the store as the new champion. Beside evaluation, `estimate` estimates the
online performance of the served scores of the last days before their labels arrive (the served
model, or the candidate where the served one cannot be re-run, replayed on the offline
features); a drop fails that task and alerts the scores' owner, without holding the publish. Alerts queued by any step are flushed to Slack
(`funnelguard_slack`; no such connection: `send_alerts` is skipped and they stay queued). The
gate, train and evaluate tasks log their stored run's page on the results site and link to it
("Results site", with `$FUNNELGUARD_BASE_URL` set). A gate block, a guard stop or a
regression fails the run without retry; only environment failures (database unreachable) are
retried.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
from airflow.sdk import (
    BaseOperatorLink,
    Param,
    PokeReturnValue,
    TriggerRule,
    dag,
    get_current_context,
    task,
)

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
    dag_id="funnelguard_nightly_training",
    schedule="30 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["funnelguard", "training"],
    doc_md=__doc__,
    params={
        "partition": Param(None, type=["null", "string"], format="date",
                           description="partition to train through, YYYY-MM-DD; "
                                       "default: the UTC day before the run"),
        "project": Param(None, type=["null", "string"],
                         description="project file (funnelguard.yaml) or its folder; default: "
                                     "$FUNNELGUARD_PROJECT, else ./funnelguard.yaml, else the "
                                     "packaged demo project"),
        "train_config": Param(None, type=["null", "string"],
                              description="training config file (default: the project's "
                                          "defaults.model_config, else the packaged one)"),
        "evaluate_thresholds": Param(None, type=["null", "string"],
                                     description="evaluation floors and tolerances file "
                                                 "(default: the project's defaults.thresholds, "
                                                 "else the packaged ones)"),
        "wait_for_snapshot_checks": Param(
            True, type="boolean",
            description="hold training until the partition's snapshot checks are stored and "
                        "clean; turn off only to retrain after the on-call has cleared a finding"),
    },
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "execution_timeout": dt.timedelta(hours=1),
        "on_failure_callback": [notify_slack_of_failure],
    },
)
def funnelguard_nightly_training():
    @task
    def resolve_partition() -> str:
        from funnelguard.orchestration.airflow_tasks import nightly_partition

        context = get_current_context()
        return nightly_partition(context["params"], context.get("logical_date"),
                                 context["dag_run"].run_after)

    @task.sensor(poke_interval=300, timeout=8 * 3600, mode="reschedule")
    def wait_for_snapshot_checks(partition: str) -> PokeReturnValue:
        from funnelguard.orchestration.jobs import snapshot_checks_ready

        if not get_current_context()["params"]["wait_for_snapshot_checks"]:
            print("not waiting for the snapshot checks: wait_for_snapshot_checks is off")
            return PokeReturnValue(is_done=True, xcom_value={"partition": partition, "waited": False})
        done, summary = snapshot_checks_ready(partition, project_param())
        return PokeReturnValue(is_done=done, xcom_value=summary)

    @task
    def label_gate(partition: str) -> dict:
        from funnelguard.orchestration.jobs import label_gate

        return label_gate(partition, project_param())

    @task(execution_timeout=dt.timedelta(hours=3))
    def train(partition: str) -> dict:
        from funnelguard.orchestration.jobs import train_candidate

        context = get_current_context()
        return train_candidate(partition, context["params"]["train_config"],
                               run_id=context["run_id"], project=project_param())

    @task
    def evaluate(partition: str, candidate: dict) -> dict:
        from funnelguard.orchestration.jobs import evaluate_candidate

        params = get_current_context()["params"]
        return evaluate_candidate(partition, candidate, thresholds=params["evaluate_thresholds"],
                                  project=project_param())

    @task
    def publish(partition: str, candidate: dict, evaluation: dict) -> dict:
        from funnelguard.orchestration.jobs import publish_candidate

        return publish_candidate(partition, candidate, evaluation, project_param())

    @task
    def estimate(partition: str, candidate: dict) -> dict:
        from funnelguard.orchestration.jobs import estimate_performance

        return estimate_performance(partition, candidate, project_param())

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def send_alerts() -> dict:
        from funnelguard.orchestration.jobs import send_alerts

        return send_alerts(project_param())

    @task(trigger_rule=TriggerRule.ONE_FAILED, retries=0, on_failure_callback=None)
    def training_failed() -> None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("the nightly training did not publish: see the failed step")

    partition = resolve_partition()
    ready = wait_for_snapshot_checks(partition)
    gate = label_gate(partition)
    candidate = train(partition)
    evaluation = evaluate(partition, candidate)
    estimated = estimate(partition, candidate)
    linked_to_site(gate, candidate, evaluation, estimated)
    published = publish(partition, candidate, evaluation)
    ready >> gate >> candidate
    steps = [partition, ready, gate, candidate, evaluation, published]
    [*steps, estimated] >> send_alerts()
    steps >> training_failed()


funnelguard_nightly_training()
