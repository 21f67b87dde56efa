"""Dispatching the outbox to Slack: group the due rows (one message per partition, dataset and
feature), claim each row, re-check mutes, render, post once per group, record every row.

A row is claimed with ``UPDATE ... SET status='sending' WHERE id=? AND status='pending'`` and
sent only when that update changed exactly one row, so two flushes running at once (two
processes, two DAG runs) never post the same row twice. A claim is a lease: a row left in
``sending`` by a flush that died is claimable again after :data:`CLAIM_LEASE` (that one message
may then go out twice — the only case; Slack cannot tell us whether a cut-off post arrived).

Undeliverable messages stay ``pending`` with ``attempts``, ``last_error`` and
``next_attempt_at``: after HTTP 429, the ``Retry-After`` Slack gave (waited out inside the flush
when it is short); after 5xx, 408, a timeout or a refused connection, a backoff of 10 s doubling
up to 15 min. A refused connection, a timeout or a 429 ends the flush (the rest is left as is).
Any other 4xx means Slack refused the post: the row becomes ``failed``, the flush reports a
failing ``alert_delivery`` finding naming the connection and the status (exit 1), and the row
waits for :func:`monitors.alerts.mutes.requeue_failed` (``funnelguard alerts retry``) once the connection or the
message is fixed; 401/403/404/410 refuse the webhook itself and also end the flush.

A post that got no answer after it was sent (a read timeout, a reset, a flush that died while
sending) may have reached Slack: the row is marked ``maybe_delivered`` in its payload, and
every later post of it says "repeat of #N" (N the outbox id) beside the same header.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from funnelguard.errors import EXIT_ENVIRONMENT, EXIT_FAIL, EXIT_PASS
from funnelguard.findings import ENVIRONMENTS, ErrorInfo, Finding, RunResult
from monitors.alerts.delivery import CONNECTION_REJECTED, DeliveryOutcome, SlackWebhook
from monitors.alerts.grouping import group_rows
from monitors.alerts.message import QueuedAlert, render_message
from monitors.alerts.outbox import _aware, utcnow
from monitors.alerts.owners import OwnerDirectory
from monitors.alerts.settings import AlertSettings
from monitors.store import AlertOutbox, AlertState, Store, open_store

__all__ = ["flush", "flush_store", "Delivery", "FlushReport", "CLAIM_LEASE", "MAYBE_DELIVERED",
           "MESSAGE_ID", "backoff", "queued_alert", "unmuted_payload"]

CLAIM_LEASE = dt.timedelta(minutes=10)
DEFAULT_CONN_ID = "funnelguard_slack"
# Payload key set on a row whose post may have reached Slack without an answer.
MAYBE_DELIVERED = "maybe_delivered"
# Payload key: the id of the message (``alert #N``) a row was posted in.
MESSAGE_ID = "message_id"


def backoff(attempts: int) -> dt.timedelta:
    """Wait before retrying after ``attempts`` failed tries: 10 s doubling, at most 15 min."""
    return dt.timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 900))


@dataclass(frozen=True)
class Delivery:
    """What one flush did with one outbox row.

    ``status``: ``sent``, ``pending`` (kept for a retry), ``failed`` (rejected by Slack),
    ``muted`` (every fingerprint muted since it was queued) or ``skipped`` (not tried: Slack
    was unreachable, rate limited or refused the webhook earlier in this flush).
    ``status_code`` is Slack's HTTP answer, when there was one; ``repeat``: the post said
    "repeat of #N" (an earlier post of it may have arrived).
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
    status_code: int | None = None
    repeat: bool = False


@dataclass(frozen=True)
class FlushReport:
    """The outcome of one flush.

    Attributes:
        deliveries: one per row this flush looked at.
        outstanding: rows still pending after a failed delivery (this flush's or an earlier
            one's, including those waiting for their next attempt).
        connection: the Slack connection id the flush posted through.
        held: ids of rows Slack rejected in earlier flushes, still ``failed`` (waiting for
            ``funnelguard alerts retry``).
        stopped: why the flush stopped before the end (``None``: it did not).
    """

    deliveries: tuple[Delivery, ...] = ()
    outstanding: int = 0
    connection: str = DEFAULT_CONN_ID
    held: tuple[int, ...] = ()
    stopped: str | None = None

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
        """1 if Slack rejected a message in this flush (a person must act: a retry of the task
        cannot help, and the rows kept go out with the next flush), else 3 while undelivered
        messages wait for Slack, else 0."""
        if self.failed:
            return EXIT_FAIL
        if self.outstanding or self.kept:
            return EXIT_ENVIRONMENT
        return EXIT_PASS

    def to_result(self) -> RunResult:
        """The flush as a run: one ``alert_delivery`` finding per row, and one warning for the
        rows rejected earlier that still wait for ``alerts retry`` (docs/alerts.md)."""
        findings = [_finding(d, self) for d in self.deliveries]
        if self.held:
            shown = ", ".join(f"#{i}" for i in self.held[:10])
            more = f" and {len(self.held) - 10} more" if len(self.held) > 10 else ""
            findings.append(Finding(
                check="alert_delivery", passed=False, severity="warning", value="failed",
                count=len(self.held),
                message=f"{len(self.held)} alert(s) rejected by Slack in earlier flushes are "
                        f"held ({shown}{more}): fix Slack connection {self.connection!r} or "
                        f"the message, then `funnelguard alerts retry --all-failed`"))
        error = None
        if self.exit_code == EXIT_ENVIRONMENT:
            error = ErrorInfo("environment", f"{self.outstanding} alert(s) still in the outbox "
                              "after failed deliveries; the next flush retries them")
        return RunResult(command="alerts flush", partition=None, findings=tuple(findings),
                         error=error)


def _finding(d: Delivery, report: FlushReport) -> Finding:
    words = {"sent": "delivered", "pending": "kept for retry", "failed": "rejected by Slack",
             "muted": "not sent: muted",
             "skipped": f"not tried: {report.stopped or 'Slack unreachable'}"}[d.status]
    message = f"alert #{d.outbox_id} ({d.kind}, {d.group_key}) {words}"
    if d.status == "failed":
        fix = ("its webhook URL (token revoked, channel deleted or archived)"
               if d.status_code in CONNECTION_REJECTED else "the message Slack refused")
        message = (f"alert #{d.outbox_id} ({d.kind}, {d.group_key}) rejected by Slack "
                   f"connection {report.connection!r}: {d.error}; held, not retried: fix "
                   f"{fix}, then `funnelguard alerts retry --id {d.outbox_id}`")
    elif d.error:
        message += f": {d.error}"
    if d.status == "pending" and d.next_attempt_at is not None:
        message += f"; next attempt after {d.next_attempt_at:%Y-%m-%dT%H:%M:%SZ}"
    if d.repeat and d.status == "sent":
        message += f" as a repeat of #{d.outbox_id} (an earlier post got no answer)"
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
            now: dt.datetime, text: str | None = None, *, repeat: bool = False,
            message_id: int | None = None) -> Delivery:
    """Write the outcome of a claimed row (and, once sent, its fingerprints' state).

    A post that may have reached Slack (``outcome.uncertain``) marks the row's payload, so
    every later post of it says it is a repeat; a posted row's payload keeps the id of the
    message it went out in (``message_id``: the ``alert #N`` of a group).
    """
    attempts = row.attempts + (1 if outcome is not None else 0)
    next_at = None
    if status == "pending":
        wait = (dt.timedelta(seconds=outcome.retry_after) if outcome.retry_after is not None
                else backoff(attempts))
        next_at = now + wait
    error = outcome.error if outcome is not None else None
    values = dict(status=status, attempts=attempts, last_error=error, next_attempt_at=next_at,
                  sent_at=now if status == "sent" else None)
    payload = dict(row.payload or {})
    if outcome is not None and outcome.uncertain:
        payload[MAYBE_DELIVERED] = True
    if message_id is not None:
        payload[MESSAGE_ID] = message_id
    if payload != dict(row.payload or {}):
        values["payload"] = payload
    with store.session() as s, s.begin():
        s.execute(sa.update(AlertOutbox).where(AlertOutbox.id == row.id).values(**values)
                  .execution_options(synchronize_session=False))
        if status == "sent" and row.kind != "resolution" and row.fingerprints:
            s.execute(sa.update(AlertState)
                      .where(AlertState.fingerprint.in_(list(row.fingerprints)))
                      .values(last_sent_at=now, last_message=(text or "")[:1000])
                      .execution_options(synchronize_session=False))
    return Delivery(row.id, row.kind, row.group_key, row.dataset, row.environment,
                    row.partition, status, attempts, error, next_at,
                    outcome.status_code if outcome is not None else None, repeat)


def _outstanding(store: Store) -> int:
    with store.session() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(AlertOutbox).where(
            AlertOutbox.status.in_(("pending", "sending")), AlertOutbox.last_error.is_not(None)))


def _held(store: Store, seen: set[int]) -> tuple[int, ...]:
    """Rows Slack rejected before this flush, still waiting for ``alerts retry``."""
    with store.session() as s:
        ids = s.scalars(sa.select(AlertOutbox.id).where(AlertOutbox.status == "failed")
                        .order_by(AlertOutbox.id))
        return tuple(i for i in ids if i not in seen)


def _why_stopped(outcome: DeliveryOutcome | None) -> str | None:
    if outcome is None or outcome.delivered:
        return None
    if outcome.connection_rejected:
        return f"Slack refused the webhook earlier in this flush (HTTP {outcome.status_code})"
    if outcome.retry_after is not None:
        return "Slack rate limited this flush"
    if outcome.unreachable:
        return "Slack unreachable"
    return None


def flush_store(store: Store, slack_conn_id: str = DEFAULT_CONN_ID, *,
                settings: AlertSettings | None = None, directory: OwnerDirectory | None = None,
                now: Callable[[], dt.datetime] = utcnow,
                sleep: Callable[[float], None] = time.sleep) -> FlushReport:
    """Deliver every due outbox row of ``store`` (see the module docstring).

    The due rows of one partition, dataset and feature go out as one message
    (:func:`monitors.alerts.grouping.group_rows`); each row is claimed and recorded on its own,
    with the outcome of the one post.

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
        return FlushReport((), _outstanding(store), slack_conn_id, _held(store, set()))
    deliveries: list[Delivery] = []
    stopped: str | None = None
    with SlackWebhook(slack_conn_id, settings.timeout) as webhook:
        for group in group_rows(due):
            if stopped:  # Slack is down, asked us to wait or refused the webhook: leave the rest
                deliveries += [Delivery(
                    queued.id, queued.kind, queued.group_key, queued.dataset,
                    queued.environment, queued.partition, "skipped", queued.attempts,
                    queued.last_error, queued.next_attempt_at) for queued in group]
                continue
            claimed = []
            for queued in group:
                was_sending = queued.status == "sending"  # a flush died holding it: maybe posted
                row = _claim(store, queued.id, now())
                if row is not None:  # else another flush has it
                    claimed.append((row, was_sending))
            if not claimed:
                continue
            done, outcome = _deliver(store, claimed, webhook, directory, settings, now, sleep)
            deliveries += done
            stopped = _why_stopped(outcome)
    seen = {d.outbox_id for d in deliveries}
    return FlushReport(tuple(deliveries), _outstanding(store), slack_conn_id,
                       _held(store, seen), stopped)


def unmuted_payload(store: Store, row: AlertOutbox, now: dt.datetime
                    ) -> tuple[dict, list[str]]:
    """The row's payload without the findings muted since it was queued, and those muted
    fingerprints (a resolution is never filtered)."""
    payload = dict(row.payload or {})
    if row.kind == "resolution":
        return payload, []
    muted = _muted(store, list(row.fingerprints or ()), now)
    if muted:
        payload["findings"] = [d for d in payload.get("findings", ())
                               if d.get("fingerprint") not in muted]
    return payload, sorted(muted)


def queued_alert(row: AlertOutbox, payload: dict, *, repeat: bool = False) -> QueuedAlert:
    """The renderer's view of an outbox row."""
    return QueuedAlert(row.id, row.kind, row.dataset, row.environment, row.partition,
                       row.severity, payload, project=row.project, contract=row.contract,
                       repeat=repeat)


def _deliver(store: Store, claimed: list[tuple[AlertOutbox, bool]], webhook: SlackWebhook,
             directory: OwnerDirectory, settings: AlertSettings,
             now: Callable[[], dt.datetime], sleep: Callable[[float], None]
             ) -> tuple[list[Delivery], DeliveryOutcome | None]:
    """Render the claimed rows of one group as one message, post it, record every row."""
    done: list[Delivery] = []
    live: list[tuple[AlertOutbox, dict]] = []
    for row, _ in claimed:
        payload, _muted_fps = unmuted_payload(store, row, now())
        if row.kind != "resolution" and not payload.get("findings"):
            done.append(_record(store, row, None, "muted", now()))
        else:
            live.append((row, payload))
    if not live:
        return done, None
    repeat = any(was for _, was in claimed) or any(
        bool((row.payload or {}).get(MAYBE_DELIVERED)) for row, _ in live)
    message_id = min(row.id for row, _ in live)
    try:
        message = render_message([queued_alert(row, payload, repeat=repeat)
                                  for row, payload in live], directory, settings)
        outcome = webhook.post(message.body())
        if outcome.retry_after is not None and outcome.retry_after <= settings.max_rate_limit_wait:
            sleep(outcome.retry_after)
            outcome = webhook.post(message.body())
    except BaseException as exc:
        failure = DeliveryOutcome(False, error=webhook.scrub(
            f"flush stopped while sending: {type(exc).__name__}: {exc}"), uncertain=True)
        for row, _ in live:
            _record(store, row, failure, "pending", now(), message_id=message_id)
        raise
    status = "sent" if outcome.delivered else ("failed" if outcome.rejected else "pending")
    for row, _ in live:
        done.append(_record(store, row, outcome, status, now(),
                            message.text if outcome.delivered else None, repeat=repeat,
                            message_id=message_id))
    return done, outcome


def flush(store_url: str, slack_conn_id: str = DEFAULT_CONN_ID, *,
          settings: AlertSettings | None = None,
          directory: OwnerDirectory | None = None) -> FlushReport:
    """Deliver the outbox of the store at ``store_url`` — the function the DAGs call.

    Returns the :class:`FlushReport`; its ``exit_code`` is 3 while messages wait for Slack
    (raise for a retry), 1 if Slack rejected one, else 0.
    """
    return flush_store(open_store(store_url), slack_conn_id, settings=settings,
                       directory=directory)
