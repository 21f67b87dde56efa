"""Errors that reach the edge, each with its exit code.

``InputError`` means the user's input is wrong (bad contract, missing table or column, bad flag):
exit 2. ``EnvironmentFailure`` means something around us failed (database unreachable, disk
full): exit 3, and the only kind an Airflow task retries. Each package subclasses these in its
own ``errors`` module. A failed check is not an exception: it is a failing finding (exit 1).
Every message says what was expected, what was found, and where.
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
