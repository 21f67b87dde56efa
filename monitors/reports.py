"""HTML reports a person opens: Evidently's per-feature drift views for what drifted, and a
plain summary page of every finding (default rates by segment, skew ranking, freshness).

Rendering is the slow part of a full Evidently run, so :func:`write_evidently_drift` renders
``ValueDrift`` only for the features that drifted (or, when none did, the closest to their
threshold), on the very samples the decision was taken on, with the method and threshold that
decided — the scores in the HTML are the scores in the findings. :func:`write_summary` needs
nothing but the findings.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from funnelguard.findings import Finding

if TYPE_CHECKING:
    import pandas as pd

    from monitors.drift import DriftResult, DriftTarget, FrameProfile

__all__ = ["write_evidently_drift", "write_summary", "SHOWN_WHEN_QUIET"]

SHOWN_WHEN_QUIET = 3  # features rendered when nothing drifted


def _padded_frame(profile: FrameProfile, features: Sequence[str]) -> pd.DataFrame:
    """The profile's samples side by side; shorter columns padded with NULL (Evidently drops
    NULL before testing, so the padding changes nothing)."""
    import pandas as pd

    return pd.DataFrame({f: profile.columns[f].sample for f in features})


def write_evidently_drift(
    path: str | Path,
    reference: FrameProfile,
    current: FrameProfile,
    targets: Sequence[DriftTarget],
    results: Sequence[DriftResult],
) -> str | None:
    """Write an Evidently HTML report of the drifted features of one comparison.

    Returns:
        The path written, or None when there was nothing testable to show.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    by_feature = {t.feature: t for t in targets}
    testable = [r for r in results if r.method != "empty"]
    shown = [r for r in testable if r.drifted]
    if not shown:
        shown = sorted(testable, key=lambda r: -_closeness(r))[:SHOWN_WHEN_QUIET]
    if not shown:
        return None
    features = [r.feature for r in shown]
    definition = DataDefinition(
        numerical_columns=[f for f in features if by_feature[f].column_type == "num"],
        categorical_columns=[f for f in features if by_feature[f].column_type == "cat"])
    report = Report([ValueDrift(column=r.feature, method=r.method, threshold=r.threshold)
                     for r in shown])
    snapshot = report.run(
        Dataset.from_pandas(_padded_frame(current, features), data_definition=definition),
        Dataset.from_pandas(_padded_frame(reference, features), data_definition=definition))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(out))  # save_html writes nothing unless given a str
    return str(out)


def _closeness(r: DriftResult) -> float:
    """How close a result came to drifting (1.0 at the threshold), for distances and p-values."""
    if r.score != r.score or not r.threshold:
        return 0.0
    if r.method in ("wasserstein", "jensenshannon", "psi", "kl_div", "hellinger"):
        return r.score / r.threshold
    return r.threshold / max(r.score, 1e-300)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape("" if value is None else str(value))


def write_summary(
    path: str | Path,
    title: str,
    findings: Sequence[Finding],
    links: Mapping[str, str] | None = None,
) -> str:
    """A self-contained HTML page: failures first, then every finding, then links."""
    columns = ("check", "environment", "feature", "segment", "value", "threshold", "count", "message")
    ordered = sorted(findings, key=lambda f: (f.passed, f.check, f.environment or "",
                                              f.feature or "", f.segment or ""))
    rows = []
    for f in ordered:
        mark = "ok" if f.passed else ("FAIL" if f.severity == "error" else "WARN")
        style = "" if f.passed else ' style="background:#fde2e1"'
        cells = "".join(f"<td>{_cell(getattr(f, c))}</td>" for c in columns)
        rows.append(f"<tr{style}><td>{mark}</td>{cells}</tr>")
    head = "".join(f"<th>{c}</th>" for c in ("", *columns))
    link_html = "".join(f'<li><a href="{html.escape(Path(p).name)}">{html.escape(name)}</a></li>'
                        for name, p in (links or {}).items())
    failed = sum(1 for f in findings if not f.passed)
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           "<style>body{font-family:sans-serif}table{border-collapse:collapse;font-size:13px}"
           "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}</style></head><body>"
           f"<h1>{html.escape(title)}</h1><p>{len(findings)} findings, {failed} not passed.</p>"
           + (f"<h2>Evidently reports</h2><ul>{link_html}</ul>" if link_html else "")
           + f"<table><tr>{head}</tr>{''.join(rows)}</table></body></html>")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc)
    return str(out)
