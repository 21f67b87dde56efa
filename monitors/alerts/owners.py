"""Who owns a dataset's feature, and which fields hold personal data, from the contracts.

:class:`OwnerDirectory` asks ``contracts.load_contract(dataset)`` once per dataset (or uses the
contracts it was given, as tests do). A dataset without a contract — or before the contracts
loader exists — falls back to the configured default owner and to a fixed list of field names
that are personal data wherever they appear.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contracts.spec import Contract

__all__ = ["OwnerDirectory", "FALLBACK_PII_FIELDS"]

log = logging.getLogger(__name__)

# Treated as personal data even when no contract says so (defence in depth).
FALLBACK_PII_FIELDS = frozenset({
    "user_id", "request_id", "email", "phone", "ip", "ip_address", "name", "full_name",
    "address", "ssn", "date_of_birth",
})


def _load_from_contracts_package(dataset: str) -> Contract | None:
    try:
        from contracts import load_contract
    except ImportError:
        return None  # the contracts loader has not landed: owners fall back to the default
    try:
        return load_contract(dataset)
    except Exception as exc:  # noqa: BLE001 - an unknown dataset or a broken contract
        log.warning("no contract for dataset %r (%s); alerting the default owner", dataset,
                    type(exc).__name__)
        return None


class OwnerDirectory:
    """Owners and PII fields per dataset.

    Args:
        default_owner: the mention for a dataset without a contract.
        contracts: contracts by dataset name; when given, nothing else is loaded.
        loader: how to load a contract by name (default ``contracts.load_contract``).
    """

    def __init__(self, default_owner: str, contracts: Mapping[str, Contract] | None = None,
                 loader: Callable[[str], Contract | None] | None = None) -> None:
        self.default_owner = default_owner
        self._given = dict(contracts) if contracts is not None else None
        self._loader = loader or _load_from_contracts_package
        self._cache: dict[str, Contract | None] = {}

    def contract(self, dataset: str | None) -> Contract | None:
        """The dataset's contract, or ``None``."""
        if not dataset:
            return None
        if self._given is not None:
            return self._given.get(dataset)
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
        if field_name in FALLBACK_PII_FIELDS:
            return True
        contract = self.contract(dataset)
        if contract is None:
            return False
        return any(f.name == field_name and f.pii for f in contract.fields)
