"""Errors of the contracts package: a bad contract, and a warehouse that does not match it.

``ContractError`` means the contract's author made a mistake (exit 2); it lists every
:class:`Problem` at once, each with file:line and a hint. ``MissingDataError`` means the table or
a column the contract names is not in the warehouse (exit 2). Data that breaks a contract is not
an exception: it is a failing finding (exit 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from funnelguard.errors import InputError

__all__ = ["Problem", "ContractError", "MissingDataError"]


@dataclass(frozen=True)
class Problem:
    """One mistake in a contract file.

    Attributes:
        path: the contract file.
        line: 1-based line of the offending key or value (None when unknown).
        message: what was expected and what was found.
        hint: how to fix it (``did you mean `required`?``), or empty.
    """

    path: str
    line: int | None
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}" + (f" (hint: {self.hint})" if self.hint else "")


class ContractError(InputError):
    """A contract that cannot be loaded; ``problems`` lists every mistake found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: (p.path, p.line or 0, p.message)))
        files = sorted({p.path for p in self.problems})
        head = (f"contract {files[0]}" if len(files) == 1 else f"{len(files)} contracts")
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{head}: {len(self.problems)} problem(s):\n{lines}")


class MissingDataError(InputError):
    """The warehouse lacks a table or column that the contract names."""
