"""A command result that carries its full report in the ``--json`` document.

:class:`ReportResult` is a :class:`~funnelguard.findings.RunResult` whose ``to_json()`` adds one
extension key (``evaluation``, ``replay`` or ``explanation``) holding the numbers behind the
findings — every metric with its interval, the score distributions, the feature table. The
result-document convention allows additive keys (docs/results.md); the edge writes and stores
it like any other result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from funnelguard.findings import RunResult, _jsonable

__all__ = ["ReportResult"]


@dataclass(frozen=True)
class ReportResult(RunResult):
    """A RunResult plus ``report`` written under ``report_key`` in the JSON document."""

    report_key: str = "report"
    report: Mapping[str, Any] | list[Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc = super().to_json()
        doc[self.report_key] = _jsonable(self.report)
        return doc
