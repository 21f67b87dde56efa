"""The one result shape every check and command produces.

A :class:`Finding` is one check's verdict on one (feature, task, environment, segment); a
:class:`RunResult` is one command's outcome. ``RunResult.to_json()`` is the documented
``--json`` document (docs/results.md)::

    {"command": str, "partition": str|null, "status": "pass"|"fail"|"error",
     "findings": [...], "error": null|{"kind": "input"|"environment", "message": str}}

``status`` is ``fail`` exactly when an error-severity finding has ``passed: false``; warnings
never fail a run. Extra keys (``dataset``, ``environment``, ``artifacts`` and a command's ``details``) are
extensions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from funnelguard.redaction import truncate_example

__all__ = [
    "SEVERITIES",
    "ENVIRONMENTS",
    "TRIAGE_VERDICTS",
    "Finding",
    "Metric",
    "ErrorInfo",
    "RunResult",
    "status_of",
]

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")
ENVIRONMENTS: tuple[str, ...] = ("offline", "online", "online_vs_offline")
TRIAGE_VERDICTS: tuple[str, ...] = ("data", "numerics", "optimization", "task")
MAX_EXAMPLES = 5


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars to Python, non-finite floats to strings ('nan', 'inf')."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            value = str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    return str(value)


@dataclass(frozen=True)
class Finding:
    """One check's verdict. Fields that do not apply are ``None``.

    Attributes:
        check: a documented check name (docs/results.md), e.g. ``range``, ``drift``.
        passed: whether the check passed. Passing checks are reported too.
        severity: ``error`` fails the run when not passed; ``warning`` and ``info`` never do.
        feature, task: the column or model task the verdict is about.
        environment: ``offline``, ``online``, ``online_vs_offline`` or ``None``.
        segment: e.g. ``device_type=android``.
        value, threshold: the measured number and the limit it was held to.
        count: how many rows (or steps, ...) the value counts.
        message: plain language for a person.
        examples: a few values (at most five), PII redacted by the check that found them;
            each cut to 200 characters (:func:`funnelguard.redaction.truncate_example`).
        dataset: the contract / dataset name (extension; used to group alerts).
    """

    check: str
    passed: bool
    severity: Severity = "error"
    feature: str | None = None
    task: str | None = None
    environment: str | None = None
    segment: str | None = None
    value: Any = None
    threshold: Any = None
    count: int | None = None
    message: str = ""
    examples: tuple[Any, ...] | None = None
    dataset: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        if self.environment is not None and self.environment not in ENVIRONMENTS:
            raise ValueError(
                f"environment must be one of {ENVIRONMENTS} or None, got {self.environment!r}"
            )
        if self.examples is not None:
            object.__setattr__(self, "examples", tuple(
                truncate_example(e) for e in tuple(self.examples)[:MAX_EXAMPLES]))

    @property
    def failed_error(self) -> bool:
        """True when this finding fails the run."""
        return self.severity == "error" and not self.passed

    def with_(self, **changes: Any) -> Finding:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Finding:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in doc.items() if k in known}
        if kwargs.get("examples") is not None:
            kwargs["examples"] = tuple(kwargs["examples"])
        return cls(**kwargs)


@dataclass(frozen=True)
class Metric:
    """A number worth keeping over time (per-feature drift score, default rate, loss ...)."""

    name: str
    value: float | None
    feature: str | None = None
    task: str | None = None
    environment: str | None = None
    segment: str | None = None


@dataclass(frozen=True)
class ErrorInfo:
    kind: Literal["input", "environment"]
    message: str


def status_of(findings: Iterable[Finding], error: ErrorInfo | None = None) -> str:
    """``error`` if the command could not run, ``fail`` if an error-severity finding failed."""
    if error is not None:
        return "error"
    return "fail" if any(f.failed_error for f in findings) else "pass"


@dataclass(frozen=True)
class RunResult:
    """One command's outcome: what the CLI writes with ``--json`` and stores.

    Attributes:
        command: the CLI command, e.g. ``validate`` or ``alerts flush``.
        partition: the partition (``--date``) or as-of date, ISO ``YYYY-MM-DD``.
        findings: every verdict, passing ones included.
        error: set when the command could not run (bad input, environment failure).
        dataset, environment: what the run was about (the store's key with command and partition).
        metrics: numbers stored beside the findings.
        artifacts: name -> path of reports, model directories, bundles.
        details: extension keys of the JSON document holding the numbers behind the findings
            (e.g. ``{"evaluation": {...}}``); written as they are, after the standard keys.
    """

    command: str
    partition: str | None
    findings: tuple[Finding, ...] = ()
    error: ErrorInfo | None = None
    dataset: str | None = None
    environment: str | None = None
    metrics: tuple[Metric, ...] = ()
    artifacts: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "findings", tuple(self.findings))
        object.__setattr__(self, "metrics", tuple(self.metrics))

    @property
    def status(self) -> str:
        return status_of(self.findings, self.error)

    @property
    def failures(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.passed)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "command": self.command,
            "partition": self.partition,
            "status": self.status,
            "findings": [f.to_json() for f in self.findings],
            "error": None
            if self.error is None
            else {"kind": self.error.kind, "message": self.error.message},
        }
        if self.dataset is not None:
            doc["dataset"] = self.dataset
        if self.environment is not None:
            doc["environment"] = self.environment
        if self.artifacts:
            doc["artifacts"] = dict(self.artifacts)
        for key, value in self.details.items():
            if key not in doc:
                doc[key] = _jsonable(value)
        return doc

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False)
