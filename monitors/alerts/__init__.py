"""Slack alerts: queued in the results store's outbox with the findings that cause them
(:func:`enqueue_for_run`, called by ``Store.record_run``), delivered by :func:`flush`
(``funnelguard alerts flush`` and the DAGs' alert task) through the Airflow Slack provider as
one message per root cause (the rows of one partition, dataset and feature together),
previewed without sending (:func:`preview_outbox`), deduplicated, resolved and muted by fingerprint
or by feature (:func:`mute_all`), re-queued after Slack rejected them (:func:`requeue_failed`);
:func:`render_run_summary` is the short text for Airflow's ``SlackWebhookNotifier``. Names load
lazily, so ``funnelguard --help`` stays fast.
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
    "mute_all",
    "unmute",
    "unmute_all",
    "preview_outbox",
    "PreviewedAlert",
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
    "mute_all": "mutes", "unmute_all": "mutes",
    "preview_outbox": "preview", "PreviewedAlert": "preview",
    "AlertSettings": "settings",
    "OwnerDirectory": "owners",
    "render_message": "message", "render_run_summary": "message", "QueuedAlert": "message",
    "SlackMessage": "message",
}


# Exported under another name: ``monitors.alerts.preview`` is the module.
_RENAMED = {"preview_outbox": "preview"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        module = importlib.import_module(f"monitors.alerts.{_HOME[name]}")
        return getattr(module, _RENAMED.get(name, name))
    raise AttributeError(f"module 'monitors.alerts' has no attribute {name!r}")
