"""Rendering queued alerts as Slack Block Kit messages, and runs as short failure summaries.

Pure functions of a :class:`QueuedAlert` (what the outbox holds, including the project and
contract file of the run that queued it), an :class:`~monitors.alerts.owners.OwnerDirectory`
(owners, PII fields and stages, read from those files) and
:class:`~monitors.alerts.settings.AlertSettings` (links). PII is enforced here a second time:
examples of personal-data fields are dropped and their findings are described by numbers only,
never by the check's free text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from funnelguard.findings import Finding, RunResult
from monitors.alerts.owners import OwnerDirectory
from monitors.alerts.settings import AlertSettings

__all__ = ["QueuedAlert", "SlackMessage", "render_message", "describe_finding",
           "render_run_summary", "LOCAL_RUNBOOK"]

LOCAL_RUNBOOK = "docs/alerts.md#runbook"
_SECTION_LIMIT = 2900  # Block Kit allows 3000 characters per section text
_HEADER_LIMIT = 150  # and 150 per header
# Checks whose value and threshold are fractions of rows (shown as percentages): the contract
# checks (failing fraction), replay skew (mismatch rate), coverage and duplicates (share of keys).
_RATE_WORDS = ("rate", "share", "fraction", "null", "default", "missing", "nan", "skew",
               "coverage", "duplicate", "range", "allowed", "unique", "finite", "dtype")
_SEVERITY_EMOJI = {"error": ":red_circle:", "warning": ":large_orange_circle:",
                   "info": ":large_blue_circle:"}


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


def _number(value: Any, as_rate: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if as_rate and 0.0 <= value <= 1.0:
        return f"{value * 100:.1f} %"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def _numbers_in_words(f: Finding) -> str:
    """``38.2 % (limit 5.0 %), 630 rows`` from the structured fields alone."""
    as_rate = any(word in f.check for word in _RATE_WORDS)
    value, limit = _number(f.value, as_rate), _number(f.threshold, as_rate)
    words = []
    if value is not None:
        words.append(value + (f" (limit {limit})" if limit is not None else ""))
    elif limit is not None:
        words.append(f"limit {limit}")
    if f.count is not None:
        words.append(f"{f.count:,} rows")
    return ", ".join(words) or "failed"


def _segment_words(segment: str | None, redacted: bool) -> str | None:
    if not segment:
        return None
    if redacted:
        return "one segment only"
    values = [part.split("=", 1)[-1] for part in segment.split(",") if part]
    return ", ".join(values) + " only"


def describe_finding(f: Finding, *, pii: bool = False, segment_pii: bool = False,
                     since: str | None = None, repeats: int = 0) -> str:
    """One finding in words: subject, check, numbers, segment, since when, repeats.

    Args:
        f: the finding.
        pii: the finding is about a personal-data field: numbers only, no examples, no message.
        segment_pii: the segment column is personal data: the segment value is not shown.
        since: the first partition of the open streak.
        repeats: how often it was seen since the last message about it.
    """
    subject = f.feature or f.task or f.check
    check = f.check.replace("_", " ")
    if pii or not f.message:
        detail = _numbers_in_words(f)
    else:
        detail = f.message
        for prefix in (f"{subject}: ", f"{subject} "):
            if detail.startswith(prefix):
                detail = detail[len(prefix):]
                break
        detail = _escape(detail)
    line = f"*{subject}* {check}: {detail}"
    where = _segment_words(f.segment, segment_pii)
    if where:
        line += f", {where}"
    if since:
        line += f", since {since}"
    if repeats:
        line += f" (seen {repeats} more time{'s' if repeats != 1 else ''} since the last alert)"
    if f.examples and not pii:
        shown = ", ".join(f"`{_escape(str(e))[:40]}`" for e in f.examples[:3])
        line += f"; e.g. {shown}"
    return line


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


def _links(alert: QueuedAlert, checks: Sequence[str], settings: AlertSettings) -> list[str]:
    """Report, Airflow log and runbook links (local paths only without a base URL)."""
    p = alert.payload
    base, links = settings.base_url, []
    artifacts = p.get("artifacts") or {}
    report = artifacts.get("report") or next(
        (v for k, v in artifacts.items() if "report" in k), None)
    if base:
        where = "/".join(quote(x or "-", safe="") for x in (
            p.get("command", "run").replace(" ", "-"), alert.dataset, alert.environment,
            alert.partition))
        links.append(f"<{base}/reports/{where}|Report>")
    elif report:
        links.append(f"Report: `{report}`")
    af = p.get("airflow") or {}
    if {"dag_id", "run_id", "task_id"} <= af.keys():
        if settings.airflow_ui:
            url = (f"{settings.airflow_ui}/dags/{quote(af['dag_id'], safe='')}/runs/"
                   f"{quote(af['run_id'], safe='')}/tasks/{quote(af['task_id'], safe='')}")
            links.append(f"<{url}|Airflow log>")
        else:
            links.append(f"Airflow log: `{af['dag_id']} / {af['run_id']} / {af['task_id']}`")
    for check in list(dict.fromkeys(checks))[:3]:
        links.append(f"<{base}/runbooks/{quote(check)}|Runbook: {check}>" if base
                     else f"Runbook: `{LOCAL_RUNBOOK}-{check.replace('_', '-')}`")
    return links


def _header(alert: QueuedAlert) -> str:
    where = " · ".join(x for x in (alert.dataset, alert.environment, alert.partition) if x)
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


def render_message(alert: QueuedAlert, directory: OwnerDirectory,
                   settings: AlertSettings) -> SlackMessage:
    """The Block Kit message for one queued alert, gate block, training stop or resolution."""
    directory = directory.scoped(alert.project, alert.contract)
    p = alert.payload
    findings = alert.findings
    since, repeats = p.get("since") or {}, p.get("repeats") or {}
    fps = [doc.get("fingerprint") for doc in p.get("findings", ())]
    lines, pii_segments = [], False
    for f, fp in zip(findings, fps, strict=True):
        dataset = f.dataset or alert.dataset
        seg_col = f.segment.split("=", 1)[0] if f.segment else None
        pii_segments |= directory.is_pii(dataset, seg_col)
        if alert.kind == "resolution":
            opened = since.get(fp)
            lines.append(f"*{f.feature or f.task or f.check}* {f.check.replace('_', ' ')} "
                         f"passes again" + (f" (failing since {opened})" if opened else ""))
            continue
        lines.append(describe_finding(
            f, pii=directory.is_pii(dataset, f.feature),
            segment_pii=directory.is_pii(dataset, seg_col),
            since=since.get(fp), repeats=int(repeats.get(fp, 0))))
    shown = lines[: settings.max_findings_shown]
    if len(lines) > len(shown):
        shown.append(f"…and {len(lines) - len(shown)} more")
    if p.get("still_failing"):
        shown.append(f"_{p['still_failing']} known issue(s) in this group still failing, "
                     "already alerted or muted_")
    owners = directory.mentions((f.dataset or alert.dataset, f.feature) for f in findings)
    header = _header(alert)
    if alert.repeat:  # the same header, so that the two posts read as one alert
        mark = f" · repeat of #{alert.id}"
        header = header[: _HEADER_LIMIT - len(mark)] + mark
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header[:_HEADER_LIMIT],
                                    "emoji": True}}]
    facts = [("Severity", alert.severity), ("Dataset", alert.dataset or "—"),
             ("Environment", alert.environment or "—"), ("Partition", alert.partition or "—"),
             ("Owner", " ".join(owners) or directory.default_owner)]
    if alert.kind != "resolution":
        affected = _tasks_affected(alert.kind, findings, alert.dataset, directory)
        facts.append(("Tasks affected", ", ".join(affected) or "—"))
    blocks.append({"type": "section", "fields": [
        {"type": "mrkdwn", "text": f"*{k}:*\n{v}"} for k, v in facts]})
    if alert.kind == "training":
        for f in findings:
            if f.check == "triage":
                blocks.append(_section(f"*Triage verdict:* `{f.value}`\n*Evidence:* "
                                       f"{_escape(f.message) or 'none recorded'}"))
    blocks.append(_section("\n".join(f"• {line}" for line in shown)))
    context = _links(alert, [f.check for f in findings], settings)
    context.append(f"alert #{alert.id} · `{p.get('command', '')}`")
    if alert.repeat:
        context.append(f"repeat of #{alert.id}: an earlier post of this alert got no answer "
                       "from Slack and may already be in the channel")
    if len(fps) == 1 and fps[0] and alert.kind != "resolution" and not pii_segments:
        # a fingerprint holds the segment value: never one of a personal-data column
        context.append(f"mute: `funnelguard alerts mute '{fps[0]}' --for 24h --reason ...`")
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": item[:_SECTION_LIMIT]} for item in context[:10]]})
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
    where = " · ".join(x for x in (result.dataset, result.environment, result.partition) if x)
    head = f"funnelguard {result.command}" + (f" · {where}" if where else "")
    if result.error is not None:
        text = f"{head}: {result.error.kind} error: {result.error.message}"
    else:
        failed = [f for f in result.failures if f.severity in ("error", "warning")]
        lines = [f"{head}: {result.status.upper()} — {len(failed)} of {len(result.findings)} "
                 "checks not passed"]
        for f in failed[:max_lines]:
            dataset = f.dataset or result.dataset
            seg_col = f.segment.split("=", 1)[0] if f.segment else None
            lines.append("• " + describe_finding(
                f, pii=directory.is_pii(dataset, f.feature),
                segment_pii=directory.is_pii(dataset, seg_col)).replace("*", ""))
        if len(failed) > max_lines:
            lines.append(f"…and {len(failed) - max_lines} more")
        text = "\n".join(lines)
    return text.replace("{{", "{ {").replace("}}", "} }")
