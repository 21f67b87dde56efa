"""The contracts package's command: ``run_validate``, called by the CLI and the DAG tasks alike.

One plain function per check (registered as ``validate`` in :data:`funnelguard.commands.JOBS`):
it takes the project, an engine and the partition, reads everything it needs to know about the
table (which contract, its table per environment, partition and key columns, timestamps,
defaults) from the project's contracts, and returns a :class:`~funnelguard.findings.RunResult`.
Storing, ``--json`` and exit codes belong to the edge (:func:`funnelguard.commands.execute`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from funnelguard.errors import InputError
from funnelguard.project import FEATURES, PARTS

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from contracts.spec import Contract
    from funnelguard.findings import RunResult
    from funnelguard.project import Project

__all__ = ["run_validate", "contract_to_validate", "DATASETS"]

# The parts of a project ``validate`` can check (``--dataset``); a contract name works too.
DATASETS: tuple[str, ...] = PARTS


def run_validate(project: Project, engine: Engine, partition: dt.date | str, *,
                 environment: str, dataset: str = FEATURES,
                 chunk_rows: int = 200_000, history_bounds: bool = True,
                 engine_checks: bool | None = None) -> RunResult:
    """Validate one partition of a project contract's table for one environment.

    Args:
        project: the loaded project (:func:`funnelguard.project.load_project`).
        engine: the warehouse.
        partition: the partition date (a ``datetime.date`` or ``YYYY-MM-DD``).
        environment: ``offline`` or ``online``; the contract must have a table for it.
        dataset: the part to check (``impressions``, ``features``, ``labels``) or the name
            of one of the project's contracts.
        chunk_rows: rows per chunk; memory grows with this, not with the partition.
        history_bounds: also hold each numeric feature to its history's band
            (``history_bound`` findings, :mod:`monitors.history_bounds`).
        engine_checks: run the checks inside the warehouse engine
            (:mod:`contracts.pushdown`: same findings, no rows moved) or, False, read the
            partition in chunks and check it in memory. None: in the engine where
            :data:`funnelguard.engines.IN_ENGINE_BY_DEFAULT` says so (SQLite, PostgreSQL,
            DuckDB, parquet folders, a Spark :class:`~funnelguard.engines.SqlEngine`).

    Returns:
        One finding per (column, check), passing ones included; ``dataset`` is the contract's
        name.

    Raises:
        InputError: an unknown dataset, an environment the contract lacks, a bad partition or
            chunk size, a missing table, column or partition (exit 2).
        EnvironmentFailure: the warehouse cannot be read (exit 3).
    """
    from funnelguard.engines import checks_in_engine_by_default
    from funnelguard.warehouse import parse_date

    contract = contract_to_validate(project, dataset, environment, chunk_rows)
    day = parse_date(partition)
    if engine_checks is None:
        engine_checks = checks_in_engine_by_default(engine)
    if engine_checks:
        from contracts.pushdown import validate_partition_in_engine

        result = validate_partition_in_engine(contract, environment, engine, day,
                                              segments=project.segments)
    else:
        from contracts.runner import validate_partition

        result = validate_partition(contract, environment, engine, day, chunk_rows=chunk_rows,
                                    segments=project.segments)
    from monitors.history_bounds import with_history_bounds  # one line: history-based bounds
    return with_history_bounds(result, project, engine, day, environment=environment,
                               dataset=dataset, enabled=history_bounds)


def contract_to_validate(project: Project, dataset: str, environment: str,
                         chunk_rows: int = 200_000) -> Contract:
    """The contract ``run_validate`` would check, after checking its inputs (no database).

    The CLI calls this before it connects, so a bad flag is exit 2 even with the warehouse down.

    Raises:
        InputError: an unknown dataset, an environment the contract lacks, a bad chunk size.
    """
    contract = project.contract(dataset)
    if environment not in contract.tables:
        raise InputError(
            f"environment (--env): expected one of contract {contract.name}'s environments; "
            f"{contract.path} has environments {sorted(contract.tables)}, found {environment!r}")
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InputError(f"chunk_rows (--chunk-rows): expected a positive number, found "
                         f"{chunk_rows!r}")
    return contract
