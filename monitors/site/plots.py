"""Plotly figures as HTML fragments that use the site's one copy of plotly.js.

Each function takes plain series and returns a ``<div>`` plus the script that draws it
(``plotly.io.to_html`` with ``include_plotlyjs=False``): the page loads
``assets/plotly.min.js`` once, relatively, so it also works from ``file://``. Div ids are
given, not random, so a rebuild of unchanged data writes the same bytes. Values are rounded to
six significant digits and long series are thinned to :data:`MAX_POINTS` points, which keeps
pages small.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Series", "Interval", "line_chart", "interval_chart", "copy_plotly_js",
           "PLOTLY_ASSET", "MAX_POINTS"]

PLOTLY_ASSET = "assets/plotly.min.js"
MAX_POINTS = 2000
_CONFIG = {"displaylogo": False, "responsive": True}
_HEIGHT = 340
_COLORS = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692",
           "#b6e880", "#ff97ff", "#fecb52"]  # plotly's default colour sequence


@dataclass(frozen=True)
class Series:
    """One line: x values (partitions, steps), y values, and an optional accepted band."""

    name: str
    x: Sequence
    y: Sequence[float | None]
    low: Sequence[float | None] | None = None
    high: Sequence[float | None] | None = None


@dataclass(frozen=True)
class Interval:
    """Point estimates with their interval, one per category (segment)."""

    name: str
    categories: Sequence[str]
    value: Sequence[float | None]
    low: Sequence[float | None]
    high: Sequence[float | None]


def _round(v: float | None) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return float(f"{v:.6g}")


def _thin(n: int) -> slice:
    return slice(None, None, max(1, math.ceil(n / MAX_POINTS)))


def _fragment(fig: dict, div_id: str) -> str:
    import plotly.io as pio

    # Figures are plain dicts built here: plotly's per-property validation of graph objects
    # costs more than everything else of a dataset page.
    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id,
                       config=_CONFIG, default_height=f"{_HEIGHT}px", validate=False)


def _layout(title: str, y_title: str, percent: bool, x_title: str = "") -> dict:
    axis = {"gridcolor": "#eaecef", "zerolinecolor": "#d0d7de", "automargin": True}
    return {"title": {"text": title, "font": {"size": 14}, "x": 0.01}, "height": _HEIGHT,
            "margin": {"l": 60, "r": 20, "t": 40, "b": 40}, "plot_bgcolor": "white",
            "paper_bgcolor": "white", "legend": {"font": {"size": 11}},
            "hovermode": "x unified", "colorway": _COLORS,
            "xaxis": {**axis, "title": {"text": x_title}},
            "yaxis": {**axis, "title": {"text": y_title},
                      **({"tickformat": ".1%"} if percent else {})}}


def line_chart(div_id: str, title: str, series: Sequence[Series], *, y_title: str = "",
               percent: bool = False, x_title: str = "") -> str:
    """A line chart, one line per series (each with its shaded band when it has one).

    Args:
        div_id: the plot's element id, unique on its page.
        title: shown above the plot.
        series: the lines; string x values (partitions) are shown as categories.
        percent: format the y axis as a percentage (values are fractions).
    """
    traces: list[dict] = []
    for s in series:
        cut = _thin(len(s.x))
        x = list(s.x)[cut]
        if s.low is not None and s.high is not None:
            traces.append({"type": "scatter", "x": x, "y": [_round(v) for v in list(s.low)[cut]],
                           "mode": "lines", "line": {"width": 0}, "showlegend": False,
                           "hoverinfo": "skip", "legendgroup": s.name})
            traces.append({"type": "scatter", "x": x,
                           "y": [_round(v) for v in list(s.high)[cut]], "mode": "lines",
                           "line": {"width": 0}, "fill": "tonexty",
                           "fillcolor": "rgba(99,110,250,0.15)", "hoverinfo": "skip",
                           "name": f"{s.name} accepted", "legendgroup": s.name})
        traces.append({"type": "scatter", "x": x, "y": [_round(v) for v in list(s.y)[cut]],
                       "mode": "lines+markers", "marker": {"size": 4}, "name": s.name,
                       "legendgroup": s.name})
    layout = _layout(title, y_title, percent, x_title)
    # Partitions are labels: a missing day is a missing point, not a stretched time axis.
    if any(isinstance(v, str) for s in series for v in list(s.x)[:1]):
        layout["xaxis"]["type"] = "category"
    return _fragment({"data": traces, "layout": layout}, div_id)


def interval_chart(div_id: str, title: str, intervals: Sequence[Interval], *,
                   y_title: str = "", reference: float | None = None) -> str:
    """Point estimates with error bars per category, one marker series per ``Interval``.

    Args:
        reference: a horizontal reference line (1.0 for a calibration ratio).
    """
    traces = []
    for iv in intervals:
        value = [_round(v) for v in iv.value]
        plus = [None if v is None or h is None else _round(h - v)
                for v, h in zip(value, iv.high, strict=True)]
        minus = [None if v is None or lo is None else _round(v - lo)
                 for v, lo in zip(value, iv.low, strict=True)]
        traces.append({"type": "scatter", "x": list(iv.categories), "y": value,
                       "mode": "markers", "name": iv.name, "marker": {"size": 8},
                       "error_y": {"type": "data", "symmetric": False, "array": plus,
                                   "arrayminus": minus}})
    layout = _layout(title, y_title, False)
    layout["hovermode"] = "closest"
    layout["xaxis"]["type"] = "category"
    if reference is not None:
        layout["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": reference,
                             "y1": reference, "line": {"dash": "dot", "color": "#888"}}]
    return _fragment({"data": traces, "layout": layout}, div_id)


def copy_plotly_js(out: Path) -> bool:
    """Copy plotly.js from the installed plotly package to ``out/assets/`` once.

    Returns:
        True when the file was (re)written, False when the same file was already there.
    """
    import plotly

    source = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    target = out / PLOTLY_ASSET
    if target.is_file() and target.stat().st_size == source.stat().st_size:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return True
