"""Posting one message to Slack through the Airflow Slack provider, classifying the outcome.

The webhook URL comes from the Airflow connection's password
(``SlackWebhookHook(slack_webhook_conn_id=...)``; ``AIRFLOW_CONN_FUNNELGUARD_SLACK`` as a URI or
JSON works outside Airflow). We call ``hook.client.send_dict`` rather than ``hook.send``,
because the hook's wrapper raises on 429 and drops ``Retry-After``. The client's own retry
handlers are switched off: the outbox retries, so one flush never blocks on a dead Slack.

The URL is a secret: it is scrubbed from every error text and log record this module produces,
and the client logs through a logger that is never at DEBUG (the client logs the URL there).
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

from monitors.alerts.errors import SlackConnectionError

__all__ = ["DeliveryOutcome", "SlackWebhook", "parse_retry_after", "DEFAULT_RETRY_AFTER",
           "CONNECTION_REJECTED", "RETRYABLE_4XX"]

DEFAULT_RETRY_AFTER = 30.0
_CLIENT_LOGGER = "funnelguard.alerts.slack_client"
# 4xx answers that refuse the webhook itself, not one message (Slack: invalid_token,
# action_prohibited, no_service, no_team, channel_not_found, channel_is_archived).
CONNECTION_REJECTED = frozenset({401, 403, 404, 410})
# 4xx answers a retry can fix: the request timed out at Slack's end, rate limited.
RETRYABLE_4XX = frozenset({408, 429})


@dataclass(frozen=True)
class DeliveryOutcome:
    """What happened to one post.

    Attributes:
        delivered: Slack answered 2xx.
        error: what went wrong, webhook URL scrubbed (``None`` when delivered).
        retry_after: seconds Slack asked us to wait (HTTP 429).
        unreachable: no HTTP answer at all (refused, timed out, reset): stop this flush.
        rejected: Slack refused the post with a 4xx other than 408 and 429: sending the same
            again cannot help until someone fixes the message or the connection.
        connection_rejected: the 4xx refuses the webhook itself (401, 403, 404, 410: revoked
            token, deleted or archived channel): every other post would be refused too.
        uncertain: the request was sent and no answer came (read timeout, reset): Slack may
            have posted it, so a re-send says it is a repeat.
        status_code: the HTTP status, when there was one.
    """

    delivered: bool
    error: str | None = None
    retry_after: float | None = None
    unreachable: bool = False
    rejected: bool = False
    connection_rejected: bool = False
    uncertain: bool = False
    status_code: int | None = None


def parse_retry_after(headers: Mapping[str, Any] | None) -> float:
    """Seconds from a ``Retry-After`` header (any case; list or str value), default 30."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return DEFAULT_RETRY_AFTER
    return DEFAULT_RETRY_AFTER


class _Scrub(logging.Filter):
    """Replaces the webhook URL (and its token path) in log records of the Slack client."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<webhook>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = ()
        return True


class SlackWebhook:
    """The webhook of one Airflow Slack connection.

    Args:
        conn_id: the Airflow connection id (default for funnelguard: ``funnelguard_slack``).
        timeout: seconds per call; ``None``: the connection's ``timeout`` extra, else 30.

    Raises:
        SlackConnectionError: the connection is not defined or holds no webhook URL.
    """

    def __init__(self, conn_id: str, timeout: float | None = None) -> None:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        self.conn_id = conn_id
        self.timeout = timeout
        self._logger = logging.getLogger(_CLIENT_LOGGER)
        if self._logger.level == logging.NOTSET or self._logger.level < logging.INFO:
            self._logger.setLevel(logging.INFO)  # the client logs the URL at DEBUG
        hook = SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=timeout,
                                retry_handlers=[], logger=self._logger)
        try:
            self._client = hook.client
        except Exception as exc:  # AirflowNotFoundException and friends
            raise SlackConnectionError(
                f"Slack connection {conn_id!r}: expected an Airflow connection whose password "
                f"is the webhook URL (AIRFLOW_CONN_{conn_id.upper()} as a URI or JSON, or the "
                f"Airflow UI); found {type(exc).__name__}: {self._safe(str(exc), [])}") from None
        url = self._client.url
        parts = urlsplit(url)
        self._filter = _Scrub([s for s in (url, parts.path, parts.path.strip("/")) if len(s) > 1])
        self._logger.addFilter(self._filter)
        if not url.lower().startswith(("http://", "https://")):
            self.close()
            raise SlackConnectionError(
                f"Slack connection {conn_id!r}: expected the password to be an http(s) webhook "
                f"URL; found a value with scheme {parts.scheme or 'none'!r}")

    @staticmethod
    def _safe(text: str, secrets: list[str]) -> str:
        for secret in secrets:
            text = text.replace(secret, "<webhook>")
        return text

    def scrub(self, text: str) -> str:
        """``text`` with the webhook URL and its token path replaced by ``<webhook>``."""
        return self._filter.scrub(text)

    def close(self) -> None:
        """Detach the log scrubber."""
        self._logger.removeFilter(self._filter)

    def __enter__(self) -> SlackWebhook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _no_answer(self, what: str, *, sent: bool) -> DeliveryOutcome:
        return DeliveryOutcome(False, error=self.scrub(f"Slack webhook unreachable: {what}"),
                               unreachable=True, uncertain=sent)

    def post(self, body: Mapping[str, Any]) -> DeliveryOutcome:
        """Post one Block Kit body; never raises for network or HTTP failures.

        urllib wraps what fails while connecting and writing the request in ``URLError``; what
        fails while waiting for the answer (a read timeout, a reset) comes unwrapped, after
        Slack may have taken the post: those outcomes are ``uncertain``.
        """
        try:
            resp = self._client.send_dict(dict(body))
        except TimeoutError:
            return self._no_answer(f"no answer within {self.timeout or 'the client timeout'} s",
                                   sent=True)
        except URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                return self._no_answer(f"no answer within {self.timeout} s", sent=False)
            if isinstance(reason, ConnectionRefusedError):
                return self._no_answer("connection refused", sent=False)
            return self._no_answer(f"{type(reason).__name__}: {reason}", sent=False)
        except (OSError, http.client.HTTPException) as exc:
            return self._no_answer(f"{type(exc).__name__}: {exc}", sent=True)
        status = resp.status_code
        if 200 <= status < 300:
            return DeliveryOutcome(True, status_code=status)
        answer = self.scrub(str(resp.body or "")[:200])
        if status == 429:
            wait = parse_retry_after(resp.headers)
            return DeliveryOutcome(False, error=f"HTTP 429 rate limited; Retry-After {wait:g} s",
                                   retry_after=wait, status_code=status)
        rejected = 400 <= status < 500 and status not in RETRYABLE_4XX
        return DeliveryOutcome(False, error=f"HTTP {status} from Slack: {answer}",
                               rejected=rejected,
                               connection_rejected=rejected and status in CONNECTION_REJECTED,
                               status_code=status)
