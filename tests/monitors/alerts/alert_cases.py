"""Helpers for the alerts tests: a scriptable Slack webhook on 127.0.0.1, a movable clock, and
findings shaped like the checks'."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from funnelguard.findings import Finding, RunResult

SECRET = "T0FAKE/B0FAKE/s3cr3tW3bh00kT0ken"
T0 = dt.datetime(2026, 10, 25, 6, 0, tzinfo=dt.UTC)


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeSlack:
    """A webhook endpoint that records every POST and answers from a script (then 200 ok)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.arrivals: list[float] = []
        self.script: deque[Reply] = deque()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with fake._lock:
                    fake.requests.append(json.loads(body))
                    fake.arrivals.append(time.monotonic())
                    reply = fake.script.popleft() if fake.script else Reply()
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body.encode()
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/services/{SECRET}"

    def then(self, *replies: Reply) -> FakeSlack:
        self.script.extend(replies)
        return self

    def alert_ids(self) -> list[int]:
        """The outbox id each received message names in its context block (``alert #N``)."""
        ids = []
        for body in self.requests:
            text = json.dumps(body)
            start = text.index("alert #") + len("alert #")
            ids.append(int(text[start:].split(" ", 1)[0].rstrip('"\\,')))
        return ids

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def connection_json(url: str) -> str:
    return json.dumps({"conn_type": "slackwebhook", "password": url})


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def default_rate(passed: bool = False, *, feature: str = "approval_odds",
                 segment: str | None = "device_type=android", value: float = 0.382,
                 dataset: str = "ranking_features") -> Finding:
    return Finding(
        check="default_rate", passed=passed, severity="error", feature=feature,
        environment="online", segment=segment, value=value, threshold=0.05, count=1146,
        message=f"{feature} default rate online {value * 100:.1f} % vs offline 0.4 %",
        examples=(0.0, 0.0), dataset=dataset)


def validate_run(*findings: Finding, partition: str = "2026-10-24",
                 command: str = "validate") -> RunResult:
    return RunResult(command=command, partition=partition, findings=findings,
                     dataset="ranking_features", environment="online")
