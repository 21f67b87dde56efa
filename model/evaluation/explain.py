"""One prediction, reconstructed: ``funnelguard explain IMPRESSION_ID``.

For one impression: its served (``serving_log``) and offline (``offline_features``) feature
values side by side, the logged score, the model's score on each version, and for each feature
that differs, how much of the difference it accounts for — the change in score when that feature
alone takes its offline value in the served row (swap one at a time). What the single swaps do
not add up to is reported as the interaction remainder. All versions are scored in one call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from funnelguard.errors import EnvironmentFailure
from funnelguard.findings import Finding
from funnelguard.warehouse import FEATURES, TASKS, feature_names, require_columns
from model.evaluation.errors import ImpressionNotFound
from model.evaluation.replay import differing
from model.evaluation.scorers import ResolvedScorer

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

__all__ = ["FeatureContribution", "Explanation", "load_impression", "explain_rows",
           "explain_impression"]


@dataclass(frozen=True)
class FeatureContribution:
    """One feature of the impression.

    Attributes:
        feature: the column.
        served, offline: its two values.
        differs: whether they differ (NULL equals NULL).
        delta: task -> score change when only this feature takes its offline value
            (empty when the values are equal).
    """

    feature: str
    served: Any
    offline: Any
    differs: bool
    delta: Mapping[str, float]


@dataclass(frozen=True)
class Explanation:
    """One impression's prediction, reconstructed."""

    impression_id: str
    ds: dt.date | None
    model: str
    logged: Mapping[str, float] | None
    online: Mapping[str, float]
    offline: Mapping[str, float]
    features: tuple[FeatureContribution, ...]
    duplicates: int = 0

    @property
    def remainder(self) -> dict[str, float]:
        """Score difference (offline - online) the single swaps do not account for."""
        return {t: self.offline[t] - self.online[t]
                - sum(f.delta.get(t, 0.0) for f in self.features) for t in self.online}

    def findings(self, logged_tolerance: float = 1e-6, serves: bool = False) -> tuple[Finding, ...]:
        out = []
        if self.logged is not None:
            gap = max(abs(self.online[t] - self.logged[t]) for t in self.online)
            out.append(Finding(
                "explain_logged", passed=gap <= logged_tolerance or not serves,
                severity="error" if serves else "info", environment="online", value=gap,
                threshold=logged_tolerance, count=1,
                message=f"{self.impression_id}: {self.model} on the served features vs the logged "
                        f"score: largest difference {gap:.2e} over the tasks"))
        for f in self.features:
            if not f.differs:
                continue
            top = max(f.delta, key=lambda t: abs(f.delta[t]))
            out.append(Finding(
                "explain_contribution", passed=True, severity="info", feature=f.feature,
                environment="online_vs_offline", value=dict(f.delta), count=1,
                examples=(_plain(f.served), _plain(f.offline)),
                message=f"{self.impression_id}: {f.feature} served {_fmt(f.served)} vs offline "
                        f"{_fmt(f.offline)}; swapping it moves {top} by {f.delta[top]:+.6f}"))
        return tuple(out)

    def table(self) -> str:
        """A readable side-by-side table for a terminal."""
        lines = [f"impression {self.impression_id}  ds {self.ds}  model {self.model}"
                 + (f"  ({self.duplicates} duplicate rows ignored)" if self.duplicates else ""),
                 "", f"{'feature':<28}{'served':>16}{'offline':>16}  "
                 + "".join(f"{'Δ' + t:>14}" for t in self.online)]
        for f in self.features:
            mark = "*" if f.differs else " "
            deltas = "".join(f"{f.delta[t]:>+14.6f}" if f.differs else f"{'':>14}"
                             for t in self.online)
            lines.append(f"{mark}{f.feature:<27}{_fmt(f.served):>16}{_fmt(f.offline):>16}  {deltas}")
        lines.append("")
        lines.append(f"{'score':<28}" + "".join(f"{t:>14}" for t in self.online))
        rows = [("logged", self.logged), ("model on served", self.online),
                ("model on offline", self.offline),
                ("offline - served", {t: self.offline[t] - self.online[t] for t in self.online}),
                ("not explained (interaction)", self.remainder)]
        for name, values in rows:
            if values is not None:
                lines.append(f"{name:<28}" + "".join(f"{values[t]:>14.6f}" for t in self.online))
        lines.append("(* = differs; Δtask = score change when only that feature takes its offline value)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "impression_id": self.impression_id,
            "ds": self.ds.isoformat() if self.ds else None, "model": self.model,
            "logged": self.logged, "online": dict(self.online), "offline": dict(self.offline),
            "remainder": self.remainder, "duplicates": self.duplicates,
            "features": [{"feature": f.feature, "served": _plain(f.served),
                          "offline": _plain(f.offline), "differs": f.differs,
                          "delta": dict(f.delta)} for f in self.features],
        }


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def _fmt(v: Any) -> str:
    v = _plain(v)
    if v is None:
        return "NULL"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _rows(engine: Engine, table: str, impression_id: str, columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    require_columns(engine, table, ["impression_id", "ds", *columns])
    tbl = sa.table(table, *[sa.column(c) for c in ["impression_id", "ds", *columns]])
    stmt = sa.select(*tbl.c).where(tbl.c.impression_id == impression_id)
    try:
        with engine.connect() as conn:
            frame = pd.read_sql(stmt, conn)
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"reading {table} failed: {exc.orig}") from exc
    frame["ds"] = pd.to_datetime(frame["ds"]).dt.date
    return frame


def load_impression(engine: Engine, impression_id: str) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The impression's served row (features, scores) and offline row, and the duplicate count.

    Raises:
        ImpressionNotFound: the id is missing from ``serving_log`` or ``offline_features``.
    """
    features = feature_names()
    served = _rows(engine, "serving_log", impression_id,
                   ["model_version", *features, *[f"score_{t}" for t in TASKS]])
    offline = _rows(engine, "offline_features", impression_id, features)
    missing = [name for name, f in (("serving_log", served), ("offline_features", offline))
               if f.empty]
    if missing:
        raise ImpressionNotFound(
            f"explain: expected impression_id {impression_id!r} in serving_log and "
            f"offline_features of {engine.url.render_as_string(hide_password=True)}; "
            f"not found in {', '.join(missing)}")
    duplicates = len(served) - 1 + len(offline) - 1
    return served.iloc[[0]].reset_index(drop=True), offline.iloc[[0]].reset_index(drop=True), \
        duplicates


def explain_rows(scorer: ResolvedScorer, served: pd.DataFrame, offline: pd.DataFrame, *,
                 impression_id: str = "", ds: dt.date | None = None, duplicates: int = 0,
                 tasks: tuple[str, ...] = TASKS) -> Explanation:
    """Explain one row: ``served`` and ``offline`` are one-row frames of the feature columns."""
    import pandas as pd

    names = feature_names()
    diff = [f.name for f in FEATURES if differing(served, offline, f.name)[0]]
    versions = [served[names], offline[names]]
    for name in diff:
        swapped = served[names].copy()
        swapped[name] = offline[name].to_numpy()
        versions.append(swapped)
    batch = pd.concat(versions, ignore_index=True)
    scores = scorer.predict(batch, tasks)
    online = {t: float(scores[t][0]) for t in tasks}
    offline_scores = {t: float(scores[t][1]) for t in tasks}
    deltas = {name: {t: float(scores[t][2 + i]) - online[t] for t in tasks}
              for i, name in enumerate(diff)}
    logged = None
    if all(f"score_{t}" in served.columns for t in tasks):
        logged = {t: float(served[f"score_{t}"].iloc[0]) for t in tasks}
    contributions = tuple(
        FeatureContribution(n, served[n].iloc[0], offline[n].iloc[0], n in deltas,
                            deltas.get(n, {}))
        for n in names)
    return Explanation(impression_id, ds, scorer.name, logged, online, offline_scores,
                       contributions, duplicates)


def explain_impression(engine: Engine, impression_id: str, scorer: ResolvedScorer
                       ) -> Explanation:
    """Load the impression from the warehouse and explain it with ``scorer``."""
    served, offline, duplicates = load_impression(engine, impression_id)
    return explain_rows(scorer, served, offline, impression_id=impression_id,
                        ds=served["ds"].iloc[0], duplicates=duplicates)
