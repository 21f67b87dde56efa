"""Running a DAG under ``dag.test()`` in the tests: quick retries, the states it ended in."""

from __future__ import annotations

from typing import Any

# Each DAG's params as declared, captured before any run. ``dag.test()`` runs the tasks in this
# process and Airflow merges a run's conf into the DAG's own Param objects, so a param one test
# set would otherwise carry over into the next test's run of the same (session) DAG.
_DECLARED: dict[str, dict[str, Any]] = {}


def run_dag(dagbag, dag_id: str, **conf) -> tuple[str, dict[str, str]]:
    """``dag.test()`` with quick retries and every param not in ``conf`` at its declared
    default; returns the run state and each task's state."""
    from airflow.utils.session import create_session

    from funnelguard.demo import quick_retries

    dag = dagbag.get_dag(dag_id)
    declared = _DECLARED.setdefault(dag_id, {k: p.value for k, p in dag.params.items()})
    quick_retries(dag)
    run = dag.test(run_conf={**declared, **conf})
    with create_session() as session:
        tis = run.get_task_instances(session=session)
        states = {}
        for ti in tis:
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            states[key] = str(getattr(ti.state, "value", ti.state))
    return str(getattr(run.state, "value", run.state)), states
