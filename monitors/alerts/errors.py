"""Errors of the alerts package, each an input (exit 2) or environment (exit 3) failure.

A message never contains the Slack webhook URL: errors about delivery name the connection id
(``funnelguard_slack``), never its password.
"""

from __future__ import annotations

from funnelguard.errors import EnvironmentFailure, InputError

__all__ = ["AlertInputError", "UnknownFingerprint", "SlackConnectionError", "SlackUnreachable"]


class AlertInputError(InputError):
    """A bad argument to an ``alerts`` command (duration, fingerprint ...). Exit 2."""


class UnknownFingerprint(AlertInputError):
    """``mute`` / ``unmute`` named a fingerprint the store has never seen."""


class SlackConnectionError(AlertInputError):
    """The Slack connection is missing or malformed (no password, not a webhook URL)."""


class SlackUnreachable(EnvironmentFailure):
    """Slack could not take the messages; they stay in the outbox for the next flush. Exit 3."""
