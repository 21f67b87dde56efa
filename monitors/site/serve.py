"""``make_server``: the built site over HTTP on 127.0.0.1 only (a preview, not a web server).

The site is static and readable from ``file://``; serving it is for links that need
``http://`` (an alert's ``$FUNNELGUARD_BASE_URL`` pointing at a workstation) and for the browser
tests. The server binds the loopback address, whatever the caller asks.
"""

from __future__ import annotations

import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["make_server", "HOST"]

HOST = "127.0.0.1"


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves files of the site folder; logs only failed requests."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(getattr(code, "value", code)).startswith(("4", "5")):
            super().log_request(code, size)


def make_server(out: str | Path, port: int = 0) -> ThreadingHTTPServer:
    """A server for the site in ``out`` on ``127.0.0.1:port`` (0: a free port), not started.

    Call ``serve_forever()`` (or run it in a thread); ``server_address[1]`` is the port.

    Raises:
        InputError: ``out`` has no ``index.html`` (the site was not built there).
        EnvironmentFailure: the port cannot be bound.
    """
    from funnelguard.errors import EnvironmentFailure, InputError

    root = Path(out).resolve()
    if not (root / "index.html").is_file():
        raise InputError(f"site serve: expected a built site in {root}, found no index.html "
                         "(run `funnelguard site build --out DIR` first)")
    handler = functools.partial(_QuietHandler, directory=str(root))
    try:
        return ThreadingHTTPServer((HOST, port), handler)
    except OSError as exc:
        raise EnvironmentFailure(f"site serve: cannot listen on {HOST}:{port}: {exc}") from exc
