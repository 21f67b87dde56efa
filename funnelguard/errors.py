"""Errors that reach the edge, each with its exit code.

``InputError`` means the user's input is wrong (bad contract, missing table or column, bad flag):
exit 2. ``EnvironmentFailure`` means something around us failed (database unreachable, disk
full): exit 3, and the only kind an Airflow task retries. Each package subclasses these in its
own ``errors`` module. A failed check is not an exception: it is a failing finding (exit 1).
Every message says what was expected, what was found, and where.

:func:`database_connect_error` is the one rule for a database that cannot be connected to: a
server that answered and refused who or what we asked for (wrong password, unknown role or
database, no ``pg_hba.conf`` entry, a malformed option) is :class:`ConnectionRejected`, exit 2
(a retry cannot fix it); no answer, a timeout, a server starting up or shutting down, too many
connections, an unknown host name are :class:`EnvironmentFailure`, exit 3 (docs/operations.md).
"""

from __future__ import annotations

__all__ = [
    "EXIT_PASS",
    "EXIT_FAIL",
    "EXIT_INPUT",
    "EXIT_ENVIRONMENT",
    "FunnelguardError",
    "InputError",
    "EnvironmentFailure",
    "ConnectionRejected",
    "database_connect_error",
    "REJECTED_SQLSTATES",
]

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_INPUT = 2
EXIT_ENVIRONMENT = 3


class FunnelguardError(Exception):
    """Base of the errors the CLI turns into an exit code and a JSON ``error``."""

    kind: str = "input"
    exit_code: int = EXIT_INPUT


class InputError(FunnelguardError):
    """Bad input or usage: what was expected, what was found, where. Exit 2."""

    kind = "input"
    exit_code = EXIT_INPUT


class EnvironmentFailure(FunnelguardError):
    """The environment failed (database unreachable, ...). Exit 3; retryable."""

    kind = "environment"
    exit_code = EXIT_ENVIRONMENT


class ConnectionRejected(InputError):
    """The database answered and refused the connection's user, password, database or options.

    A retry cannot fix it (exit 2): correct the URL or the Airflow connection.
    """


# SQLSTATEs of a server that refuses the connection itself: PostgreSQL class 28 (invalid
# authorization: 28000 unknown role / no pg_hba entry / not permitted to log in, 28P01 wrong
# password), 3D000 unknown database, 42501 no CONNECT privilege. psycopg 3 does not carry the
# SQLSTATE of a failed *connection* (libpq keeps no result for it), so the server's English
# message is matched as well; a driver that does carry one (psycopg2's ``pgcode``) is read first.
REJECTED_SQLSTATES = frozenset({"28000", "28P01", "3D000", "42501"})
_REJECTED_TEXTS = (
    "password authentication failed",  # 28P01
    "authentication failed for user",  # peer, ident, ldap, scram ... (28000 / 28P01)
    "no pg_hba.conf entry",  # 28000
    "pg_hba.conf rejects connection",  # 28000
    "is not permitted to log in",  # 28000
    "permission denied for database",  # 42501
    "no password supplied",  # the server asks for a password, the URL has none
    "server does not support ssl, but ssl was required",
    "invalid port number",  # libpq refuses the URL's options before connecting
    "invalid connection option",
    "access denied for user",  # MySQL / MariaDB 1045
    "unknown database",  # MySQL / MariaDB 1049
)


def _first_line(orig: BaseException) -> str:
    lines = [" ".join(line.split()) for line in str(orig).splitlines()]
    return next((line for line in lines if line), type(orig).__name__)


def _sqlstate(orig: BaseException) -> str | None:
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    diag = getattr(orig, "diag", None)
    return code or getattr(diag, "sqlstate", None)


def _rejected(orig: BaseException, text: str) -> bool:
    if _sqlstate(orig) in REJECTED_SQLSTATES:
        return True
    low = text.lower()
    if any(t in low for t in _REJECTED_TEXTS):
        return True
    # 28000 'role "x" does not exist', 3D000 'database "x" does not exist', libpq's
    # 'invalid sslmode value: "bogus"' (any option with a value libpq refuses)
    return ((" does not exist" in low and ('role "' in low or 'database "' in low))
            or ("invalid " in low and ' value: "' in low))


def database_connect_error(exc: BaseException, url: str, *,
                           what: str = "database") -> FunnelguardError:
    """The error to raise for a failed first connection to a database.

    Args:
        exc: what the driver raised (a SQLAlchemy ``DBAPIError``, or the driver's own error).
        url: the URL connected to, password hidden
            (``URL.render_as_string(hide_password=True)``).
        what: what the database is, for the message (``database``, ``results store``).

    Returns:
        :class:`ConnectionRejected` (exit 2) when the server refused the credentials, the
        database or an option; else :class:`EnvironmentFailure` (exit 3, retried).
    """
    orig = getattr(exc, "orig", None) or exc
    text = _first_line(orig)
    if _rejected(orig, text):
        code = _sqlstate(orig)
        return ConnectionRejected(
            f"{what} {url}: expected a user, password, database and options it accepts; found "
            f"the connection rejected{f' (SQLSTATE {code})' if code else ''}: {text}. A retry "
            f"cannot fix this: correct the URL (or the Airflow connection it came from)")
    return EnvironmentFailure(f"{what} unreachable at {url}: {text}")
