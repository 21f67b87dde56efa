"""What a row of the reliability battery's case tables is, and its pytest params.

A :class:`Case` is one bad input tried through the CLI: an argv template, the exit code it must
give (2 bad input, 3 environment, 1 only for a real failed check), a distinctive substring of
the message, the projects it is tried on and, where the product gets it wrong today, the strict
``xfail`` reason naming what is wrong and where. A :class:`Corruption` is a copied warehouse
broken in one way (SQL run on the copy, never on a session fixture's file) and the command
tried on it.

Templates are ``str.format`` fields filled from the project's
:class:`tests.reliability.harness.Ctx` and the test's own files (``{file}`` a regular file,
``{dir}`` an empty folder, ``{tmp}`` the test's folder ...); the token ``{where}`` expands to the
flags that select the project (``--warehouse W`` for the packaged simulator project,
``--project P`` for the marketplace) and ``{wh}`` to ``--warehouse W`` alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Case", "Corruption", "BOTH", "ONE", "MKT", "V", "DATE", "params",
           "corruption_params"]

BOTH = ("sim", "mkt")
ONE = ("sim",)  # the input does not depend on the project
MKT = ("mkt",)  # nor here, and the marketplace's smaller warehouse is faster to profile


@dataclass(frozen=True)
class Case:
    """One bad input through the CLI.

    Attributes:
        id: names the input.
        argv: the command line template (``{where}`` / ``{wh}`` expand to flags).
        code: the exit code it must give (a tuple where either is right, said in ``why``).
        message: a distinctive substring of stdout + stderr (a template too).
        projects: the projects it is tried on.
        xfail: why it fails today (what and where), per project or for all (a str).
        env: environment variables set for the run (templates).
        subprocess: also run through the real console script (no hang, no traceback).
    """

    id: str
    argv: tuple[str, ...]
    code: int | tuple[int, ...]
    message: str
    projects: tuple[str, ...] = BOTH
    xfail: str | dict[str, str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    subprocess: bool = False

    def xfail_for(self, project: str) -> str | None:
        if isinstance(self.xfail, dict):
            return self.xfail.get(project)
        return self.xfail


V = ("validate", "{where}")
DATE = ("--date", "{day}")


def params(cases: Sequence[Case], *, only_subprocess: bool = False):
    """pytest params (case, project) with their strict xfail marks."""
    import pytest

    out = []
    for case in cases:
        if only_subprocess and not case.subprocess:
            continue
        for project in case.projects:
            reason = case.xfail_for(project)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(case, project, marks=marks, id=f"{case.id}-{project}"))
    return out


@dataclass(frozen=True)
class Corruption:
    """One way to break a copy of a project's warehouse, and the command tried on it.

    ``sql`` statements are templates run on the copy; three are special: ``!nullable TABLE COL``
    (rebuild TABLE with COL nullable, its declared types kept), ``!ctas TABLE`` (rebuild TABLE
    by CREATE TABLE AS SELECT, which loses the declared types), ``!garbage`` / ``!zero`` (the
    file replaced by text / emptied).
    """

    id: str
    sql: tuple[str, ...]
    argv: tuple[str, ...]
    code: int | tuple[int, ...]
    message: str
    projects: tuple[str, ...] = BOTH
    xfail: str | dict[str, str] | None = None
    why: str = ""

    xfail_for = Case.xfail_for


def corruption_params(corruptions: Sequence[Corruption]):
    """pytest params (corruption, project) with their strict xfail marks."""
    import pytest

    out = []
    for c in corruptions:
        for project in c.projects:
            reason = c.xfail_for(project)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(c, project, marks=marks, id=f"{c.id}-{project}"))
    return out
