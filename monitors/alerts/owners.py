"""Who owns a dataset's field, which fields hold personal data, and which stages a finding
affects — from the contracts the run used.

Every queued alert carries the project file and the contract file of the run that queued it
(``fg_alert_outbox.project`` / ``.contract``). :meth:`OwnerDirectory.scoped` gives the view for
one alert: its dataset's contract is that contract file, else the project's contract of that
name; the stages are the project's (the labels contract's ``maturityWindows``). A row stored
before the store carried this (both NULL) is read as it always was: the packaged contract of
the dataset's name and the packaged project's stages. A dataset with no contract anywhere
falls back to the configured default owner; a fixed list of field names counts as personal
data wherever it appears (defence in depth, on top of the contracts' classification).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

# The one redaction policy decides what is personal; FALLBACK_PII_FIELDS is re-exported here.
from funnelguard.redaction import FALLBACK_PII_FIELDS, is_personal

if TYPE_CHECKING:
    from contracts.spec import Contract
    from funnelguard.project import Project

__all__ = ["OwnerDirectory", "FALLBACK_PII_FIELDS"]

log = logging.getLogger(__name__)

def _load_from_contracts_package(dataset: str) -> Contract | None:
    """A packaged contract by name: how rows stored without a project are addressed."""
    try:
        from contracts import load_contract
    except ImportError:
        return None
    try:
        return load_contract(dataset)
    except Exception as exc:  # noqa: BLE001 - an unknown dataset or a broken contract
        log.warning("no contract for dataset %r (%s); alerting the default owner", dataset,
                    type(exc).__name__)
        return None


@dataclass
class _Files:
    """Contracts and projects loaded by file, once per directory (shared by its scopes)."""

    contracts: dict[str, Contract | None] = field(default_factory=dict)
    projects: dict[str | None, Project | None] = field(default_factory=dict)

    def contract(self, path: str) -> Contract | None:
        if path not in self.contracts:
            from contracts.loader import load_contract

            try:
                self.contracts[path] = load_contract(path)
            except Exception as exc:  # noqa: BLE001 - a moved or broken file: fall back
                log.warning("cannot load contract %s (%s); using the project's contracts",
                            path, type(exc).__name__)
                self.contracts[path] = None
        return self.contracts[path]

    def project(self, path: str | None) -> Project | None:
        """The project at ``path``; None: the packaged one."""
        if path not in self.projects:
            from funnelguard.project import PACKAGED_PROJECT, load_project

            try:
                self.projects[path] = load_project(path or PACKAGED_PROJECT)
            except Exception as exc:  # noqa: BLE001 - a moved or broken project file
                log.warning("cannot load project %s (%s); alerting the default owner",
                            path or PACKAGED_PROJECT, type(exc).__name__)
                self.projects[path] = None
        return self.projects[path]


class OwnerDirectory:
    """Owners, PII fields and affected stages per dataset.

    Args:
        default_owner: the mention for a dataset without a contract.
        contracts: contracts by dataset name; when given, no contract is loaded (tests).
        loader: how to load a contract by name for alerts without a project (default: the
            packaged contracts, ``contracts.load_contract``).
        stages: the funnel stages when given (default: the alert's project's).
    """

    def __init__(self, default_owner: str, contracts: Mapping[str, Contract] | None = None,
                 loader: Callable[[str], Contract | None] | None = None, *,
                 stages: Iterable[str] | None = None) -> None:
        self.default_owner = default_owner
        self._given = dict(contracts) if contracts is not None else None
        self._loader = loader or _load_from_contracts_package
        self._stages = tuple(stages) if stages is not None else None
        self._cache: dict[str, Contract | None] = {}
        self._files = _Files()
        self._project_path: str | None = None
        self._contract_path: str | None = None

    def scoped(self, project: str | None, contract: str | None) -> OwnerDirectory:
        """The view for one queued alert: the project file and contract file its run used.

        Args:
            project: the run's project file (None: stored before the store carried it).
            contract: the contract file of the alert's dataset, when known.
        """
        view = OwnerDirectory(self.default_owner, self._given, self._loader, stages=self._stages)
        view._cache, view._files = self._cache, self._files
        view._project_path, view._contract_path = project, contract
        return view

    @property
    def project(self) -> Project | None:
        """The alert's project (the packaged one for alerts stored without one)."""
        return self._files.project(self._project_path)

    @property
    def stages(self) -> tuple[str, ...]:
        """The funnel stages, in funnel order."""
        if self._stages is not None:
            return self._stages
        project = self.project
        return project.tasks if project is not None else ()

    def contract(self, dataset: str | None) -> Contract | None:
        """The dataset's contract, or ``None``."""
        if not dataset:
            return None
        if self._given is not None:
            return self._given.get(dataset)
        if self._contract_path:
            carried = self._files.contract(self._contract_path)
            if carried is not None and carried.name == dataset:
                return carried
        if self._project_path:
            project = self.project
            found = next((c for c in project.contracts.values() if c.name == dataset),
                         None) if project is not None else None
            if found is None:
                log.info("dataset %r is not a contract of project %s; alerting the default "
                         "owner", dataset, self._project_path)
            return found
        if dataset not in self._cache:
            self._cache[dataset] = self._loader(dataset)
        return self._cache[dataset]

    def mention(self, dataset: str | None, feature: str | None) -> str:
        """The Slack mention of the team owning ``feature`` of ``dataset``."""
        contract = self.contract(dataset)
        if contract is None:
            return self.default_owner
        return contract.owner_of(feature).mention

    def mentions(self, pairs: Iterable[tuple[str | None, str | None]]) -> list[str]:
        """Distinct mentions for (dataset, feature) pairs, in first-seen order."""
        return list(dict.fromkeys(self.mention(d, f) for d, f in pairs))

    def is_pii(self, dataset: str | None, field_name: str | None) -> bool:
        """Whether ``field_name`` holds personal data (contract ``pii`` or the fallback list)."""
        if not field_name:
            return False
        return is_personal(self.contract(dataset), field_name)

    def is_model_input(self, dataset: str | None, field_name: str | None) -> bool:
        """Whether ``field_name`` feeds the model (role feature, id or category), so that a
        problem with it reaches every stage through the shared trunk."""
        if not field_name:
            return False
        contracts = [self.contract(dataset)]
        if self._given is None and self.project is not None:
            contracts.append(self.project.features)
        return any(field_name in {f.name for f in c.feature_fields()}
                   for c in contracts if c is not None)
