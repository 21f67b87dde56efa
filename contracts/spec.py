"""What a loaded contract *is*: typed, frozen, independent of YAML and of Pandera.

The loader (``contracts.loader``) turns an ODCS v3 document plus our ``customProperties``
extensions into a :class:`Contract`; the compiler turns it into Pandera schemas; monitors, the
gate, alerts and the model read it. Nothing here touches a file or a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Environment",
    "Severity",
    "CheckPolicy",
    "Owner",
    "MaturityWindow",
    "FieldContract",
    "Contract",
    "DEFAULT_MATURITY_DAYS",
    "CHECK_NAMES",
    "PII_CLASSIFICATIONS",
]

Environment = Literal["offline", "online"]
Severity = Literal["error", "warning"]

DEFAULT_MATURITY_DAYS: Mapping[str, float] = {
    "click": 1.0, "application": 3.0, "conversion": 14.0, "approval": 14.0,
}

# The validation checks, by their documented names (docs/contracts.md); part of the interface.
CHECK_NAMES: tuple[str, ...] = (
    "schema", "dtype", "not_null", "unique", "range", "allowed_values", "finite", "default_rate",
)

# ODCS ``classification`` values that mark personal data: examples of it are redacted.
PII_CLASSIFICATIONS: frozenset[str] = frozenset({"pii", "restricted", "confidential", "sensitive"})


@dataclass(frozen=True)
class CheckPolicy:
    """How strictly one check is applied: the failing fraction tolerated and the severity."""

    tolerance: float = 0.0
    severity: Severity = "error"


@dataclass(frozen=True)
class Owner:
    """A team and the Slack ids to @mention (``<!subteam^S123>`` or ``<@U123>`` forms)."""

    team: str
    slack: tuple[str, ...] = ()
    channel: str | None = None

    @property
    def mention(self) -> str:
        return " ".join(self.slack) if self.slack else self.team


@dataclass(frozen=True)
class MaturityWindow:
    """A label's maturity: the outcome is final ``days`` after the timestamp ``counts_from``."""

    task: str
    days: float
    counts_from: str = "event_ts"


@dataclass(frozen=True)
class FieldContract:
    """One property of a contract, with our extensions resolved.

    Attributes:
        name: column name (a safe SQL identifier).
        logical_type: ODCS logicalType: ``integer``, ``number``, ``string``, ``boolean``,
            ``date``, ``timestamp``.
        role: ``key``, ``id`` (high-cardinality id), ``feature``, ``category`` (a categorical
            feature), ``score``, ``label``, ``timestamp`` or ``meta``.
        required: not nullable.
        unique: values unique within a partition (primary keys are unique).
        minimum, maximum: inclusive legitimate range; the default is not out of range.
        allowed_values: allowed values of a categorical (the default excluded).
        pii: classification marks personal data; examples are redacted.
        default: the sentinel a pipeline writes when it has no value.
        max_default_rate: per environment, the largest tolerated share of defaults.
        environments: where the field exists.
        drift_method, drift_threshold: Evidently stattest overrides (None: Evidently's choice).
        numeric_tolerance: absolute tolerance for offline/online equality in replay skew.
        relative_tolerance: relative tolerance for the same (max of the two applies).
        checks: per check name, the policy overriding the contract default.
        owner: the owning team when it is not the contract's (e.g. approval_odds).
        task: for label fields, the model task.
    """

    name: str
    logical_type: str
    role: str = "feature"
    required: bool = False
    unique: bool = False
    minimum: float | None = None
    maximum: float | None = None
    allowed_values: tuple[Any, ...] | None = None
    pii: bool = False
    default: Any = None
    max_default_rate: Mapping[str, float] = field(default_factory=dict)
    environments: tuple[str, ...] = ("offline", "online")
    drift_method: str | None = None
    drift_threshold: float | None = None
    numeric_tolerance: float | None = None
    relative_tolerance: float | None = None
    checks: Mapping[str, CheckPolicy] = field(default_factory=dict)
    owner: Owner | None = None
    task: str | None = None
    description: str = ""

    @property
    def is_numeric(self) -> bool:
        return self.logical_type in ("integer", "number")

    def policy(self, check: str, fallback: CheckPolicy) -> CheckPolicy:
        return self.checks.get(check, fallback)


@dataclass(frozen=True)
class Contract:
    """A dataset's contract.

    Attributes:
        name: dataset name (``ranking_features``, ``impressions``, ``labels``).
        path: the file it was loaded from.
        version: the contract's version string.
        owner: the owning team.
        tables: environment -> physical table (``offline`` -> ``offline_features``, ...).
        fields: every property, in file order.
        default_policy: the check policy when a field names none.
        maturity: per task, the label maturity window (labels contract).
        freshness_hours: SLA: the partition must land within this many hours after its day.
        segments: columns used to segment monitors (``device_type``, ``item_type``).
    """

    name: str
    path: str
    version: str
    owner: Owner
    tables: Mapping[str, str]
    fields: tuple[FieldContract, ...]
    default_policy: CheckPolicy = CheckPolicy()
    maturity: Mapping[str, MaturityWindow] = field(default_factory=dict)
    freshness_hours: float | None = None
    segments: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def table(self, environment: str) -> str:
        try:
            return self.tables[environment]
        except KeyError:
            raise KeyError(
                f"contract {self.name} ({self.path}) has no table for environment "
                f"{environment!r}; it has {sorted(self.tables)}") from None

    def fields_for(self, environment: str) -> tuple[FieldContract, ...]:
        return tuple(f for f in self.fields if environment in f.environments)

    def field(self, name: str) -> FieldContract:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"contract {self.name} has no field {name!r}")

    def owner_of(self, field_name: str | None) -> Owner:
        """The team to alert for a problem with ``field_name`` (the contract's by default)."""
        if field_name is not None:
            for f in self.fields:
                if f.name == field_name and f.owner is not None:
                    return f.owner
        return self.owner

    def maturity_window(self, task: str) -> MaturityWindow:
        from contracts.spec import DEFAULT_MATURITY_DAYS

        return self.maturity.get(task) or MaturityWindow(task, DEFAULT_MATURITY_DAYS[task])
