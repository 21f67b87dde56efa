"""Queueing alerts in the results store's outbox, in the transaction that stores the findings.

:func:`enqueue_for_run` is called by ``Store.record_run`` with the open session. It decides,
per finding fingerprint (``monitors.store.fingerprint_of``), what goes out:

- a failing finding (severity error or warning) is queued unless its fingerprint was already
  queued within the dedup window or is muted; then it is only counted
  (``repeats_since_sent``), and the count is shown in the next message that carries it;
- a fingerprint that was resolved and fails again is reopened and queued at once;
- a passing finding whose fingerprint is open resolves it; if an alert had gone out for it, a
  short resolution message is queued.

One outbox row per command, dataset, environment, partition and feature (the findings without a
feature, and gate blocks and training stops, one row per command, dataset, environment and
partition). At flush time the rows of one partition, dataset and feature — drift, skew and
validate of the same feature — go out as one message (:mod:`monitors.alerts.grouping`).
Messages are rendered at flush time (owners and links come from the contracts and settings
then), so storing a run never depends on Slack or the network. Each row carries the project
file and the contract file of the run that queued it (``project``, ``contract``), so owners,
PII fields and the stages affected come from the contracts the run used, not from names. A
fingerprint counts as alerted once queued (``last_sent_at`` is set at queue time and again at
delivery): the outbox guarantees delivery, so a second run while Slack is down does not queue
it twice.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from funnelguard.findings import Finding, RunResult
from monitors.alerts.settings import AlertSettings
from monitors.store.models import AlertOutbox, AlertState, Run
from monitors.store.store import fingerprint_of

__all__ = ["enqueue_for_run", "KIND_BY_COMMAND", "ALERTING_SEVERITIES", "utcnow"]

KIND_BY_COMMAND = {"gate": "gate", "train": "training"}
ALERTING_SEVERITIES = ("error", "warning")
# (dataset, environment, feature): the findings of one outbox row
_Group = tuple[str, str, str | None]
_AIRFLOW_VARS = {"dag_id": "AIRFLOW_CTX_DAG_ID", "run_id": "AIRFLOW_CTX_DAG_RUN_ID",
                 "task_id": "AIRFLOW_CTX_TASK_ID", "try_number": "AIRFLOW_CTX_TRY_NUMBER"}


def utcnow() -> dt.datetime:
    """The current time, tz-aware UTC (one place, so tests can pass ``now`` instead)."""
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _airflow_context() -> dict[str, str]:
    """The Airflow task that stored the run (Airflow exports ``AIRFLOW_CTX_*`` to tasks)."""
    return {key: os.environ[var] for key, var in _AIRFLOW_VARS.items() if os.environ.get(var)}


def _lock_state(session: Session, fingerprint: str, finding: Finding, dataset: str,
                now: dt.datetime, *, create: bool) -> tuple[AlertState | None, bool]:
    """The fingerprint's state row, locked for this transaction; created when asked.

    ``INSERT ... ON CONFLICT DO NOTHING`` then ``SELECT ... FOR UPDATE`` lets two runs that
    store the same fingerprint at once serialise on the row instead of failing on the key.
    """
    created = False
    if create:
        dialect = session.get_bind().dialect.name
        values = dict(fingerprint=fingerprint, check=finding.check, dataset=dataset,
                      environment=finding.environment or "", feature=finding.feature,
                      segment=finding.segment, status="open", first_seen=now, last_seen=now,
                      repeats_since_sent=0)
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:  # pragma: no cover - the store runs on SQLite and PostgreSQL
            insert = None
        if insert is not None:
            stmt = insert(AlertState).values(**values).on_conflict_do_nothing(
                index_elements=["fingerprint"])
            created = session.execute(stmt).rowcount == 1
        elif session.get(AlertState, fingerprint) is None:  # pragma: no cover
            session.add(AlertState(**values))
            session.flush()
            created = True
    state = session.scalars(
        sa.select(AlertState).where(AlertState.fingerprint == fingerprint)
        .with_for_update().execution_options(populate_existing=True)).one_or_none()
    return state, created


def _note_failure(state: AlertState, created: bool, partition: str, now: dt.datetime,
                  window: dt.timedelta) -> tuple[str, int]:
    """Update a failing fingerprint's state; returns (decision, repeats to show).

    decision is ``send`` (queue it), ``repeat`` (within the window) or ``muted``.
    """
    reopened = created or state.status != "open"
    if reopened:
        state.status = "open"
        state.first_seen = now
        state.first_partition = partition or None
    elif partition and (state.first_partition is None or partition < state.first_partition):
        state.first_partition = partition  # a backfill of an earlier failing partition
    state.last_seen = now
    muted_until = _aware(state.muted_until)
    if muted_until is not None and muted_until > now:
        state.repeats_since_sent += 1
        return "muted", 0
    last_sent = _aware(state.last_sent_at)
    if reopened or last_sent is None or now - last_sent >= window:
        repeats = state.repeats_since_sent
        state.repeats_since_sent = 0
        state.last_sent_at = now
        return "send", repeats
    state.repeats_since_sent += 1
    return "repeat", 0


def _note_pass(state: AlertState, partition: str, now: dt.datetime) -> bool:
    """Resolve an open fingerprint that passes on the same or a later partition.

    Returns whether a resolution message is due (an alert went out and it is not muted).
    """
    if state.status != "open":
        return False
    if partition and state.first_partition and partition < state.first_partition:
        return False  # a backfill of a partition before the streak began says nothing about now
    state.status = "resolved"
    state.last_seen = now
    state.repeats_since_sent = 0
    muted_until = _aware(state.muted_until)
    return state.last_sent_at is not None and not (muted_until is not None and muted_until > now)


def enqueue_for_run(session: Session, run: Run, result: RunResult, *,
                    now: dt.datetime | None = None,
                    settings: AlertSettings | None = None) -> list[AlertOutbox]:
    """Queue the alerts and resolutions that ``result`` calls for; update fingerprint state.

    Args:
        session: the session (and transaction) that is storing ``run``.
        run: the stored run (its id goes into the payload).
        result: the command's result.
        now: the current time (tests); default the clock.
        settings: dedup window and friends; default :meth:`AlertSettings.from_env`.

    Returns:
        The outbox rows added to the session (one per group: dataset, environment and, but for
        gate blocks and training stops, feature), possibly none.
    """
    if result.command.split(" ")[0] == "alerts":
        return []  # delivery reports never alert about themselves
    now = now or utcnow()
    settings = settings or AlertSettings.from_env()
    partition = result.partition or ""
    kind = KIND_BY_COMMAND.get(result.command, "alert")
    sends: dict[_Group, list[tuple[Finding, str, int]]] = defaultdict(list)
    quiet: dict[_Group, int] = defaultdict(int)
    resolved: dict[_Group, list[tuple[Finding, str, str | None]]] = defaultdict(list)
    since: dict[str, str | None] = {}
    decided: dict[str, str] = {}
    for f in result.findings:
        alerting = not f.passed and f.severity in ALERTING_SEVERITIES
        if not alerting and not f.passed:
            continue  # failing info findings are recorded, never alerted
        dataset = f.dataset or result.dataset or ""
        # gate blocks and training stops stay one message per run; the rest one row per feature
        feature = f.feature if kind == "alert" or not alerting else None
        group = (dataset, f.environment or result.environment or "", feature)
        fp = fingerprint_of(f, result.dataset)
        if fp in decided:  # the same fingerprint twice in one run: one state change
            if decided[fp] == "send" and alerting:
                sends[group].append((f, fp, 0))
            continue
        state, created = _lock_state(session, fp, f, dataset, now, create=alerting)
        if alerting:
            decision, repeats = _note_failure(state, created, partition, now, settings.window)
            since[fp] = state.first_partition
            decided[fp] = decision
            if decision == "send":
                sends[group].append((f, fp, repeats))
            else:
                quiet[group] += 1
        else:
            decided[fp] = "pass"
            opened_on = state.first_partition if state is not None else None
            if state is not None and _note_pass(state, partition, now):
                resolved[group].append((f, fp, opened_on))
    rows = [_row(kind, result, run, group, partition, items, since, quiet.get(group, 0))
            for group, items in sends.items()]
    rows += [_resolution_row(result, run, group, partition, items)
             for group, items in resolved.items()]
    session.add_all(rows)
    return rows


def _source(run: Run, result: RunResult, dataset: str) -> dict[str, str | None]:
    """The run's project file, and its contract file when the group is about its dataset."""
    same = dataset == (result.dataset or "")
    return {"project": run.project, "contract": run.contract if same else None}


def _absolute(artifacts: dict[str, Any]) -> dict[str, Any]:
    """Artifact paths made absolute here, where the run wrote them: a flush runs elsewhere."""
    return {k: os.path.abspath(v) if isinstance(v, str) and v and "://" not in v else v
            for k, v in artifacts.items()}


def _base_payload(result: RunResult, run: Run, feature: str | None) -> dict[str, Any]:
    return {"command": result.command, "run_id": run.id,
            "artifacts": _absolute(dict(result.artifacts)), "airflow": _airflow_context(),
            "run_environment": result.environment, "feature": feature}


def _row(kind: str, result: RunResult, run: Run, group: _Group, partition: str,
         items: list[tuple[Finding, str, int]], since: dict[str, str | None],
         still_failing: int) -> AlertOutbox:
    dataset, environment, feature = group
    fps = list(dict.fromkeys(fp for _, fp, _ in items))
    payload = _base_payload(result, run, feature)
    payload.update(
        findings=[dict(f.to_json(), fingerprint=fp) for f, fp, _ in items],
        since={fp: since.get(fp) for fp in fps},
        repeats={fp: n for _, fp, n in items if n},
        still_failing=still_failing,
    )
    severity = "error" if any(f.severity == "error" for f, _, _ in items) else "warning"
    return AlertOutbox(kind=kind, group_key=f"{result.command}|{dataset}|{environment}|{partition}",
                       dataset=dataset, environment=environment, partition=partition,
                       severity=severity, fingerprints=fps, payload=payload, status="pending",
                       **_source(run, result, dataset))


def _resolution_row(result: RunResult, run: Run, group: _Group, partition: str,
                    items: list[tuple[Finding, str, str | None]]) -> AlertOutbox:
    dataset, environment, feature = group
    payload = _base_payload(result, run, feature)
    payload.update(findings=[dict(f.to_json(), fingerprint=fp) for f, fp, _ in items],
                   since={fp: opened for _, fp, opened in items})
    return AlertOutbox(kind="resolution",
                       group_key=f"{result.command}|{dataset}|{environment}|{partition}|resolved",
                       dataset=dataset, environment=environment, partition=partition,
                       severity="info", fingerprints=[fp for _, fp, _ in items],
                       payload=payload, status="pending", **_source(run, result, dataset))
