"""Slack alerts: queued in the results store's outbox with the findings, delivered by
``funnelguard alerts flush`` through the Airflow Slack provider, deduplicated and muted by
fingerprint."""
