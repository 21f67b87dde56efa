"""One ``dag.test()`` run of a funnelguard DAG for one partition, as the UI should show it.

What ``make demo`` and the DAG tests need around Airflow 3.3's ``dag.test()``:

- **Retries that do not sleep 5 minutes** (:func:`quick_retries`): ``dag.test()`` really
  sleeps ``retry_delay``.
- **The partition on the run.** ``dag.test()`` takes no run id (it names the run
  ``manual__<run_after>``) and a task cannot set its run's note (the Task SDK has no call
  for it; ``context["dag_run"]`` is a read-only copy). So the run is given the logical date a
  scheduled run of that partition would have (:func:`partition_logical_date`: the partition's
  midnight UTC for the snapshot DAGs, the next day's 02:30 UTC for the nightly training), which
  also names the run (``manual__2026-10-24T00:00:00+00:00``), and once it has finished the note
  ``partition 2026-10-24`` is written on it through the metadata DB (:func:`note_run`).
- **Task logs** (:class:`~funnelguard.demo.task_logs.TaskLogFiles`): each try's file where
  the UI reads it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DagTestRun", "quick_retries", "partition_logical_date", "run_note", "note_run",
           "run_partition"]

NIGHTLY_DAG = "funnelguard_nightly_training"
NIGHTLY_AT = dt.time(2, 30)  # the nightly DAG's schedule, "30 2 * * *" (UTC)


@dataclass(frozen=True)
class DagTestRun:
    """A finished ``dag.test()`` run.

    Attributes:
        dag_id: the DAG.
        partition: the partition it checked (or trained through).
        state: the run's final state (``success``, ``failed``).
        run_id: its Airflow run id.
        note: the note written on it.
        log_files: each task try's log file, in the order the tries started.
    """

    dag_id: str
    partition: str
    state: str
    run_id: str
    note: str
    log_files: tuple[Path, ...]


def quick_retries(dag, delay: dt.timedelta = dt.timedelta(seconds=5)) -> None:
    """One quick retry per task: ``dag.test()`` really sleeps ``retry_delay`` (5 minutes in
    the DAG files), which a demo on a laptop or a test should not."""
    for task in dag.tasks:
        task.retries = min(task.retries, 1)
        task.retry_delay = delay
        task.retry_exponential_backoff = False


def partition_logical_date(dag_id: str, partition: str) -> dt.datetime:
    """The logical date a scheduled run of ``partition`` has: the nightly training of day D
    runs at D+1 02:30 UTC; a snapshot DAG's run is dated by its partition's midnight UTC."""
    day = dt.date.fromisoformat(partition)
    if dag_id == NIGHTLY_DAG:
        return dt.datetime.combine(day + dt.timedelta(days=1), NIGHTLY_AT, dt.UTC)
    return dt.datetime.combine(day, dt.time(0, 0), dt.UTC)


def run_note(dag_id: str, partition: str) -> str:
    """The note a run of ``partition`` carries (Markdown, shown on the run in the UI)."""
    if dag_id == NIGHTLY_DAG:
        as_of = dt.date.fromisoformat(partition) + dt.timedelta(days=1)
        return f"partition {partition} (trained as of {as_of.isoformat()})"
    return f"partition {partition}"


def note_run(dag_id: str, run_id: str, note: str) -> None:
    """Write ``note`` on a run through the metadata DB (what the UI's "Add note" does)."""
    import sqlalchemy as sa
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.scalar(sa.select(DagRun).where(DagRun.dag_id == dag_id,
                                                     DagRun.run_id == run_id))
        if run is None:
            raise LookupError(f"expected a run {run_id!r} of {dag_id!r}, found none")
        run.note = note


def run_partition(dag, partition: str, conf: Mapping[str, Any] | None = None, *,
                   logs=None) -> DagTestRun:
    """Run ``dag`` with ``dag.test()`` for ``partition``: quick retries, the logical date of
    that partition, the ``partition`` param, task log files, then the run's note.

    Args:
        dag: the DAG (from a ``DagBag``).
        partition: the partition, ``YYYY-MM-DD``.
        conf: further params (``train_config`` …); ``partition`` is set from ``partition``.
        logs: a :class:`~funnelguard.demo.task_logs.TaskLogFiles` already listening (the demo
            keeps one for all its runs); None: one for this run.
    """
    from funnelguard.demo.task_logs import TaskLogFiles

    quick_retries(dag)
    when = partition_logical_date(dag.dag_id, partition)
    own = logs is None
    logs = TaskLogFiles() if own else logs
    first = len(logs.written)
    if own:
        logs.__enter__()
    try:
        run = dag.test(logical_date=when, run_after=when,
                       run_conf={**(conf or {}), "partition": partition})
    finally:
        if own:
            logs.__exit__(None, None, None)
    note = run_note(dag.dag_id, partition)
    note_run(dag.dag_id, run.run_id, note)
    return DagTestRun(dag.dag_id, partition, str(getattr(run.state, "value", run.state)),
                      run.run_id, note, tuple(logs.written[first:]))
