"""A separate process that flushes alert outboxes: ``flush_child.py READY GO URL [URL ...]``.

Imports everything, touches READY, waits for GO to exist (so two children start flushing at
the same moment), then flushes each store in turn and prints one JSON line per store with the
outbox ids it delivered.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook  # noqa: F401 - warm up

from monitors.alerts import flush


def main(ready: str, go: str, *urls: str) -> int:
    Path(ready).touch()
    deadline = time.monotonic() + 120
    while not Path(go).exists():
        if time.monotonic() > deadline:
            return 4
        time.sleep(0.01)
    for url in urls:
        report = flush(url)
        print(json.dumps({"url": url, "sent": [d.outbox_id for d in report.sent],
                          "exit": report.exit_code}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
