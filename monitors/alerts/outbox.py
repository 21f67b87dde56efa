"""Queueing alerts in the results store's outbox, in the transaction that stores the findings."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy.orm import Session

from funnelguard.findings import RunResult
from monitors.store.models import AlertOutbox, Run
from monitors.store.store import fingerprint_of

__all__ = ["enqueue_for_run"]


def enqueue_for_run(session: Session, run: Run, result: RunResult) -> list[AlertOutbox]:
    """One outbox row per (dataset, environment, partition) group of failing findings."""
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for f in result.failures:
        groups[(f.dataset or result.dataset or "", f.environment or result.environment or "")].append(f)
    rows = []
    for (dataset, environment), findings in groups.items():
        severity = "error" if any(f.severity == "error" for f in findings) else "warning"
        row = AlertOutbox(
            kind="alert",
            group_key=f"{result.command}|{dataset}|{environment}|{result.partition or ''}",
            dataset=dataset, environment=environment, partition=result.partition or "",
            severity=severity,
            fingerprints=[fingerprint_of(f, result.dataset) for f in findings],
            payload={"command": result.command, "findings": [f.to_json() for f in findings],
                     "artifacts": dict(result.artifacts)},
        )
        session.add(row)
        rows.append(row)
    return rows
