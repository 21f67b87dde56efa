"""Rendering queued alerts as Slack Block Kit messages, and runs as short failure summaries.

Pure functions of :class:`QueuedAlert` rows (what the outbox holds, including the project and
contract file of the run that queued each), an :class:`~monitors.alerts.owners.OwnerDirectory`
(owners, PII fields and stages, read from those files) and
:class:`~monitors.alerts.settings.AlertSettings` (links). :func:`render_message` takes one row
or the rows of one group (:mod:`monitors.alerts.grouping`: one partition, dataset and feature,
seen by several checks) and renders one message: a header naming the feature and its root-cause
segment, one line per check and environment (a check's segment findings folded into its line),
the links of every run. PII is enforced here a second time: examples of personal-data fields
are dropped and their findings are described by numbers only, never by the check's free text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from funnelguard.findings import Finding, RunResult
from monitors.alerts.grouping import group_key, root_cause
from monitors.alerts.links import LOCAL_RUNBOOK, context_links
from monitors.alerts.owners import OwnerDirectory
from monitors.alerts.settings import AlertSettings
from monitors.alerts.wording import check_words, example_words, numbers_in_words

if TYPE_CHECKING:
    from contracts.spec import FieldContract

__all__ = ["QueuedAlert", "SlackMessage", "render_message", "describe_finding",
           "render_run_summary", "LOCAL_RUNBOOK"]

_SECTION_LIMIT = 2900  # Block Kit allows 3000 characters per section text
_HEADER_LIMIT = 150  # and 150 per header
_SEVERITY_EMOJI = {"error": ":red_circle:", "warning": ":large_orange_circle:",
                   "info": ":large_blue_circle:"}
_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}
_SEGMENT_TOKEN = re.compile(r"\b([A-Za-z_]\w*)=")


@dataclass(frozen=True)
class QueuedAlert:
    """One outbox row as the renderer sees it (``AlertOutbox`` without the database).

    ``project`` and ``contract`` are the files the run that queued it used (None for rows
    stored before the store carried them: the packaged contracts by name). ``repeat``: an
    earlier post of this row may have reached Slack without an answer, so the message says
    "repeat of #ID" beside the same header.
    """

    id: int
    kind: str
    dataset: str
    environment: str
    partition: str
    severity: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    project: str | None = None
    contract: str | None = None
    repeat: bool = False

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(Finding.from_json(doc) for doc in self.payload.get("findings", ()))


@dataclass(frozen=True)
class SlackMessage:
    """A webhook body: ``text`` (notification fallback) and Block Kit ``blocks``."""

    text: str
    blocks: tuple[dict[str, Any], ...]

    def body(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": list(self.blocks)}

    def dumps(self) -> str:
        return json.dumps(self.body(), ensure_ascii=False)


def _escape(text: str) -> str:
    """Slack mrkdwn control characters in text that came from a check."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _segment_label(segment: str, redacted: bool) -> str:
    return "one segment" if redacted else segment


def _segment_words(segment: str | None, redacted: bool) -> str | None:
    return f"{_segment_label(segment, redacted)} only" if segment else None


def _examples(f: Finding, hidden: Sequence[str]) -> str:
    shown = [w for e in (f.examples or ())[:3] if (w := example_words(e, hidden))]
    return "; e.g. " + ", ".join(f"`{_escape(w)}`" for w in shown) if shown else ""


def describe_finding(f: Finding, *, pii: bool = False, segment_pii: bool = False,
                     since: str | None = None, repeats: int = 0,
                     field: FieldContract | None = None, hidden: Sequence[str] = ()) -> str:
    """One finding in words: subject, check, numbers, segment, since when, repeats, examples.

    Args:
        f: the finding.
        pii: the finding is about a personal-data field: numbers only, no examples, no message.
        segment_pii: the segment column is personal data: the segment value is not shown.
        since: the first partition of the open streak.
        repeats: how often it was seen since the last message about it.
        field: the finding's field in its contract (its default, bounds, allowed values).
        hidden: personal-data columns: their values are left out of examples (records).
    """
    line = _head(f, pii=pii, segment_pii=segment_pii, field=field)
    return line + _tail(since, repeats) + ("" if pii else _examples(f, hidden))


def _head(f: Finding, *, pii: bool, segment_pii: bool, field: FieldContract | None) -> str:
    subject = f.feature or f.task or f.check
    detail = numbers_in_words(f) if pii else (_escape(check_words(f, field))
                                                or numbers_in_words(f))
    line = f"*{subject}* {f.check.replace('_', ' ')}: {detail}"
    where = _segment_words(f.segment, segment_pii)
    return line + (f", {where}" if where else "")


def _tail(since: str | None, repeats: int) -> str:
    text = f", since {since}" if since else ""
    if repeats:
        text += f" (seen {repeats} more time{'s' if repeats != 1 else ''} since the last alert)"
    return text


@dataclass(frozen=True)
class _Item:
    """One finding of a message with what its row says about its fingerprint."""

    finding: Finding
    fingerprint: str | None
    since: str | None
    repeats: int
    dataset: str


class _Scope:
    """The PII and contract questions one message asks, answered from its directory."""

    def __init__(self, directory: OwnerDirectory) -> None:
        self.directory = directory

    def column_pii(self, dataset: str, column: str | None) -> bool:
        return self.directory.is_pii(dataset, column)

    def segment_pii(self, item: _Item) -> bool:
        seg = item.finding.segment
        return bool(seg) and self.column_pii(item.dataset, seg.split("=", 1)[0])

    def finding_pii(self, item: _Item) -> bool:
        """About a personal field, or its text names a segment of one (``user_id=...``)."""
        f = item.finding
        return self.column_pii(item.dataset, f.feature) or any(
            self.column_pii(item.dataset, col) for col in _SEGMENT_TOKEN.findall(f.message or ""))

    def field(self, dataset: str, name: str | None) -> FieldContract | None:
        contract = self.directory.contract(dataset)
        if contract is None or not name:
            return None
        return next((x for x in contract.fields if x.name == name), None)

    def hidden(self, dataset: str, f: Finding) -> list[str]:
        keys = {k for e in (f.examples or ()) if isinstance(e, Mapping) for k in e}
        return [k for k in keys if self.column_pii(dataset, str(k))]


def _items(alerts: Sequence[QueuedAlert]) -> list[_Item]:
    out = []
    for alert in alerts:
        p = alert.payload
        since, repeats = p.get("since") or {}, p.get("repeats") or {}
        for doc in p.get("findings", ()):
            fp = doc.get("fingerprint")
            f = Finding.from_json(doc)
            out.append(_Item(f, fp, since.get(fp), int(repeats.get(fp, 0)),
                             f.dataset or alert.dataset))
    return sorted(out, key=lambda i: _SEVERITY_RANK.get(i.finding.severity, 3))


def _lines_of(items: list[_Item], kind: str, scope: _Scope) -> list[str]:
    """One line per (subject, check, environment): a check's segment findings are folded into
    the line of its overall finding (which names the cause already), or listed after it."""
    units: dict[tuple, list[_Item]] = {}
    checks: dict[str, int] = {}
    for item in items:
        f = item.finding
        checks.setdefault(f.check, len(checks))
        units.setdefault((f.feature or f.task or f.check, f.check, f.environment), []).append(item)
    lines = []
    # errors first; a check's lines (one per environment) side by side
    for members in sorted(units.values(), key=lambda m: (
            min(_SEVERITY_RANK.get(i.finding.severity, 3) for i in m),
            checks[m[0].finding.check])):
        primary = next((i for i in members if not i.finding.segment), members[0])
        f = primary.finding
        since = min((i.since for i in members if i.since), default=None)
        if kind == "resolution":
            lines.append(f"*{f.feature or f.task or f.check}* {f.check.replace('_', ' ')} "
                         f"passes again" + (f" (failing since {since})" if since else ""))
            continue
        pii = scope.finding_pii(primary)
        head = _head(f, pii=pii, segment_pii=scope.segment_pii(primary),
                     field=scope.field(primary.dataset, f.feature))
        for other in members:
            seg = other.finding.segment
            if other is primary or not seg or seg in head:
                continue
            label = _segment_label(seg, scope.segment_pii(other))
            head += f"; {label}: {numbers_in_words(other.finding)}"
        repeats = max(i.repeats for i in members)
        examples = "" if pii else _examples(f, scope.hidden(primary.dataset, f))
        lines.append(head + _tail(since, repeats) + examples)
    return lines


def _tasks_affected(kind: str, findings: Sequence[Finding], dataset: str,
                    directory: OwnerDirectory) -> list[str]:
    """The project's stages a group touches, in funnel order: every stage for a training stop
    or a model input (the features feed the shared trunk of every head), else the findings'
    own tasks (labels, scores, the gate)."""
    stages = directory.stages
    if kind == "training" or any(directory.is_model_input(f.dataset or dataset, f.feature)
                                 for f in findings):
        return list(stages)
    tasks = {f.task for f in findings if f.task}
    return [t for t in stages if t in tasks] + sorted(tasks - set(stages))


def _subject(alert: QueuedAlert, findings: Sequence[Finding], cause: str | None) -> str:
    """The feature (and its root cause) a message is about; empty when it is about none."""
    features = list(dict.fromkeys(f.feature for f in findings if f.feature))
    if not features or alert.kind not in ("alert", "resolution"):
        return ""
    subject = ", ".join(features[:3]) + (f" and {len(features) - 3} more"
                                         if len(features) > 3 else "")
    return subject + (f" · {cause} only" if cause and len(features) == 1 else "")


def _header(alert: QueuedAlert, environments: Sequence[str], subject: str) -> str:
    env = environments[0] if len(environments) == 1 else None
    where = " · ".join(x for x in (subject, alert.dataset, env, alert.partition) if x)
    if alert.kind == "resolution":
        return f":white_check_mark: Resolved: {where}"
    if alert.kind == "gate":
        return f":no_entry: Training gate blocked: {where}"
    if alert.kind == "training":
        return f":octagonal_sign: Training stopped (as of {alert.partition})"
    emoji = _SEVERITY_EMOJI.get(alert.severity, "")
    return f"{emoji} {alert.severity.upper()}: {where}".strip()


def _section(text: str) -> dict[str, Any]:
    if len(text) > _SECTION_LIMIT:
        text = text[: _SECTION_LIMIT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _mute_hint(items: Sequence[_Item], scope: _Scope) -> str | None:
    """How to mute what the message is about: its fingerprint, or every fingerprint of its
    feature (``--group DATASET|FEATURE``, which holds no segment value); None when a
    fingerprint would show a personal-data segment value."""
    fps = list(dict.fromkeys(i.fingerprint for i in items if i.fingerprint))
    if not fps:
        return None
    if len(fps) == 1:
        if any(scope.segment_pii(i) for i in items):
            return None
        return f"mute: `funnelguard alerts mute '{fps[0]}' --for 24h --reason ...`"
    args = list(dict.fromkeys(f"--group '{group_key(i.dataset, i.finding.feature)}'"
                              for i in items if i.finding.feature))
    loose = [i for i in items if not i.finding.feature and i.fingerprint]
    if any(scope.segment_pii(i) for i in loose):
        return None
    args += list(dict.fromkeys(f"'{i.fingerprint}'" for i in loose))
    return (f"mute all {len(fps)}: `funnelguard alerts mute {' '.join(args)} --for 24h "
            "--reason ...`")


def _order(alert: QueuedAlert | Sequence[QueuedAlert]) -> tuple[QueuedAlert, ...]:
    alerts = (alert,) if isinstance(alert, QueuedAlert) else tuple(alert)
    if not alerts:
        raise ValueError("render_message: expected at least one queued alert, found none")
    return tuple(sorted(alerts, key=lambda a: a.id))


def render_message(alert: QueuedAlert | Sequence[QueuedAlert], directory: OwnerDirectory,
                   settings: AlertSettings) -> SlackMessage:
    """The Block Kit message for one queued alert, or one group of them (its id: the smallest
    row id), a gate block, a training stop or a resolution."""
    alerts = _order(alert)
    first = alerts[0]
    directory = directory.scoped(first.project, first.contract)
    scope = _Scope(directory)
    items = _items(alerts)
    findings = [i.finding for i in items]
    cause_segments = root_cause(findings) if first.kind == "alert" else ()
    cause_pii = any(scope.column_pii(first.dataset, s.split("=", 1)[0]) for s in cause_segments)
    cause = (" and ".join(cause_segments) if not cause_pii else "one segment") \
        if cause_segments else None
    lines = _lines_of(items, first.kind, scope)
    shown = lines[: settings.max_findings_shown]
    if len(lines) > len(shown):
        shown.append(f"…and {len(lines) - len(shown)} more")
    still = sum(int(a.payload.get("still_failing") or 0) for a in alerts)
    if still:
        shown.append(f"_{still} known issue(s) in this group still failing, already alerted "
                     "or muted_")
    owners = directory.mentions((f.dataset or first.dataset, f.feature) for f in findings)
    environments = list(dict.fromkeys(a.environment for a in alerts if a.environment))
    header = _header(first, environments, _subject(first, findings, cause))
    repeat = any(a.repeat for a in alerts)
    if repeat:  # the same header, so that the two posts read as one alert
        mark = f" · repeat of #{first.id}"
        header = header[: _HEADER_LIMIT - len(mark)] + mark
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header[:_HEADER_LIMIT],
                                    "emoji": True}}]
    severity = min((a.severity for a in alerts), key=lambda s: _SEVERITY_RANK.get(s, 3))
    facts = [("Severity", severity), ("Dataset", first.dataset or "—"),
             ("Environment", ", ".join(environments) or "—"),
             ("Partition", first.partition or "—"),
             ("Owner", " ".join(owners) or directory.default_owner)]
    if first.kind != "resolution":
        affected = _tasks_affected(first.kind, findings, first.dataset, directory)
        facts.append(("Tasks affected", ", ".join(affected) or "—"))
    if cause:
        facts.append(("Root cause", f"{cause} (the other segments are explained by it)"))
    blocks.append({"type": "section", "fields": [
        {"type": "mrkdwn", "text": f"*{k}:*\n{v}"} for k, v in facts]})
    if first.kind == "training":
        for f in findings:
            if f.check == "triage":
                blocks.append(_section(f"*Triage verdict:* `{f.value}`\n*Evidence:* "
                                       f"{_escape(f.message) or 'none recorded'}"))
    blocks.append(_section("\n".join(f"• {line}" for line in shown)))
    payloads = [a.payload for a in alerts]
    context = context_links(payloads, first.dataset, [f.check for f in findings], settings)
    commands = list(dict.fromkeys(p.get("command", "") for p in payloads))
    rows = f" (rows {', '.join(f'#{a.id}' for a in alerts)})" if len(alerts) > 1 else ""
    context.append(f"alert #{first.id}{rows} · " + ", ".join(f"`{c}`" for c in commands))
    if repeat:
        context.append(f"repeat of #{first.id}: an earlier post of this alert got no answer "
                       "from Slack and may already be in the channel")
    hint = _mute_hint(items, scope) if first.kind != "resolution" else None
    if hint:
        context.append(hint)
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": item[:_SECTION_LIMIT]} for item in context[-10:]]})
    text = f"{header.split(' ', 1)[-1]} — {' '.join(owners)}: {lines[0] if lines else ''}"
    return SlackMessage(text=text[:_SECTION_LIMIT], blocks=tuple(blocks))


def render_run_summary(result: RunResult, *, directory: OwnerDirectory | None = None,
                       max_lines: int = 5) -> str:
    """A few lines of plain text about a run, for Airflow's ``SlackWebhookNotifier``.

    Braces are spaced out (``{ {``) because the notifier renders its text as a Jinja template.

    Args:
        result: the run.
        directory: owners and PII fields; default: the contracts of ``result``'s project
            (:func:`monitors.store.provenance_of`).
        max_lines: at most this many findings are described; the rest are counted.
    """
    if directory is None:
        from monitors.store.store import provenance_of

        source = provenance_of(result)
        directory = OwnerDirectory("").scoped(source.project, source.contract)
    scope = _Scope(directory)
    where = " · ".join(x for x in (result.dataset, result.environment, result.partition) if x)
    head = f"funnelguard {result.command}" + (f" · {where}" if where else "")
    if result.error is not None:
        text = f"{head}: {result.error.kind} error: {result.error.message}"
    else:
        failed = [f for f in result.failures if f.severity in ("error", "warning")]
        lines = [f"{head}: {result.status.upper()} — {len(failed)} of {len(result.findings)} "
                 "checks not passed"]
        for f in failed[:max_lines]:
            item = _Item(f, None, None, 0, f.dataset or result.dataset or "")
            lines.append("• " + describe_finding(
                f, pii=scope.finding_pii(item), segment_pii=scope.segment_pii(item),
                field=scope.field(item.dataset, f.feature),
                hidden=scope.hidden(item.dataset, f)).replace("*", ""))
        if len(failed) > max_lines:
            lines.append(f"…and {len(failed) - max_lines} more")
        text = "\n".join(lines)
    return text.replace("{{", "{ {").replace("}}", "} }")
