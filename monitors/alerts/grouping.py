"""One message per root cause: which queued rows go out together, and what they are about.

The outbox holds one row per run and feature (:mod:`monitors.alerts.outbox`). The rows of one
partition, dataset and feature — validate's default rate, drift, replay skew of the same
feature, queued by different runs — are one problem seen by several checks: they go out as one
message (:func:`group_rows`), whose id is the smallest of its rows' (``alert #N``). Rows without
a single feature, gate blocks and training stops go out alone, as before.

The **root cause** of a feature's group is the segment its failing segment findings name
(:func:`root_cause`): the default-rate and replay-skew checks fail the segment that explains a
feature's excess and pass the segments it explains (:mod:`monitors.segments`), so the failing
segments of one column are the cause. Segments of several columns (no single segment explains)
name no cause. A segment already alerted and deduplicated away is still named, from the
overall finding's "caused by SEG" (the checks' wording).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from funnelguard.findings import Finding

__all__ = ["GROUPED_KINDS", "feature_of", "group_rows", "group_key", "root_cause"]

# Kinds whose rows of one partition, dataset and feature are merged into one message.
GROUPED_KINDS = ("alert", "resolution")
_CAUSED_BY = re.compile(r"caused by ([\w.-]+=[^:;,\s]+)")


class _Row(Protocol):
    id: int
    kind: str
    dataset: str
    partition: str
    project: str | None
    payload: Mapping[str, Any]


Row = TypeVar("Row", bound=_Row)


def feature_of(payload: Mapping[str, Any]) -> str | None:
    """The one feature a row's findings are about (None: none, or several)."""
    features = {doc.get("feature") for doc in payload.get("findings", ())}
    return features.pop() if len(features) == 1 else None


def group_key(dataset: str, feature: str) -> str:
    """``dataset|feature``: what ``funnelguard alerts mute --group`` takes."""
    return f"{dataset}|{feature}"


def _key(row: _Row) -> tuple:
    feature = feature_of(row.payload or {})
    if row.kind not in GROUPED_KINDS or feature is None:
        return ("row", row.id)
    return (row.kind, row.partition, row.dataset, row.project, feature)


def group_rows(rows: Iterable[Row]) -> list[list[Row]]:
    """The rows that go out as one message each, in the order of their smallest id.

    Rows of the same kind (alert or resolution), partition, dataset, project and single feature
    form one group; every other row is a group of its own.
    """
    groups: dict[tuple, list[Row]] = {}
    for row in sorted(rows, key=lambda r: r.id):
        groups.setdefault(_key(row), []).append(row)
    return list(groups.values())


def root_cause(findings: Sequence[Finding]) -> tuple[str, ...]:
    """The segments (``column=value``, sorted) that explain a feature's failing findings.

    The failing segment findings when they are all of one column; else the segments the overall
    findings say they are "caused by", when those are of one column; else none.
    """
    segments = {f.segment for f in findings if f.segment and not f.passed}
    if not segments:
        segments = {m.group(1) for f in findings if not f.passed and not f.segment
                    for m in _CAUSED_BY.finditer(f.message or "")}
    columns = {s.split("=", 1)[0] for s in segments}
    return tuple(sorted(segments)) if len(columns) == 1 else ()
