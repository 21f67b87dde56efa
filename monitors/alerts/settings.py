"""Alert settings read from the environment, with the defaults documented in docs/alerts.md.

``FUNNELGUARD_BASE_URL`` (the published results site: run and dataset links),
``FUNNELGUARD_AIRFLOW_URL`` (Airflow UI, default ``$FUNNELGUARD_BASE_URL/airflow``),
``FUNNELGUARD_RUNBOOK_URL`` (the runbook page, e.g. docs/alerts.md where it is published),
``FUNNELGUARD_ALERT_WINDOW`` (dedup window, default ``24h``), ``FUNNELGUARD_ALERT_OWNER``
(mention when a dataset has no contract), ``FUNNELGUARD_SLACK_TIMEOUT`` (seconds per webhook
call).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass

from monitors.alerts.errors import AlertInputError

__all__ = ["AlertSettings", "parse_duration", "DEFAULT_WINDOW", "DEFAULT_OWNER"]

DEFAULT_WINDOW = dt.timedelta(hours=24)
DEFAULT_OWNER = "ml-platform"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str, *, where: str = "duration") -> dt.timedelta:
    """``"24h"``, ``"30m"``, ``"2d"``, ``"90s"``, ``"1w"`` -> a timedelta.

    Raises:
        AlertInputError: the text is not a number followed by one of s, m, h, d, w.
    """
    match = _DURATION.match(str(text))
    if match is None:
        raise AlertInputError(
            f"{where}: expected a duration like 24h, 30m, 2d, 90s or 1w; found {text!r}")
    return dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class AlertSettings:
    """How alerts are deduplicated, addressed and linked.

    Attributes:
        window: a fingerprint already alerted within this window is counted, not sent again.
        base_url: where the results site is published (``runs/<id>.html``,
            ``datasets/<dataset>.html``; ``None``: local report paths).
        airflow_url: the Airflow UI (default ``base_url + "/airflow"``).
        runbook_url: the runbook page; a check's section is ``#runbook-CHECK`` (``None``: the
            section of docs/alerts.md, named).
        default_owner: the mention used when a dataset has no contract.
        timeout: seconds per webhook call (``None``: the connection's ``timeout`` extra, else 30).
        max_rate_limit_wait: a 429 whose Retry-After is at most this many seconds is waited out
            inside the flush; a longer one leaves the message pending until then.
        max_findings_shown: lines per message before "and N more".
    """

    window: dt.timedelta = DEFAULT_WINDOW
    base_url: str | None = None
    airflow_url: str | None = None
    runbook_url: str | None = None
    default_owner: str = DEFAULT_OWNER
    timeout: float | None = None
    max_rate_limit_wait: float = 5.0
    max_findings_shown: int = 10

    @property
    def airflow_ui(self) -> str | None:
        """The Airflow UI: ``airflow_url``, else ``base_url + "/airflow"``, else ``None``."""
        return self.airflow_url or (f"{self.base_url}/airflow" if self.base_url else None)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AlertSettings:
        """Settings from ``FUNNELGUARD_*`` variables (see the module docstring)."""
        env = os.environ if environ is None else environ
        window = env.get("FUNNELGUARD_ALERT_WINDOW")
        timeout = env.get("FUNNELGUARD_SLACK_TIMEOUT")
        base = (env.get("FUNNELGUARD_BASE_URL") or "").rstrip("/") or None
        airflow = (env.get("FUNNELGUARD_AIRFLOW_URL") or "").rstrip("/") or None
        runbook = (env.get("FUNNELGUARD_RUNBOOK_URL") or "").split("#")[0] or None
        try:
            timeout_s = float(timeout) if timeout else None
        except ValueError:
            raise AlertInputError(
                f"FUNNELGUARD_SLACK_TIMEOUT: expected seconds as a number, found {timeout!r}"
            ) from None
        return cls(
            window=parse_duration(window, where="FUNNELGUARD_ALERT_WINDOW") if window
            else DEFAULT_WINDOW,
            base_url=base,
            airflow_url=airflow,
            runbook_url=runbook,
            default_owner=env.get("FUNNELGUARD_ALERT_OWNER") or DEFAULT_OWNER,
            timeout=timeout_s,
        )
