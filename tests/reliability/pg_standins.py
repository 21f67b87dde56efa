"""Stand-in PostgreSQL servers for the exit-code tests, and the password they are given.

:class:`FatalPostgres` answers every startup with one ``ErrorResponse`` (SQLSTATE and text as a
real server sends them) for the states that cannot be produced on demand; a
:class:`PasswordCluster` names a throwaway cluster with scram-sha-256 on 127.0.0.1 (started by
``conftest.py``'s ``password_pg``). Every URL carries :data:`SECRET`, which no message may show
(:func:`assert_clean`).
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass

__all__ = ["SECRET", "FatalPostgres", "PasswordCluster", "assert_clean", "free_port"]

SECRET = "s3cr3t-R4-pw"


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound once, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_clean(message: str) -> None:
    """One line, no traceback, never the password."""
    assert SECRET not in message and "Traceback" not in message
    assert "\n" not in message


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


class FatalPostgres:
    """A TCP server on 127.0.0.1 that refuses SSL/GSS, reads the startup message and answers
    with one FATAL ``ErrorResponse`` carrying ``sqlstate`` and ``message`` (protocol 3.0)."""

    def __init__(self, sqlstate: str, message: str) -> None:
        self.sqlstate, self.message = sqlstate, message
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.startups = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self._answer(conn)
                except (OSError, ConnectionError):
                    pass

    def _answer(self, conn: socket.socket) -> None:
        while True:
            length, code = struct.unpack("!ii", _recv_exact(conn, 8))
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: not supported
                conn.sendall(b"N")
                continue
            _recv_exact(conn, length - 8)  # StartupMessage: user, database ...
            self.startups += 1
            break
        fields = (b"SFATAL\0VFATAL\0C" + self.sqlstate.encode() + b"\0M"
                  + self.message.encode() + b"\0\0")
        conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)

    def url(self, user: str = "fg_reader") -> str:
        return f"postgresql+psycopg://{user}:{SECRET}@127.0.0.1:{self.port}/analytics"

    def close(self) -> None:
        self.sock.close()


@dataclass
class PasswordCluster:
    """A cluster on 127.0.0.1:``port`` where ``user`` logs in with ``password`` only."""

    port: int
    user: str = "fg_reader"
    password: str = "right-R4-pw"

    def url(self, password: str) -> str:
        return f"postgresql+psycopg://{self.user}:{password}@127.0.0.1:{self.port}/postgres"
