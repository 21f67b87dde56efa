"""Slack alerts: queued in the results store's outbox with the findings that cause them
(:func:`enqueue_for_run`, called by ``Store.record_run``), delivered by :func:`flush`
(``funnelguard alerts flush`` and the DAGs' alert task) through the Airflow Slack provider,
deduplicated, resolved and muted by fingerprint, re-queued after Slack rejected them
(:func:`requeue_failed`); :func:`render_run_summary` is the short text
for Airflow's ``SlackWebhookNotifier``. Names load lazily, so ``funnelguard --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "enqueue_for_run",
    "flush",
    "flush_store",
    "FlushReport",
    "Delivery",
    "mute",
    "unmute",
    "list_alerts",
    "requeue_failed",
    "AlertSettings",
    "OwnerDirectory",
    "render_message",
    "render_run_summary",
    "QueuedAlert",
    "SlackMessage",
]

_HOME = {
    "enqueue_for_run": "outbox",
    "flush": "dispatch", "flush_store": "dispatch", "FlushReport": "dispatch",
    "Delivery": "dispatch",
    "mute": "mutes", "unmute": "mutes", "list_alerts": "mutes", "requeue_failed": "mutes",
    "AlertSettings": "settings",
    "OwnerDirectory": "owners",
    "render_message": "message", "render_run_summary": "message", "QueuedAlert": "message",
    "SlackMessage": "message",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        module = importlib.import_module(f"monitors.alerts.{_HOME[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'monitors.alerts' has no attribute {name!r}")
