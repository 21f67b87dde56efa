"""Running a DAG under ``dag.test()`` in the tests, as the demo does: quick retries, the run dated
and noted with its partition, task log files (:func:`funnelguard.demo.dag_test.run_partition`)."""

from __future__ import annotations

from typing import Any

# Each DAG's params as declared, captured before any run. ``dag.test()`` runs the tasks in this
# process and Airflow merges a run's conf into the DAG's own Param objects, so a param one test
# set would otherwise carry over into the next test's run of the same (session) DAG.
_DECLARED: dict[str, dict[str, Any]] = {}


def dag_test_run(dagbag, dag_id: str, partition: str, **conf):
    """``dag.test()`` of ``partition`` with every param not in ``conf`` at its declared default;
    returns the :class:`~funnelguard.demo.dag_test.DagTestRun`."""
    from funnelguard.demo.dag_test import run_partition

    dag = dagbag.get_dag(dag_id)
    declared = _DECLARED.setdefault(dag_id, {k: p.value for k, p in dag.params.items()})
    return run_partition(dag, partition, {**declared, **conf})


def task_states(dag_id: str, run_id: str) -> dict[str, str]:
    """Each task's state by ``task_id`` (``task_id[map_index]`` for a mapped one)."""
    import sqlalchemy as sa
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(sa.select(TaskInstance.task_id, TaskInstance.map_index,
                                         TaskInstance.state)
                               .where(TaskInstance.dag_id == dag_id,
                                      TaskInstance.run_id == run_id)).all()
    return {(task if index < 0 else f"{task}[{index}]"): str(getattr(state, "value", state))
            for task, index, state in rows}


def run_dag(dagbag, dag_id: str, partition: str, **conf) -> tuple[str, dict[str, str]]:
    """``dag.test()`` as :func:`dag_test_run`; returns the run state and each task's state."""
    run = dag_test_run(dagbag, dag_id, partition, **conf)
    return run.state, task_states(dag_id, run.run_id)
