"""Bad inputs of ``alerts mute`` and ``alerts unmute``: durations, reasons, fingerprints."""

from __future__ import annotations

from tests.reliability.case_types import ONE, Case

__all__ = ["ALERT_CASES"]

ALERT_CASES: tuple[Case, ...] = (
    # -- alerts ------------------------------------------------------------------------------
    Case("mute_forever", ("alerts", "mute", "{fingerprint}", "--for", "forever", "--reason",
                          "noisy"), 2,
         "--for: expected a duration like 24h, 30m, 2d, 90s or 1w; found 'forever'", ONE),
    Case("mute_zero", ("alerts", "mute", "{fingerprint}", "--for", "0m", "--reason", "noisy"), 2,
         "--for: expected a positive duration", ONE),
    Case("mute_negative", ("alerts", "mute", "{fingerprint}", "--for=-5m", "--reason", "noisy"),
         2, "found '-5m'", ONE),
    Case("mute_years", ("alerts", "mute", "{fingerprint}", "--for", "10y", "--reason", "noisy"),
         2, "found '10y'", ONE),
    Case("mute_empty_reason", ("alerts", "mute", "{fingerprint}", "--for", "1h", "--reason", ""),
         2, "--reason: expected a reason people can read, found an empty text", ONE),
    Case("mute_without_reason", ("alerts", "mute", "{fingerprint}", "--for", "1h"), 2,
         "the following arguments are required: --reason", ONE),
    Case("mute_unknown_fingerprint", ("alerts", "mute", "validate|nope|offline|x||", "--for",
                                      "1h", "--reason", "noisy"), 2,
         "found 'validate|nope|offline|x||', which is not among the", ONE),
    Case("unmute_unknown_fingerprint", ("alerts", "unmute", "not-a-fingerprint"), 2,
         "found 'not-a-fingerprint', which is not among the", ONE),
)
