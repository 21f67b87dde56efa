"""Muting, listing and re-queueing alerts: the fingerprint state and the outbox as people see
and act on them.

A mute sets ``muted_until`` and ``mute_reason`` on a fingerprint's state: while it holds, the
fingerprint is counted, not queued, and a row queued before the mute is not sent (flush checks
again). ``unmute`` clears both; the next failing run alerts with the repeats counted meanwhile.
:func:`requeue_failed` puts rows Slack rejected (``failed``) back in the outbox once the
connection or the message is fixed.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from monitors.alerts.errors import AlertInputError, UnknownFingerprint
from monitors.alerts.outbox import _aware, utcnow
from monitors.store import AlertOutbox, AlertState, Store

__all__ = ["mute", "unmute", "list_alerts", "requeue_failed", "AlertView", "PendingView",
           "AlertListing", "Requeued"]


@dataclass(frozen=True)
class AlertView:
    """One fingerprint's state."""

    fingerprint: str
    status: str
    first_partition: str | None
    last_seen: dt.datetime
    last_sent_at: dt.datetime | None
    repeats_since_sent: int
    muted_until: dt.datetime | None
    mute_reason: str | None


@dataclass(frozen=True)
class PendingView:
    """One outbox row not yet delivered."""

    outbox_id: int
    kind: str
    group_key: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str | None


@dataclass(frozen=True)
class AlertListing:
    """What ``funnelguard alerts list`` shows: open, muted and pending alerts."""

    open: tuple[AlertView, ...]
    muted: tuple[AlertView, ...]
    pending: tuple[PendingView, ...]
    failed: tuple[PendingView, ...]


def _view(state: AlertState) -> AlertView:
    return AlertView(state.fingerprint, state.status, state.first_partition,
                     _aware(state.last_seen), _aware(state.last_sent_at),
                     state.repeats_since_sent, _aware(state.muted_until), state.mute_reason)


def _known(session, fingerprint: str) -> AlertState:
    state = session.scalars(sa.select(AlertState).where(AlertState.fingerprint == fingerprint)
                            .with_for_update()).one_or_none()
    if state is None:
        known = list(session.scalars(sa.select(AlertState.fingerprint)))
        close = difflib.get_close_matches(fingerprint, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}" if close else ""
        raise UnknownFingerprint(
            f"alerts: expected a fingerprint the store has alerted on "
            f"(check|dataset|environment|feature|task|segment, as `funnelguard alerts list` "
            f"prints it); found {fingerprint!r}, which is not among the {len(known)} known"
            f"{hint}")
    return state


def mute(store: Store, fingerprint: str, duration: dt.timedelta, reason: str, *,
         now: dt.datetime | None = None) -> AlertView:
    """Mute ``fingerprint`` for ``duration``.

    Raises:
        UnknownFingerprint: the store has no state for it.
        AlertInputError: a non-positive duration or an empty reason.
    """
    if duration <= dt.timedelta(0):
        raise AlertInputError(f"alerts mute --for: expected a positive duration, found {duration}")
    if not reason or not reason.strip():
        raise AlertInputError("alerts mute --reason: expected a reason people can read, found "
                              "an empty text")
    now = now or utcnow()
    with store.session() as s, s.begin():
        state = _known(s, fingerprint)
        state.muted_until = now + duration
        state.mute_reason = reason.strip()
        s.flush()
        return _view(state)


def unmute(store: Store, fingerprint: str) -> AlertView:
    """Lift a mute (a no-op for a fingerprint that is not muted).

    Raises:
        UnknownFingerprint: the store has no state for it.
    """
    with store.session() as s, s.begin():
        state = _known(s, fingerprint)
        state.muted_until = None
        state.mute_reason = None
        s.flush()
        return _view(state)


def list_alerts(store: Store, *, now: dt.datetime | None = None) -> AlertListing:
    """Open fingerprints, muted ones (mute still running) and undelivered outbox rows."""
    now = now or utcnow()
    with store.session() as s:
        states = [_view(x) for x in s.scalars(
            sa.select(AlertState).order_by(AlertState.first_partition, AlertState.fingerprint))]
        rows = [PendingView(r.id, r.kind, r.group_key, r.status, r.attempts,
                            _aware(r.next_attempt_at), r.last_error)
                for r in s.scalars(sa.select(AlertOutbox).where(
                    AlertOutbox.status.in_(("pending", "sending", "failed")))
                    .order_by(AlertOutbox.id))]
    muted = tuple(v for v in states if v.muted_until is not None and v.muted_until > now)
    open_ = tuple(v for v in states if v.status == "open" and v not in muted)
    return AlertListing(open=open_, muted=muted,
                        pending=tuple(r for r in rows if r.status != "failed"),
                        failed=tuple(r for r in rows if r.status == "failed"))


@dataclass(frozen=True)
class Requeued:
    """One failed row put back in the outbox by :func:`requeue_failed`."""

    outbox_id: int
    kind: str
    group_key: str
    rejected_with: str | None


def requeue_failed(store: Store, ids: Sequence[int] | None = None) -> tuple[Requeued, ...]:
    """Put rows Slack rejected back in the outbox (``funnelguard alerts retry``): after the
    connection or the message is fixed, the next flush posts them.

    Args:
        store: the results store.
        ids: the outbox ids to re-queue; ``None``: every ``failed`` row.

    Returns:
        The rows re-queued (``pending``, due at once; ``attempts`` kept).

    Raises:
        AlertInputError: an id that is not in the outbox, or a row that is not ``failed``.
    """
    o = AlertOutbox
    with store.session() as s, s.begin():
        if ids is None:
            rows = list(s.scalars(sa.select(o).where(o.status == "failed").order_by(o.id)))
        else:
            found = {r.id: r for r in s.scalars(sa.select(o).where(o.id.in_(list(ids))))}
            unknown = [i for i in ids if i not in found]
            if unknown:
                raise AlertInputError(
                    f"alerts retry --id: expected outbox ids of alerts Slack rejected (`funnelguard "
                    f"alerts list` shows them under REJECTED BY SLACK); found no alert "
                    f"{', '.join(f'#{i}' for i in unknown)}")
            wrong = [f"#{i} is {found[i].status}" for i in ids if found[i].status != "failed"]
            if wrong:
                raise AlertInputError(
                    f"alerts retry --id: expected alerts Slack rejected (status failed); found "
                    f"{', '.join(wrong)}")
            rows = [found[i] for i in dict.fromkeys(ids)]
        done = []
        for r in rows:
            changed = s.execute(sa.update(o).where(o.id == r.id, o.status == "failed").values(
                status="pending", next_attempt_at=None,
                last_error=f"re-queued by alerts retry; rejected before: {r.last_error}"[:2000])
                .execution_options(synchronize_session=False)).rowcount
            if changed == 1:
                done.append(Requeued(r.id, r.kind, r.group_key, r.last_error))
    return tuple(done)
