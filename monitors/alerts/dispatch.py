"""Dispatching the outbox to Slack: claim each due row, re-check mutes, render, post, record.

A row is claimed with ``UPDATE ... SET status='sending' WHERE id=? AND status='pending'`` and
sent only when that update changed exactly one row, so two flushes running at once (two
processes, two DAG runs) never post the same row twice. A claim is a lease: a row left in
``sending`` by a flush that died is claimable again after :data:`CLAIM_LEASE` (that one message
may then go out twice — the only case; Slack cannot tell us whether a cut-off post arrived).

Undeliverable messages stay ``pending`` with ``attempts``, ``last_error`` and
``next_attempt_at``: after HTTP 429, the ``Retry-After`` Slack gave (waited out inside the flush
when it is short); after 5xx, a timeout or a refused connection, a backoff of 10 s doubling up
to 15 min. A refused connection, a timeout or a 429 ends the flush (the rest is left as is);
HTTP 400 means Slack rejected the payload: the row becomes ``failed``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from funnelguard.errors import EXIT_ENVIRONMENT, EXIT_FAIL, EXIT_PASS
from funnelguard.findings import ENVIRONMENTS, ErrorInfo, Finding, RunResult
from monitors.alerts.delivery import DeliveryOutcome, SlackWebhook
from monitors.alerts.message import QueuedAlert, render_message
from monitors.alerts.outbox import _aware, utcnow
from monitors.alerts.owners import OwnerDirectory
from monitors.alerts.settings import AlertSettings
from monitors.store import AlertOutbox, AlertState, Store, open_store

__all__ = ["flush", "flush_store", "Delivery", "FlushReport", "CLAIM_LEASE", "backoff"]

CLAIM_LEASE = dt.timedelta(minutes=10)
DEFAULT_CONN_ID = "funnelguard_slack"


def backoff(attempts: int) -> dt.timedelta:
    """Wait before retrying after ``attempts`` failed tries: 10 s doubling, at most 15 min."""
    return dt.timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 900))


@dataclass(frozen=True)
class Delivery:
    """What one flush did with one outbox row.

    ``status``: ``sent``, ``pending`` (kept for a retry), ``failed`` (rejected by Slack),
    ``muted`` (every fingerprint muted since it was queued) or ``skipped`` (not tried: Slack
    was unreachable earlier in this flush).
    """

    outbox_id: int
    kind: str
    group_key: str
    dataset: str
    environment: str
    partition: str
    status: str
    attempts: int
    error: str | None = None
    next_attempt_at: dt.datetime | None = None


@dataclass(frozen=True)
class FlushReport:
    """The outcome of one flush.

    Attributes:
        deliveries: one per row this flush looked at.
        outstanding: rows still pending after a failed delivery (this flush's or an earlier
            one's, including those waiting for their next attempt).
    """

    deliveries: tuple[Delivery, ...] = ()
    outstanding: int = 0

    def _with(self, status: str) -> tuple[Delivery, ...]:
        return tuple(d for d in self.deliveries if d.status == status)

    @property
    def sent(self) -> tuple[Delivery, ...]:
        return self._with("sent")

    @property
    def kept(self) -> tuple[Delivery, ...]:
        return self._with("pending") + self._with("skipped")

    @property
    def failed(self) -> tuple[Delivery, ...]:
        return self._with("failed")

    @property
    def exit_code(self) -> int:
        """3 while undelivered messages wait for Slack, 1 if Slack rejected one, else 0."""
        if self.outstanding or self.kept:
            return EXIT_ENVIRONMENT
        return EXIT_FAIL if self.failed else EXIT_PASS

    def to_result(self) -> RunResult:
        """The flush as a run: one ``alert_delivery`` finding per row (docs/alerts.md)."""
        findings = [_finding(d) for d in self.deliveries]
        error = None
        if self.exit_code == EXIT_ENVIRONMENT:
            error = ErrorInfo("environment", f"{self.outstanding} alert(s) still in the outbox "
                              "after failed deliveries; the next flush retries them")
        return RunResult(command="alerts flush", partition=None, findings=tuple(findings),
                         error=error)


def _finding(d: Delivery) -> Finding:
    words = {"sent": "delivered", "pending": "kept for retry", "failed": "rejected by Slack",
             "muted": "not sent: muted", "skipped": "not tried: Slack unreachable"}[d.status]
    message = f"alert #{d.outbox_id} ({d.kind}, {d.group_key}) {words}"
    if d.error:
        message += f": {d.error}"
    if d.status == "pending" and d.next_attempt_at is not None:
        message += f"; next attempt after {d.next_attempt_at:%Y-%m-%dT%H:%M:%SZ}"
    return Finding(
        check="alert_delivery", passed=d.status in ("sent", "muted"),
        severity="error" if d.status == "failed" else ("info" if d.status in ("sent", "muted")
                                                        else "warning"),
        environment=d.environment if d.environment in ENVIRONMENTS else None,
        dataset=d.dataset or None, count=d.attempts, value=d.status, message=message)


def _due_rows(store: Store, now: dt.datetime) -> list[AlertOutbox]:
    o = AlertOutbox
    stmt = (sa.select(o).where(sa.or_(
        sa.and_(o.status == "pending",
                sa.or_(o.next_attempt_at.is_(None), o.next_attempt_at <= now)),
        sa.and_(o.status == "sending", o.next_attempt_at < now))).order_by(o.id))
    with store.session() as s:
        return list(s.scalars(stmt))


def _claim(store: Store, outbox_id: int, now: dt.datetime) -> AlertOutbox | None:
    """Take the row for this flush; ``None`` when another flush took it first."""
    o = AlertOutbox
    with store.session() as s, s.begin():
        claimed = s.execute(
            sa.update(o).where(o.id == outbox_id, sa.or_(
                o.status == "pending", sa.and_(o.status == "sending", o.next_attempt_at < now)))
            .values(status="sending", next_attempt_at=now + CLAIM_LEASE)
            .execution_options(synchronize_session=False)).rowcount
        if claimed != 1:
            return None
        return s.get(o, outbox_id)


def _muted(store: Store, fingerprints: list[str], now: dt.datetime) -> set[str]:
    if not fingerprints:
        return set()
    with store.session() as s:
        rows = s.execute(sa.select(AlertState.fingerprint, AlertState.muted_until)
                         .where(AlertState.fingerprint.in_(fingerprints))).all()
    return {fp for fp, until in rows if until is not None and _aware(until) > now}


def _record(store: Store, row: AlertOutbox, outcome: DeliveryOutcome | None, status: str,
            now: dt.datetime, text: str | None = None) -> Delivery:
    """Write the outcome of a claimed row (and, once sent, its fingerprints' state)."""
    attempts = row.attempts + (1 if outcome is not None else 0)
    next_at = None
    if status == "pending":
        wait = (dt.timedelta(seconds=outcome.retry_after) if outcome.retry_after is not None
                else backoff(attempts))
        next_at = now + wait
    error = outcome.error if outcome is not None else None
    with store.session() as s, s.begin():
        s.execute(sa.update(AlertOutbox).where(AlertOutbox.id == row.id).values(
            status=status, attempts=attempts, last_error=error, next_attempt_at=next_at,
            sent_at=now if status == "sent" else None)
            .execution_options(synchronize_session=False))
        if status == "sent" and row.kind != "resolution" and row.fingerprints:
            s.execute(sa.update(AlertState)
                      .where(AlertState.fingerprint.in_(list(row.fingerprints)))
                      .values(last_sent_at=now, last_message=(text or "")[:1000])
                      .execution_options(synchronize_session=False))
    return Delivery(row.id, row.kind, row.group_key, row.dataset, row.environment,
                    row.partition, status, attempts, error, next_at)


def _outstanding(store: Store) -> int:
    with store.session() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(AlertOutbox).where(
            AlertOutbox.status.in_(("pending", "sending")), AlertOutbox.last_error.is_not(None)))


def flush_store(store: Store, slack_conn_id: str = DEFAULT_CONN_ID, *,
                settings: AlertSettings | None = None, directory: OwnerDirectory | None = None,
                now: Callable[[], dt.datetime] = utcnow,
                sleep: Callable[[float], None] = time.sleep) -> FlushReport:
    """Deliver every due outbox row of ``store`` (see the module docstring).

    Args:
        store: the results store.
        slack_conn_id: the Airflow connection holding the webhook URL as its password.
        settings: window, links, timeouts; default from the environment.
        directory: owners and PII fields; default from the contracts each row's run used.
        now: the clock (tests move it forward to reach ``next_attempt_at``).
        sleep: how a short ``Retry-After`` is waited out.

    Raises:
        SlackConnectionError: the connection is missing or is not a webhook URL (exit 2).
    """
    settings = settings or AlertSettings.from_env()
    directory = directory or OwnerDirectory(settings.default_owner)
    due = _due_rows(store, now())
    if not due:
        return FlushReport((), _outstanding(store))
    deliveries: list[Delivery] = []
    with SlackWebhook(slack_conn_id, settings.timeout) as webhook:
        stop = False
        for queued in due:
            if stop:  # Slack is down or asked us to wait: leave the rest untouched
                deliveries.append(Delivery(
                    queued.id, queued.kind, queued.group_key, queued.dataset,
                    queued.environment, queued.partition, "skipped", queued.attempts,
                    queued.last_error, queued.next_attempt_at))
                continue
            row = _claim(store, queued.id, now())
            if row is None:
                continue  # another flush has it
            delivery, outcome = _deliver(store, row, webhook, directory, settings, now, sleep)
            deliveries.append(delivery)
            stop = outcome is not None and not outcome.delivered and (
                outcome.unreachable or outcome.retry_after is not None)
    return FlushReport(tuple(deliveries), _outstanding(store))


def _deliver(store: Store, row: AlertOutbox, webhook: SlackWebhook, directory: OwnerDirectory,
             settings: AlertSettings, now: Callable[[], dt.datetime],
             sleep: Callable[[float], None]) -> tuple[Delivery, DeliveryOutcome | None]:
    """Render and post one claimed row; record and return what happened."""
    payload = dict(row.payload or {})
    if row.kind != "resolution":
        muted = _muted(store, list(row.fingerprints or ()), now())
        if muted:
            payload["findings"] = [d for d in payload.get("findings", ())
                                   if d.get("fingerprint") not in muted]
            if not payload["findings"]:
                return _record(store, row, None, "muted", now()), None
    try:
        alert = QueuedAlert(row.id, row.kind, row.dataset, row.environment, row.partition,
                            row.severity, payload, project=row.project, contract=row.contract)
        message = render_message(alert, directory, settings)
        outcome = webhook.post(message.body())
        if outcome.retry_after is not None and outcome.retry_after <= settings.max_rate_limit_wait:
            sleep(outcome.retry_after)
            outcome = webhook.post(message.body())
    except BaseException as exc:
        failure = DeliveryOutcome(False, error=webhook.scrub(
            f"flush stopped while sending: {type(exc).__name__}: {exc}"))
        _record(store, row, failure, "pending", now())
        raise
    if outcome.delivered:
        return _record(store, row, outcome, "sent", now(), message.text), outcome
    status = "failed" if outcome.rejected else "pending"
    return _record(store, row, outcome, status, now()), outcome


def flush(store_url: str, slack_conn_id: str = DEFAULT_CONN_ID, *,
          settings: AlertSettings | None = None,
          directory: OwnerDirectory | None = None) -> FlushReport:
    """Deliver the outbox of the store at ``store_url`` — the function the DAGs call.

    Returns the :class:`FlushReport`; its ``exit_code`` is 3 while messages wait for Slack
    (raise for a retry), 1 if Slack rejected one, else 0.
    """
    return flush_store(open_store(store_url), slack_conn_id, settings=settings,
                       directory=directory)
