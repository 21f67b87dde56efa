"""Who owns what a run found: read from the contract file the run was stored with.

A run keeps the paths of its project and contract files (``fg_runs.project`` / ``contract``).
The contract's ``owner_of(feature)`` names the team; a file that is gone or no longer loads
gives no owner (the page says "unknown") instead of failing the build. Each file is loaded
once per build.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["OwnerView", "Owners"]


@dataclass(frozen=True)
class OwnerView:
    """A team as a page shows it."""

    team: str
    channel: str | None = None
    slack: tuple[str, ...] = ()


class Owners:
    """Owner lookups over contract files, cached per file for one build."""

    def __init__(self) -> None:
        self._contracts: dict[str, object | None] = {}
        self._projects: dict[str, object | None] = {}

    def _contract(self, path: str | None):
        if not path:
            return None
        if path not in self._contracts:
            self._contracts[path] = _load(lambda: _load_contract(path))
        return self._contracts[path]

    def _project_contract(self, project: str | None, dataset: str):
        if not project or not dataset:
            return None
        if project not in self._projects:
            self._projects[project] = _load(lambda: _load_project(project))
        loaded = self._projects[project]
        if loaded is None:
            return None
        return next((c for c in loaded.contracts.values() if c.name == dataset), None)

    def owner_of(self, contract: str | None, project: str | None, dataset: str,
                 feature: str | None) -> OwnerView | None:
        """The owner of ``feature`` (the contract's owner when None); None when unknown.

        Args:
            contract: the run's contract file.
            project: the run's project file (its contract of ``dataset`` when ``contract``
                cannot be read).
            dataset: the run's dataset (contract name).
            feature: the finding's feature.
        """
        loaded = self._contract(contract) or self._project_contract(project, dataset)
        if loaded is None:
            return None
        owner = loaded.owner_of(feature)
        if owner is None:
            return None
        return OwnerView(owner.team, owner.channel, tuple(owner.slack))


def _load_contract(path: str):
    from contracts.loader import load_contract

    if not Path(path).is_file():
        return None
    return load_contract(path)


def _load_project(path: str):
    from funnelguard.project import load_project

    if not Path(path).is_file():
        return None
    return load_project(path)


def _load(loader):
    """``loader()``, or None when the file no longer loads (moved, edited into an error)."""
    from funnelguard.errors import FunnelguardError

    try:
        return loader()
    except (FunnelguardError, OSError, ValueError):
        return None
