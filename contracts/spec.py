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
    "FEATURE_ROLES",
    "is_default_value",
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


# Roles of the properties the model reads (docs/contracts.md).
FEATURE_ROLES: tuple[str, ...] = ("id", "feature", "category")


def is_default_value(spec: FieldContract, value: Any) -> bool:
    """Whether ``value`` is ``spec``'s default: equal to it (numbers compared as floats).

    Validation, the default-rate monitor and the forensic bundle all use this rule (their
    vectorised forms compare the column with the same default in the same way).
    """
    default = spec.default
    if default is None or value is None:
        return False
    if spec.is_numeric:
        try:
            return float(value) == float(default)
        except (TypeError, ValueError):
            return False
    return str(value) == str(default)


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
    """A label's maturity: the outcome is final ``days`` after the timestamp ``counts_from``.

    ``counts_from`` names a timestamp of the impressions contract; empty when the contract
    leaves it out, in which case the project resolves it to the impressions contract's only
    timestamp (``funnelguard.project.load_project``).
    """

    task: str
    days: float
    counts_from: str = ""


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
        drift_trend: ``driftTrend``: units per day the feature grows by with time (an age, a
            counter), or ``monotone`` (slope estimated from the window); None: no trend.
        numeric_tolerance: absolute tolerance for offline/online equality in replay skew.
        relative_tolerance: relative tolerance for the same (max of the two applies).
        checks: per check name, the policy overriding the contract default.
        owner: the owning team when it is not the contract's (e.g. approval_odds).
        task: for label, loaded-at timestamp and score fields, the funnel stage.
        primary_key, primary_key_position: ODCS ``primaryKey`` (the key all tables join on).
        partitioned, partition_position: ODCS ``partitioned`` (the partition column).
        classification: the ODCS classification as written (``pii``, ``restricted`` ...).
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
    drift_trend: float | str | None = None
    numeric_tolerance: float | None = None
    relative_tolerance: float | None = None
    checks: Mapping[str, CheckPolicy] = field(default_factory=dict)
    owner: Owner | None = None
    task: str | None = None
    description: str = ""
    primary_key: bool = False
    primary_key_position: int | None = None
    partitioned: bool = False
    partition_position: int | None = None
    classification: str | None = None

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
        """The task's maturity window; the packaged defaults only for the packaged stage names."""
        window = self.maturity.get(task)
        if window is not None:
            return window
        if task in DEFAULT_MATURITY_DAYS and not self.maturity:
            return MaturityWindow(task, DEFAULT_MATURITY_DAYS[task])
        raise KeyError(f"contract {self.name} ({self.path}) has no maturity window for task "
                       f"{task!r}; its stages are {list(self.maturity)}")

    # -- the catalogue: what the contract says about its table's shape ------------------------

    @property
    def tasks(self) -> tuple[str, ...]:
        """The funnel stages, in funnel order: the order of ``maturityWindows``."""
        return tuple(self.maturity)

    @property
    def partition_column(self) -> str:
        """The property with ``partitioned: true`` (the first by ``partitionKeyPosition``)."""
        cols = [f for f in self.fields if f.partitioned]
        if not cols:
            raise KeyError(f"contract {self.name} ({self.path}) has no property with "
                           "`partitioned: true`")
        return sorted(cols, key=lambda f: f.partition_position or 0)[0].name

    @property
    def key_column(self) -> str:
        """The property with ``primaryKey: true`` (the first by ``primaryKeyPosition``)."""
        cols = [f for f in self.fields if f.primary_key]
        if not cols:
            raise KeyError(f"contract {self.name} ({self.path}) has no property with "
                           "`primaryKey: true`")
        return sorted(cols, key=lambda f: f.primary_key_position or 0)[0].name

    def timestamp_columns(self, environment: str | None = None) -> tuple[str, ...]:
        """Properties of logicalType ``timestamp`` (read back as UTC)."""
        fields = self.fields if environment is None else self.fields_for(environment)
        return tuple(f.name for f in fields if f.logical_type == "timestamp")

    def feature_fields(self, environment: str | None = None) -> tuple[FieldContract, ...]:
        """The model's inputs: properties with role ``feature``, ``id`` or ``category``."""
        fields = self.fields if environment is None else self.fields_for(environment)
        return tuple(f for f in fields if f.role in FEATURE_ROLES)

    def task_columns(self, role: str) -> dict[str, str]:
        """Task -> column of the properties with this role and a ``task`` (in file order)."""
        return {f.task: f.name for f in self.fields if f.role == role and f.task}

    @property
    def score_columns(self) -> dict[str, str]:
        """Task -> the logged production score column (role ``score``)."""
        return self.task_columns("score")

    @property
    def label_columns(self) -> dict[str, str]:
        """Task -> the outcome's event-time column (role ``label``)."""
        return self.task_columns("label")

    @property
    def loaded_at_columns(self) -> dict[str, str]:
        """Task -> when the outcome reached the warehouse (role ``timestamp`` with a task)."""
        return self.task_columns("timestamp")

    def is_default(self, field_name: str, value: Any) -> bool:
        """The one definition of "this value is the field's default" (sentinel)."""
        return is_default_value(self.field(field_name), value)
