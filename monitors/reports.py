"""HTML reports a person opens: Evidently's per-feature drift views for what drifted, and a
plain summary page of every finding (default rates by segment, skew ranking, freshness).

Rendering is the slow part of a full Evidently run, so :func:`write_evidently_drift` renders
``ValueDrift`` only for the features that drifted (or, when none did, the closest to their
threshold), on the very samples the decision was taken on, with the method and threshold that
decided — the scores in the HTML are the scores in the findings. :func:`write_summary` needs
nothing but the findings.

**Personal data** (:mod:`funnelguard.redaction`). Evidently embeds values in its HTML (the
histogram's outer bin edges are the sample's minimum and maximum), so a personal column
(``DriftTarget.classification``) never reaches Evidently raw: its numbers are rounded to two
significant digits (:func:`~funnelguard.redaction.coarse_numbers`: an income of 61,341.01 is
drawn as 61,000) and drawn as categories of those rounded values, so the page shows counts per
bucket and no statistic of values (Evidently's numeric page also plots bin means over the row
index, and a mean of rounded values can equal a row's value); text categories become keyed
tokens (``h:…``). The decision was taken on the raw values: for such a
column the HTML's score is Evidently's on the rounded values and can differ from the finding's
in the second or third digit; the finding's score decides, and the page says so. The summary
page shows no examples, and the segment values of personal columns (``personal``) as
``<redacted …>``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from funnelguard.findings import Finding
from funnelguard.redaction import coarse_numbers, deployment_key, keyed_token, redacted

if TYPE_CHECKING:
    import pandas as pd

    from monitors.drift import DriftResult, DriftTarget, FrameProfile

__all__ = ["write_evidently_drift", "write_summary", "SHOWN_WHEN_QUIET"]
# How Evidently scores a personal numeric column drawn as categories of rounded values.
PERSONAL_NUMBERS_METHOD = "jensenshannon"

SHOWN_WHEN_QUIET = 3  # features rendered when nothing drifted


def _padded_frame(profile: FrameProfile, targets: Sequence[DriftTarget],
                  key: bytes | None = None) -> pd.DataFrame:
    """The profile's samples side by side, personal columns coarsened; shorter columns padded
    with NULL (Evidently drops NULL before testing, so the padding changes nothing)."""
    import pandas as pd

    columns = {}
    for t in targets:
        sample = profile.columns[t.feature].sample
        if t.classification is not None and t.column_type == "num":
            # drawn as categories of rounded values: a numeric page also plots bin means of the
            # values over the row index, and a mean of rounded values can equal a row's value
            coarse = coarse_numbers(sample.to_numpy(dtype="float64"))
            sample = pd.Series([None if v != v else f"{v:g}" for v in coarse], dtype=object)
        elif t.classification is not None:
            sample = pd.Series([keyed_token(v, key or b"") for v in sample], dtype=object)
        columns[t.feature] = sample
    return pd.DataFrame(columns)


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
    drawn = [by_feature[r.feature] for r in shown]
    key = deployment_key() if any(t.classification and t.column_type == "cat"
                                  for t in drawn) else None
    as_categories = {t.feature for t in drawn if t.column_type == "cat" or t.classification}
    definition = DataDefinition(
        numerical_columns=[t.feature for t in drawn if t.feature not in as_categories],
        categorical_columns=[t.feature for t in drawn if t.feature in as_categories])
    report = Report([ValueDrift(column=r.feature, threshold=r.threshold,
                                method=(PERSONAL_NUMBERS_METHOD
                                        if r.feature in as_categories
                                        and by_feature[r.feature].column_type == "num"
                                        else r.method))
                     for r in shown])
    snapshot = report.run(
        Dataset.from_pandas(_padded_frame(current, drawn, key), data_definition=definition),
        Dataset.from_pandas(_padded_frame(reference, drawn, key), data_definition=definition))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(out))  # save_html writes nothing unless given a str
    coarsened = [f"{t.feature} ({t.classification})" for t in drawn if t.classification]
    if coarsened:
        _add_note(out, f"Personal data: {', '.join(coarsened)} drawn as categories of values "
                       "rounded to two significant digits (text categories as keyed tokens), "
                       f"scored here by {PERSONAL_NUMBERS_METHOD}; the drift decision and its "
                       "score are the finding's, on the raw values.")
    return str(out)


def _add_note(path: Path, note: str) -> None:
    """A line at the top of an Evidently page (its HTML has one ``<body>``)."""
    text = path.read_text()
    banner = (f'<p style="font-family:sans-serif;background:#fff4d6;padding:6px">'
              f"{html.escape(note)}</p>")
    path.write_text(text.replace("<body>", "<body>" + banner, 1))


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


def _segment(segment: str | None, personal: Mapping[str, str]) -> str | None:
    """``column=value,...`` with the values of personal columns redacted."""
    if not segment or not personal:
        return segment
    parts = []
    for part in segment.split(","):
        column, sep, _ = part.partition("=")
        parts.append(f"{column}={redacted(personal[column])}" if sep and column in personal
                     else part)
    return ",".join(parts)


def write_summary(
    path: str | Path,
    title: str,
    findings: Sequence[Finding],
    links: Mapping[str, str] | None = None,
    personal: Mapping[str, str] | None = None,
) -> str:
    """A self-contained HTML page: failures first, then every finding, then links.

    Args:
        personal: column -> classification of the personal columns
            (:func:`funnelguard.redaction.personal_fields`): their segment values are redacted.
            Examples are never shown.
    """
    columns = ("check", "environment", "feature", "segment", "value", "threshold", "count", "message")
    personal = dict(personal or {})
    ordered = sorted(findings, key=lambda f: (f.passed, f.check, f.environment or "",
                                              f.feature or "", f.segment or ""))
    rows = []
    for f in ordered:
        mark = "ok" if f.passed else ("FAIL" if f.severity == "error" else "WARN")
        style = "" if f.passed else ' style="background:#fde2e1"'
        shown = f.with_(segment=_segment(f.segment, personal))
        cells = "".join(f"<td>{_cell(getattr(shown, c))}</td>" for c in columns)
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
