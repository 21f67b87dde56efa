"""A Slack incoming-webhook stand-in on 127.0.0.1, for the demo and the DAG tests.

It is a real HTTP server (a thread), so messages go through the Slack provider's webhook client
exactly as they would to Slack; it records each JSON body it receives and answers ``ok``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["SlackSink", "message_text"]


def message_text(body: dict[str, Any]) -> str:
    """The readable text of a webhook body: ``text`` plus the text of its blocks."""
    parts = [body.get("text") or ""]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                if isinstance(value, (dict, list)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(body.get("blocks") or [])
    walk(body.get("attachments") or [])
    return "\n".join(p for p in parts if p)


class SlackSink:
    """``with SlackSink() as sink: ... sink.url ... sink.received``.

    Attributes:
        url: the webhook URL to put in the ``funnelguard_slack`` connection's password.
        received: the JSON bodies posted so far, in order.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        sink = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"text": raw.decode("utf-8", "replace")}
                sink.received.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://{host}:{self._server.server_address[1]}/services/T000/B000/demo"

    def texts(self) -> list[str]:
        """The readable text of every message received."""
        return [message_text(b) for b in self.received]

    def __enter__(self) -> SlackSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
