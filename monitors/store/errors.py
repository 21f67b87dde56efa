"""Errors of the results store: every failure to open or write it is an environment failure.

:func:`store_failure` turns what the database driver, SQLAlchemy, Alembic or the file system
raised into one :class:`StoreUnavailable` line that names the store (password hidden), says
what was expected and what was found — unreachable, read-only, not a SQLite file, corrupt, a
directory, the connection lost in the middle of a write — so the edge exits 3 (a DAG task
retries) and keeps the run in the local spool (:mod:`monitors.store.spool`).
:func:`is_transient` says which errors a bounded retry of the same transaction can fix (a lock
held by a concurrent writer, a serialization failure, a deadlock).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import sqlalchemy as sa

from funnelguard.errors import EnvironmentFailure

__all__ = ["StoreUnavailable", "store_failure", "is_transient", "shown_url"]

# PostgreSQL SQLSTATEs a retry of the whole transaction can fix.
_RETRYABLE_SQLSTATES = {"40001": "serialization failure", "40P01": "deadlock",
                        "55P03": "lock not available"}
_SQLITE_BUSY = ("database is locked", "database table is locked", "database schema has changed")


class StoreUnavailable(EnvironmentFailure):
    """The results store could not be opened or written (exit 3).

    Attributes:
        store: the store's URL, password hidden.
    """

    def __init__(self, message: str, store: str) -> None:
        super().__init__(message)
        self.store = store


def shown_url(url: str | sa.engine.URL) -> str:
    """``url`` as it may be printed or written to a file: the password hidden."""
    try:
        parsed = url if isinstance(url, sa.engine.URL) else sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):  # not a URL: hide what stands for a password
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))
    return parsed.render_as_string(hide_password=True)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same transaction can succeed: a PostgreSQL serialization failure,
    deadlock or lock timeout, a key inserted by a concurrent writer (a retry sees and replaces
    it), SQLite's schema changed under the statement."""
    if isinstance(exc, sa.exc.IntegrityError):
        return True
    if not isinstance(exc, sa.exc.DBAPIError) or exc.connection_invalidated:
        return False
    if _sqlstate(exc) in _RETRYABLE_SQLSTATES:
        return True
    # SQLite's "database is locked" comes after the busy timeout has already waited: no retry.
    return "database schema has changed" in _first_line(exc).lower()


def _sqlite_path(url: sa.engine.URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    database = url.database
    if database.startswith("file:"):
        database = database[len("file:"):].split("?", 1)[0]
    return Path(database)


def _found(url: sa.engine.URL, exc: BaseException, writing: bool) -> str:
    """What was found instead of a usable store, in words."""
    detail = _first_line(exc)
    low = detail.lower()
    path = _sqlite_path(url)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"a file-system error{where}: {exc.strerror or detail}"
    if path is not None:
        if path.is_dir():
            return "a directory"
        if "readonly" in low or "read-only" in low or (
                "i/o error" in low and path.exists() and not os.access(path, os.W_OK)):
            return "a read-only database"
        if "i/o error" in low and not os.access(path.parent, os.W_OK):
            return f"a read-only folder {path.parent} (no room for its journal: {detail})"
        if "not a database" in low:
            return "a file that is not a SQLite database"
        if "malformed" in low or "corrupt" in low:
            return f"a corrupt SQLite database ({detail})"
        if "unable to open" in low:
            return f"a file it cannot open or create ({detail})"
        if any(m in low for m in _SQLITE_BUSY):
            return f"it locked by another writer past the busy timeout ({detail})"
    if type(exc).__name__ == "CommandError":  # alembic: a revision this code does not know
        return f"a schema this funnelguard cannot migrate ({detail})"
    if isinstance(exc, sa.exc.DBAPIError) and (exc.connection_invalidated or writing) and (
            "closed" in low or "terminat" in low or "lost" in low or "shutdown" in low
            or "consuming input failed" in low):
        return f"the connection lost in the middle of the write ({detail})"
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return f"it unreachable ({detail})"
    return f"{type(getattr(exc, 'orig', None) or exc).__name__}: {detail}"


def store_failure(url: str | sa.engine.URL, exc: BaseException, *, writing: bool,
                  what: str = "") -> StoreUnavailable:
    """The one-line environment failure for ``exc`` raised while opening or writing the store.

    Args:
        url: the store's URL (the password is hidden in the message).
        exc: what SQLAlchemy, the driver, Alembic or the file system raised.
        writing: True inside a write transaction (a dropped connection is then "lost in the
            middle of the write"), False while opening and migrating.
        what: what was being written, e.g. ``run validate ranking_features online 2026-10-24``.
    """
    parsed = url if isinstance(url, sa.engine.URL) else sa.engine.make_url(url)
    shown = shown_url(parsed)
    expected = ("a writable results store" if writing
                else "a results store it can open and migrate")
    doing = f" while writing {what}" if what else ""
    return StoreUnavailable(
        f"results store {shown}: expected {expected}, found {_found(parsed, exc, writing)}"
        f"{doing}", shown)
