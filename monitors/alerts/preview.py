"""Previewing the outbox: the messages the next flush would post, rendered, nothing sent.

:func:`preview` reads the rows waiting in the outbox (``pending``, and ``sending`` ones whose
flush died), groups them as a flush does (:func:`monitors.alerts.grouping.group_rows`), leaves
out the findings muted since they were queued, and renders each group's Block Kit message. It
only reads: no row is claimed, counted or changed (``funnelguard alerts preview``).
:func:`message_text` is a message as plain text for a terminal.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from monitors.alerts import outbox
from monitors.alerts.dispatch import MAYBE_DELIVERED, queued_alert, unmuted_payload
from monitors.alerts.grouping import feature_of, group_rows
from monitors.alerts.message import SlackMessage, render_message
from monitors.alerts.outbox import _aware
from monitors.alerts.owners import OwnerDirectory
from monitors.alerts.settings import AlertSettings
from monitors.store import AlertOutbox, Store

__all__ = ["PreviewedAlert", "preview", "message_text", "describe"]


@dataclass(frozen=True)
class PreviewedAlert:
    """One message the next flush would post (``message`` None: every finding of it muted).

    Attributes:
        alert_id: the message's id (``alert #N``: its smallest row id).
        row_ids: the outbox rows it carries.
        kind, dataset, partition: as the rows say; ``feature`` the one feature of a group.
        fingerprints: the fingerprints it alerts on; ``muted`` those left out (muted since).
        due: whether a flush now would post it (False: waiting for ``next_attempt_at``).
        next_attempt_at: the latest of its rows' next attempts (None: due at once).
        attempts: posts tried so far (the most of its rows).
        repeat: it will say "repeat of #N" (an earlier post may have reached Slack).
    """

    alert_id: int
    row_ids: tuple[int, ...]
    kind: str
    dataset: str
    partition: str
    feature: str | None
    fingerprints: tuple[str, ...]
    muted: tuple[str, ...]
    due: bool
    next_attempt_at: dt.datetime | None
    attempts: int
    repeat: bool
    message: SlackMessage | None

    def to_json(self) -> dict[str, Any]:
        return {"alert": self.alert_id, "rows": list(self.row_ids), "kind": self.kind,
                "dataset": self.dataset, "partition": self.partition, "feature": self.feature,
                "fingerprints": list(self.fingerprints), "muted": list(self.muted),
                "due": self.due, "attempts": self.attempts, "repeat": self.repeat,
                "next_attempt_at": (self.next_attempt_at.isoformat()
                                    if self.next_attempt_at else None),
                "message": self.message.body() if self.message is not None else None}


def _queued_rows(store: Store) -> list[AlertOutbox]:
    with store.session() as s:
        rows = list(s.scalars(sa.select(AlertOutbox).where(
            AlertOutbox.status.in_(("pending", "sending"))).order_by(AlertOutbox.id)))
        s.expunge_all()
    return rows


def preview(store: Store, *, settings: AlertSettings | None = None,
            directory: OwnerDirectory | None = None,
            now: dt.datetime | None = None) -> tuple[PreviewedAlert, ...]:
    """The messages queued in ``store``'s outbox, rendered as a flush would, nothing sent.

    Args:
        store: the results store (only read).
        settings: links and limits; default from the environment.
        directory: owners and PII fields; default from the contracts each row's run used.
        now: the time mutes and due dates are judged at (default: the clock).
    """
    settings = settings or AlertSettings.from_env()
    directory = directory or OwnerDirectory(settings.default_owner)
    now = now or outbox.utcnow()  # looked up now: tests move the clock
    out = []
    for group in group_rows(_queued_rows(store)):
        live, fingerprints, muted = [], [], []
        for row in group:
            payload, left_out = unmuted_payload(store, row, now)
            muted += left_out
            fingerprints += [fp for fp in row.fingerprints or () if fp not in left_out]
            if row.kind == "resolution" or payload.get("findings"):
                live.append((row, payload))
        repeat = any(r.status == "sending" or (r.payload or {}).get(MAYBE_DELIVERED)
                     for r in group)
        message = render_message([queued_alert(r, p, repeat=repeat) for r, p in live],
                                 directory, settings) if live else None
        waits = [_aware(r.next_attempt_at) for r in group
                 if r.status == "pending" and r.next_attempt_at is not None]
        due = all(w <= now for w in waits) and not any(
            r.status == "sending" and r.next_attempt_at is not None
            and _aware(r.next_attempt_at) >= now for r in group)
        first = group[0]
        out.append(PreviewedAlert(
            alert_id=min(r.id for r, _ in live) if live else first.id,
            row_ids=tuple(r.id for r in group), kind=first.kind, dataset=first.dataset,
            partition=first.partition, feature=feature_of(first.payload or {}),
            fingerprints=tuple(dict.fromkeys(fingerprints)), muted=tuple(dict.fromkeys(muted)),
            due=due, next_attempt_at=max(waits) if waits else None,
            attempts=max(r.attempts for r in group), repeat=repeat, message=message))
    return tuple(out)


_LINK = re.compile(r"<([^|<>]+)\|([^<>]+)>")


def _plain(text: str) -> str:
    text = _LINK.sub(r"\2 (\1)", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def message_text(message: SlackMessage) -> str:
    """A message as plain lines for a terminal: header, facts, lines, links."""
    lines: list[str] = []
    for block in message.blocks:
        if block["type"] == "header":
            lines.append(block["text"]["text"])
        elif block.get("fields"):
            facts = [f["text"].replace(":*\n", ": ").replace("*", "", 1) for f in block["fields"]]
            lines.append(_plain(" · ".join(facts)))
        elif block["type"] == "section":
            lines.append(_plain(block["text"]["text"]))
        elif block["type"] == "context":
            lines += [_plain(e["text"]) for e in block["elements"]]
    return "\n".join(lines)


def describe(previews: Sequence[PreviewedAlert]) -> str:
    """Every previewed message as text, one after the other (``alerts preview``)."""
    parts = []
    for p in previews:
        state = "due now" if p.due else (f"next attempt after {p.next_attempt_at:%Y-%m-%d %H:%M} "
                                         "UTC" if p.next_attempt_at else "waiting")
        head = (f"── alert #{p.alert_id} ({p.kind}; rows {', '.join(f'#{i}' for i in p.row_ids)};"
                f" {state}" + (f"; {len(p.muted)} muted finding(s) left out" if p.muted else "")
                + ")")
        body = message_text(p.message) if p.message is not None else \
            "(every finding muted since it was queued: the flush marks it muted, sends nothing)"
        parts.append(f"{head}\n{body}")
    return "\n\n".join(parts)
