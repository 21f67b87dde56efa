"""The gate as a plain, typed command: ``run_gate(project, engine, as_of) -> RunResult``.

The ``funnelguard gate`` CLI handler and the nightly DAG task both call :func:`run_gate` (by
its registered name, :data:`funnelguard.commands.JOBS`); storing the result, ``--json`` and the
exit code are the edge's (:func:`funnelguard.commands.execute`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from funnelguard.findings import RunResult
    from funnelguard.project import Project

__all__ = ["run_gate"]


def run_gate(project: Project, engine: Engine, as_of: dt.date | str, *,
             window_days: int | None = None) -> RunResult:
    """May training run on the ``window_days`` before ``as_of``? One finding per check and stage.

    Args:
        project: the project: the labels contract's stages (funnel order), maturity windows
            (``countsFrom`` the impressions' event time) and landing latency; the impressions
            and labels tables with their key and partition columns.
        engine: the warehouse.
        as_of: knowledge at this date's 00:00 UTC (a date or ``YYYY-MM-DD``).
        window_days: the training window (None: the project's ``defaults.window_days``, else 28).

    Returns:
        The ``gate`` run: partition = the as-of date, dataset = the labels contract's name;
        status ``fail`` (exit 1) means training must not run.

    Raises:
        InputError: a bad date or window, a stage or column the contracts lack, a missing table.
        EnvironmentFailure: the warehouse query failed.
    """
    from funnelguard.warehouse import parse_date
    from monitors.maturity.gate import evaluate_gate

    as_of = parse_date(as_of, flag="--as-of")
    return evaluate_gate(project, engine, as_of, window_days=window_days).to_run_result()
