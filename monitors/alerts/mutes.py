"""Muting, listing and re-queueing alerts: the fingerprint state and the outbox as people see
and act on them.

A mute sets ``muted_until`` and ``mute_reason`` on a fingerprint's state: while it holds, the
fingerprint is counted, not queued, and a row queued before the mute is not sent (flush checks
again). ``unmute`` clears both; the next failing run alerts with the repeats counted meanwhile.
A group ``DATASET|FEATURE`` (a message's "mute all" hint) names every open fingerprint of that
feature: the checks, environments and segments of one root cause.
:func:`requeue_failed` puts rows Slack rejected (``failed``) back in the outbox once the
connection or the message is fixed.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from monitors.alerts import outbox
from monitors.alerts.errors import AlertInputError, UnknownFingerprint
from monitors.alerts.outbox import _aware
from monitors.store import AlertOutbox, AlertState, Store

__all__ = ["mute", "mute_all", "unmute", "unmute_all", "list_alerts", "requeue_failed",
           "AlertView", "PendingView", "AlertListing", "Requeued"]


@dataclass(frozen=True)
class AlertView:
    """One fingerprint's state.

    ``last_sent_at`` is the state's stamp, set when the fingerprint was queued and again on
    delivery; ``delivered_at`` is when a message carrying it last reached Slack (None: never),
    and ``queued`` the outbox rows carrying it that have not (pending, sending or rejected).
    """

    fingerprint: str
    status: str
    first_partition: str | None
    last_seen: dt.datetime
    last_sent_at: dt.datetime | None
    repeats_since_sent: int
    muted_until: dt.datetime | None
    mute_reason: str | None
    delivered_at: dt.datetime | None = None
    queued: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "status": self.status,
                "since": self.first_partition, "last_seen": _iso(self.last_seen),
                "last_sent_at": _iso(self.delivered_at), "queued": list(self.queued),
                "repeats_since_sent": self.repeats_since_sent,
                "muted_until": _iso(self.muted_until), "mute_reason": self.mute_reason}


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
    fingerprints: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.outbox_id, "kind": self.kind, "group_key": self.group_key,
                "status": self.status, "attempts": self.attempts,
                "next_attempt_at": _iso(self.next_attempt_at), "last_error": self.last_error,
                "fingerprints": list(self.fingerprints)}


@dataclass(frozen=True)
class AlertListing:
    """What ``funnelguard alerts list`` shows: open, muted and pending alerts."""

    open: tuple[AlertView, ...]
    muted: tuple[AlertView, ...]
    pending: tuple[PendingView, ...]
    failed: tuple[PendingView, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``alerts list --json`` document."""
        return {"open": [v.to_json() for v in self.open],
                "muted": [v.to_json() for v in self.muted],
                "pending": [p.to_json() for p in self.pending],
                "failed": [p.to_json() for p in self.failed]}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _view(state: AlertState, delivered: dt.datetime | None = None,
          queued: tuple[int, ...] = ()) -> AlertView:
    return AlertView(state.fingerprint, state.status, state.first_partition,
                     _aware(state.last_seen), _aware(state.last_sent_at),
                     state.repeats_since_sent, _aware(state.muted_until), state.mute_reason,
                     delivered, queued)


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


def _of_group(session, key: str, *, muted_only: bool = False) -> list[AlertState]:
    """The states of ``DATASET|FEATURE``: its open fingerprints (or, ``muted_only``, its muted
    ones), every check, environment and segment."""
    dataset, sep, feature = key.partition("|")
    if not sep or not dataset or not feature or "|" in feature:
        raise AlertInputError(f"alerts --group: expected DATASET|FEATURE (as a message's mute "
                              f"hint prints it), found {key!r}")
    where = [AlertState.dataset == dataset, AlertState.feature == feature]
    where.append(AlertState.muted_until.is_not(None) if muted_only
                 else AlertState.status == "open")
    states = list(session.scalars(sa.select(AlertState).where(*where)
                                  .order_by(AlertState.fingerprint).with_for_update()))
    if not states:
        known = sorted({f"{d}|{f}" for d, f in session.execute(
            sa.select(AlertState.dataset, AlertState.feature).where(
                AlertState.feature.is_not(None))).all()})
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}" if close else ""
        which = "muted" if muted_only else "open"
        raise UnknownFingerprint(f"alerts --group: expected a dataset and feature with {which} "
                                 f"alerts; found none for {key}{hint}")
    return states


def _states(session, fingerprints: Sequence[str], groups: Sequence[str], *,
            muted_only: bool = False) -> list[AlertState]:
    if not fingerprints and not groups:
        raise AlertInputError("alerts mute/unmute: expected a FINGERPRINT or --group "
                              "DATASET|FEATURE, found neither")
    found: dict[str, AlertState] = {}
    for fp in fingerprints:
        found.setdefault(fp, _known(session, fp))
    for key in groups:
        for state in _of_group(session, key, muted_only=muted_only):
            found.setdefault(state.fingerprint, state)
    return list(found.values())


def mute_all(store: Store, fingerprints: Sequence[str], duration: dt.timedelta, reason: str,
             *, groups: Sequence[str] = (), now: dt.datetime | None = None
             ) -> tuple[AlertView, ...]:
    """Mute fingerprints, and every open fingerprint of each ``DATASET|FEATURE`` group (what a
    message's "mute all" hint names), for ``duration``: all of them or, on an error, none.

    Raises:
        UnknownFingerprint: the store has no state for a fingerprint, or no open one for a group.
        AlertInputError: a non-positive duration, an empty reason, nothing named.
    """
    if duration <= dt.timedelta(0):
        raise AlertInputError(f"alerts mute --for: expected a positive duration, found {duration}")
    if not reason or not reason.strip():
        raise AlertInputError("alerts mute --reason: expected a reason people can read, found "
                              "an empty text")
    now = now or outbox.utcnow()  # looked up now: tests move the clock
    with store.session() as s, s.begin():
        states = _states(s, fingerprints, groups)
        for state in states:
            state.muted_until = now + duration
            state.mute_reason = reason.strip()
        s.flush()
        return tuple(_view(state) for state in states)


def mute(store: Store, fingerprint: str, duration: dt.timedelta, reason: str, *,
         now: dt.datetime | None = None) -> AlertView:
    """Mute ``fingerprint`` for ``duration``.

    Raises:
        UnknownFingerprint: the store has no state for it.
        AlertInputError: a non-positive duration or an empty reason.
    """
    return mute_all(store, [fingerprint], duration, reason, now=now)[0]


def unmute_all(store: Store, fingerprints: Sequence[str], *, groups: Sequence[str] = ()
               ) -> tuple[AlertView, ...]:
    """Lift the mutes of fingerprints and of every muted fingerprint of each group.

    Raises:
        UnknownFingerprint: the store has no state for a fingerprint, or no muted one for a
            group.
    """
    with store.session() as s, s.begin():
        states = _states(s, fingerprints, groups, muted_only=True)
        for state in states:
            state.muted_until = None
            state.mute_reason = None
        s.flush()
        return tuple(_view(state) for state in states)


def unmute(store: Store, fingerprint: str) -> AlertView:
    """Lift a mute (a no-op for a fingerprint that is not muted).

    Raises:
        UnknownFingerprint: the store has no state for it.
    """
    return unmute_all(store, [fingerprint])[0]


def _deliveries(session) -> dict[str, dt.datetime]:
    """Per fingerprint, when a message carrying it last reached Slack."""
    out: dict[str, dt.datetime] = {}
    for fps, sent_at in session.execute(sa.select(AlertOutbox.fingerprints, AlertOutbox.sent_at)
                                        .where(AlertOutbox.status == "sent",
                                               AlertOutbox.sent_at.is_not(None))):
        for fp in fps or ():
            out[fp] = max(out.get(fp, _aware(sent_at)), _aware(sent_at))
    return out


def list_alerts(store: Store, *, now: dt.datetime | None = None) -> AlertListing:
    """Open fingerprints, muted ones (mute still running) and undelivered outbox rows.

    A fingerprint's "last sent" is when a message carrying it reached Slack, never the time
    it was queued: a fingerprint whose row still waits shows the row instead.
    """
    now = now or outbox.utcnow()  # looked up now: tests move the clock
    with store.session() as s:
        rows = [PendingView(r.id, r.kind, r.group_key, r.status, r.attempts,
                            _aware(r.next_attempt_at), r.last_error, tuple(r.fingerprints or ()))
                for r in s.scalars(sa.select(AlertOutbox).where(
                    AlertOutbox.status.in_(("pending", "sending", "failed")))
                    .order_by(AlertOutbox.id))]
        delivered = _deliveries(s)
        waiting: dict[str, list[int]] = {}
        for r in rows:
            for fp in r.fingerprints:
                waiting.setdefault(fp, []).append(r.outbox_id)
        states = [_view(x, delivered.get(x.fingerprint), tuple(waiting.get(x.fingerprint, ())))
                  for x in s.scalars(sa.select(AlertState).order_by(
                      AlertState.first_partition, AlertState.fingerprint))]
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
