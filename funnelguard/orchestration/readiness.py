"""Is a partition's snapshot checked, and clean? Read from the results store.

The snapshot DAGs store one run per check command (``validate``, ``drift``, ``skew``,
``freshness``) and, when they finish, a marker run (command ``snapshot_checks``, one per
environment) saying that the environment's snapshot checks are done for the partition. The
nightly training waits until both environments' markers exist, and refuses to train when any
stored snapshot run of the partition has an error-severity failure or could not run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from funnelguard.findings import Finding, RunResult

__all__ = [
    "SNAPSHOT_COMMANDS",
    "MARKER_COMMAND",
    "Readiness",
    "snapshot_marker",
    "snapshot_readiness",
]

SNAPSHOT_COMMANDS: tuple[str, ...] = ("validate", "drift", "skew", "freshness")
MARKER_COMMAND = "snapshot_checks"


@dataclass(frozen=True)
class Readiness:
    """The state of one partition's snapshot checks.

    Attributes:
        partition: the partition, ISO date.
        missing: environments whose snapshot checks have not finished yet.
        blocking: one plain-language line per error-severity failure or check that could not run.
    """

    partition: str
    missing: tuple[str, ...] = ()
    blocking: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        """Every environment checked and nothing blocking: training may run."""
        return not self.missing and not self.blocking

    def describe(self) -> str:
        if self.blocking:
            lines = [f"snapshot checks of {self.partition} have "
                     f"{len(self.blocking)} error-severity problems:"]
            return "\n".join(lines + [f"- {b}" for b in self.blocking])
        if self.missing:
            return (f"snapshot checks of {self.partition} not finished yet for "
                    f"{', '.join(self.missing)}")
        return f"snapshot checks of {self.partition}: all environments checked, none failed"


def snapshot_marker(environment: str, partition: str, checks: Sequence[str]) -> RunResult:
    """The run a snapshot DAG stores when it has finished an environment's partition."""
    return RunResult(
        command=MARKER_COMMAND, partition=partition, environment=environment,
        findings=(Finding(check="snapshot_complete", passed=True, severity="info",
                          environment=environment,
                          message=f"{environment} snapshot checks ran: {', '.join(checks)}"),),
    )


def _blocking_lines(store, partition: str) -> list[str]:
    from monitors.store.models import FindingRow, Run

    with store.session() as s:
        runs = list(s.scalars(
            sa.select(Run).where(Run.partition == partition,
                                 Run.command.in_(SNAPSHOT_COMMANDS))
            .order_by(Run.recorded_at, Run.id)))
        # An errored run is superseded by a later run of the same command and environment
        # (the CLI stores errored runs without a dataset, so they key differently).
        latest: dict[tuple[str, str], Run] = {}
        for run in runs:
            latest[(run.command, run.environment)] = run
        lines: list[str] = []
        for run in runs:
            where = f"{run.command} ({', '.join(x for x in (run.dataset, run.environment) if x)})"
            if run.status == "error" and latest[(run.command, run.environment)] is run:
                lines.append(f"{where} could not run: {run.error_message}")
            elif run.status == "fail":
                failed = s.scalars(sa.select(FindingRow).where(
                    FindingRow.run_id == run.id, FindingRow.severity == "error",
                    FindingRow.passed.is_(False)).order_by(FindingRow.id))
                for f in failed:
                    about = " ".join(x for x in (f.environment, f.feature, f.task, f.segment) if x)
                    lines.append(f"{run.command} {f.check} {about}: {f.message}".strip())
    return lines


def snapshot_readiness(store, partition: str | dt.date,
                       environments: Iterable[str] = ("offline", "online")) -> Readiness:
    """Whether ``partition`` has been snapshot-checked in every environment, and cleanly.

    Args:
        store: an open :class:`monitors.store.Store`.
        partition: the partition (ds).
        environments: whose marker runs must exist.
    """
    from monitors.store.models import Run

    partition = str(partition)
    with store.session() as s:
        marked = set(s.scalars(sa.select(Run.environment).where(
            Run.command == MARKER_COMMAND, Run.partition == partition)))
    missing = tuple(e for e in environments if e not in marked)
    return Readiness(partition, missing, tuple(_blocking_lines(store, partition)))
