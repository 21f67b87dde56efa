"""Dataset pages: trends of the stored metrics, one page per dataset (``datasets/<name>.html``).

What is plotted is declared in :data:`TRENDS` (a metric, how its values split into lines and
charts); :func:`render_dataset` turns the stored points of one dataset into those charts over its
newest partitions. A page that would exceed the size limit is rendered again over half as
many partitions, and says how many it shows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from monitors.site.pages import MAX_PAGE_BYTES, RunRow, slug
from monitors.site.plots import Series, line_chart
from monitors.site.queries import MetricPoint, VolumePoint
from monitors.site.templates import render

__all__ = ["Trend", "TRENDS", "TREND_METRICS", "VOLUME_CHECK", "render_dataset"]

VOLUME_CHECK = "volume"  # the freshness check whose threshold is the accepted [low, high] band


@dataclass(frozen=True)
class Trend:
    """One chart family over partitions.

    Attributes:
        metric: the stored metric name (``fg_metrics.name``).
        title: the section title.
        line: the metric attributes whose values name a line (``feature``, ``environment``,
            ``segment``, ``task``).
        facet: one chart per value of this attribute (None: one chart).
        segmented: plot only per-segment values (True) or only overall ones (False).
        percent: values are fractions.
        note: what the numbers mean.
    """

    metric: str
    title: str
    line: tuple[str, ...]
    facet: str | None = None
    segmented: bool = False
    percent: bool = False
    note: str = ""


TRENDS: tuple[Trend, ...] = (
    Trend("drift_score", "Drift score per feature", ("feature",), facet="environment",
          note="The score of the test Evidently chose for the column: a p-value for K-S and "
               "chi-squared (lower means drift), a distance for Wasserstein and Jensen-Shannon "
               "(higher means drift). online_vs_offline compares the two environments of the "
               "same partition; offline and online compare with the preceding partitions."),
    Trend("default_rate", "Default rate per feature", ("feature",), facet="environment",
          percent=True, note="Share of rows holding the feature's contract default value."),
    Trend("default_rate", "Default rate per segment", ("segment", "environment"),
          facet="feature", segmented=True, percent=True),
    Trend("mismatch_rate", "Replay skew: share of impressions whose features differ",
          ("feature",), percent=True),
    Trend("row_count", "Rows per partition (validate)", ("environment",)),
    Trend("completeness_ratio", "Label completeness per task", ("task",),
          note="Observed over expected positives of the least complete cohort (1 = complete)."),
    Trend("matured_share", "Share of impressions whose label window has closed", ("task",),
          percent=True),
)
TREND_METRICS: tuple[str, ...] = tuple(dict.fromkeys(t.metric for t in TRENDS))


def _charts(trend: Trend, points: Sequence[MetricPoint], partitions: Sequence[str],
            prefix: str) -> list[str]:
    chosen = [p for p in points if p.name == trend.metric
              and (p.segment is not None) == trend.segmented]
    facets: dict[str, dict[str, dict[str, float | None]]] = defaultdict(lambda: defaultdict(dict))
    for p in chosen:
        facet = (getattr(p, trend.facet) or "") if trend.facet else ""
        line = " · ".join(str(getattr(p, a) or "-") for a in trend.line)
        facets[facet][line][p.partition] = p.value  # a rerun's value replaces the earlier
    charts = []
    for i, (facet, lines) in enumerate(sorted(facets.items())):
        series = [Series(name, list(partitions), [values.get(x) for x in partitions])
                  for name, values in sorted(lines.items())]
        title = f"{trend.title}: {facet}" if facet else trend.title
        charts.append(line_chart(f"{prefix}-{i}", title, series, percent=trend.percent))
    return charts


def _volume_chart(points: Sequence[VolumePoint], partitions: Sequence[str], div_id: str
                  ) -> list[str]:
    by_env: dict[str, dict[str, VolumePoint]] = defaultdict(dict)
    for p in points:
        by_env[p.environment or "-"][p.partition] = p
    if not by_env:
        return []
    series = []
    for env, rows in sorted(by_env.items()):
        got = [rows.get(x) for x in partitions]
        series.append(Series(env, list(partitions), [g.rows if g else None for g in got],
                             low=[g.low if g else None for g in got],
                             high=[g.high if g else None for g in got]))
    return [line_chart(div_id, "Rows per partition and the accepted band (freshness)", series)]


def _sections(points: Sequence[MetricPoint], volume: Sequence[VolumePoint],
              partitions: Sequence[str]) -> list[dict]:
    sections = []
    vol = _volume_chart(volume, partitions, "volume")
    if vol:
        sections.append({"title": "Volume per day", "note": "", "plots": vol, "table": None})
    for i, trend in enumerate(TRENDS):
        charts = _charts(trend, points, partitions, f"t{i}-{slug(trend.metric)}")
        if charts:
            sections.append({"title": trend.title, "note": trend.note, "plots": charts,
                             "table": None})
    return sections


def render_dataset(dataset: str, points: Sequence[MetricPoint], volume: Sequence[VolumePoint],
                   partitions: Sequence[str], runs: Sequence[RunRow], *, built_at: str) -> str:
    """The trends page of ``dataset``.

    Args:
        points: the dataset's stored trend metrics (any partitions).
        volume: its stored volume findings.
        partitions: its partitions to show, oldest first (at most the window).
        runs: its recent runs, newest first, failures first.
    """
    from markupsafe import Markup

    shown = list(partitions)
    while True:
        keep = set(shown)
        pts = [p for p in points if p.partition in keep]
        vol = [v for v in volume if v.partition in keep]
        sections = _sections(pts, vol, shown)
        for s in sections:
            s["plots"] = [Markup(p) for p in s["plots"]]
        span = (f"the newest {len(shown)} partitions ({shown[0]} to {shown[-1]})"
                if len(shown) > 1 else f"partition {shown[0]}" if shown else "no partitions")
        intro = (f"Trends of {span}"
                 + (f" of {len(partitions)} in the window" if len(shown) < len(partitions) else "")
                 + ("." if sections else "; no trend metrics stored for this dataset."))
        page = render("plots.html", title=f"Dataset {dataset}", root="../", built_at=built_at,
                      has_plots=bool(sections), intro=intro, sections=sections, runs=runs)
        if len(page.encode()) <= MAX_PAGE_BYTES or len(shown) <= 2:
            return page
        shown = shown[len(shown) // 2:]
