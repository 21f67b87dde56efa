"""One prediction, reconstructed: ``funnelguard explain KEY``.

For one impression (its key in the features contract): its served (online table) and offline
feature values side by side, the logged score, the model's score on each version, and for each
feature that differs, how much of the difference it accounts for — the change in score when that
feature alone takes its offline value in the served row (swap one at a time). What the single
swaps do not add up to is reported as the interaction remainder. All versions are scored in one
call. A served model known only by its logged scores (:class:`~model.evaluation.scorers.LoggedScores`)
shows the logged score and the feature values, without re-scoring.

Personal data (a property whose ODCS ``classification`` marks it: ``pii``, ``restricted`` ...;
the rule is :mod:`funnelguard.redaction`'s) is never written: its values show as
``<redacted CLASSIFICATION>`` in the JSON document and the findings, and in the printed table
unless the caller explicitly asks for them (``explain --show-restricted``:
``table(show_restricted=True)``); whether it differs is always shown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from funnelguard.errors import EnvironmentFailure
from funnelguard.findings import Finding
from funnelguard.redaction import classification_of, redacted
from funnelguard.warehouse import require_columns
from model.evaluation.errors import ImpressionNotFound
from model.evaluation.replay import differing
from model.evaluation.scorers import ResolvedScorer, version_column

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from funnelguard.project import Project

__all__ = ["FeatureContribution", "Explanation", "ImpressionRows", "load_impression",
           "explain_rows", "explain_impression", "redacted"]


@dataclass(frozen=True)
class FeatureContribution:
    """One feature of the impression.

    Attributes:
        feature: the column.
        served, offline: its two values (raw; :meth:`shown` is what may be printed).
        differs: whether they differ (NULL equals NULL).
        delta: task -> score change when only this feature takes its offline value
            (empty when the values are equal or the model cannot be re-run).
        classification: the ODCS classification of personal data (``pii``, ``restricted``),
            None for a field that may be shown.
    """

    feature: str
    served: Any
    offline: Any
    differs: bool
    delta: Mapping[str, float]
    classification: str | None = None

    def shown(self, value: Any, show_restricted: bool = False) -> Any:
        """``value`` as it may be printed or written: redacted for personal data unless
        ``show_restricted`` (a terminal, on explicit request; never a file or the store)."""
        if self.classification is not None and not show_restricted \
                and _plain(value) is not None:
            return redacted(self.classification)
        return _plain(value)


@dataclass(frozen=True)
class Explanation:
    """One impression's prediction, reconstructed.

    Attributes:
        key: the impression's key value.
        ds: its partition.
        model: the model's name.
        logged: task -> logged score (None without logged scores).
        online: task -> the model's score on the served features (the logged score when the
            model cannot be re-run).
        offline: task -> the model's score on the offline features (None when it cannot be
            re-run).
        features: every feature, in contract order.
        duplicates: duplicate rows of the key that were ignored.
        key_column, partition_column: the contract's names for the key and the partition.
    """

    key: str
    ds: dt.date | None
    model: str
    logged: Mapping[str, float] | None
    online: Mapping[str, float]
    offline: Mapping[str, float] | None
    features: tuple[FeatureContribution, ...]
    duplicates: int = 0
    key_column: str | None = None
    partition_column: str | None = None

    @property
    def rescored(self) -> bool:
        return self.offline is not None

    @property
    def remainder(self) -> dict[str, float]:
        """Score difference (offline - online) the single swaps do not account for."""
        if self.offline is None:
            return {}
        return {t: self.offline[t] - self.online[t]
                - sum(f.delta.get(t, 0.0) for f in self.features) for t in self.online}

    def findings(self, logged_tolerance: float = 1e-6, serves: bool = False) -> tuple[Finding, ...]:
        out = []
        if self.logged is not None and self.rescored:
            gap = max(abs(self.online[t] - self.logged[t]) for t in self.online)
            out.append(Finding(
                "explain_logged", passed=gap <= logged_tolerance or not serves,
                severity="error" if serves else "info", environment="online", value=gap,
                threshold=logged_tolerance, count=1,
                message=f"{self.key}: {self.model} on the served features vs the logged "
                        f"score: largest difference {gap:.2e} over the tasks"))
        for f in self.features:
            if not f.differs:
                continue
            values = f"served {_fmt(f.shown(f.served))} vs offline {_fmt(f.shown(f.offline))}"
            if f.delta:
                top = max(f.delta, key=lambda t: abs(f.delta[t]))
                effect = f"swapping it moves {top} by {f.delta[top]:+.6f}"
            else:
                effect = f"{self.model} cannot be re-run on it (logged scores only)"
            out.append(Finding(
                "explain_contribution", passed=True, severity="info", feature=f.feature,
                environment="online_vs_offline", value=dict(f.delta) or None, count=1,
                examples=(f.shown(f.served), f.shown(f.offline)),
                message=f"{self.key}: {f.feature} {values}; {effect}"))
        return tuple(out)

    @property
    def personal(self) -> tuple[str, ...]:
        """The features whose values are personal data (redacted)."""
        return tuple(f.feature for f in self.features if f.classification is not None)

    def table(self, show_restricted: bool = False) -> str:
        """A readable side-by-side table for a terminal: personal data redacted unless
        ``show_restricted`` (the caller logs that it showed them)."""
        tasks = list(self.online)
        deltas_shown = self.rescored
        lines = [f"{self.key_column or 'key'} {self.key}  {self.partition_column or 'partition'} "
                 f"{self.ds}  model {self.model}"
                 + (f"  ({self.duplicates} duplicate rows ignored)" if self.duplicates else ""),
                 "", f"{'feature':<28}{'served':>24}{'offline':>24}  "
                 + ("".join(f"{'Δ' + t:>14}" for t in tasks) if deltas_shown else "")]
        for f in self.features:
            mark = "*" if f.differs else " "
            deltas = "".join(f"{f.delta[t]:>+14.6f}" if f.differs and t in f.delta
                             else f"{'':>14}" for t in tasks) if deltas_shown else ""
            served = _fmt(f.shown(f.served, show_restricted))
            offline = _fmt(f.shown(f.offline, show_restricted))
            lines.append(f"{mark}{f.feature:<27}{served:>24}{offline:>24}  {deltas}")
        lines.append("")
        lines.append(f"{'score':<28}" + "".join(f"{t:>14}" for t in tasks))
        rows: list[tuple[str, Mapping[str, float] | None]] = [("logged", self.logged)]
        if self.rescored:
            rows += [("model on served", self.online), ("model on offline", self.offline),
                     ("offline - served", {t: self.offline[t] - self.online[t] for t in tasks}),
                     ("not explained (interaction)", self.remainder)]
        for name, values in rows:
            if values is not None:
                lines.append(f"{name:<28}" + "".join(f"{values[t]:>14.6f}" for t in tasks))
        lines.append("(* = differs; Δtask = score change when only that feature takes its offline "
                     "value)" if self.rescored else
                     f"(* = differs; {self.model} is known only by its logged scores: no re-scoring)")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        partition = self.ds.isoformat() if self.ds else None
        doc: dict[str, Any] = {
            "key": self.key, "key_column": self.key_column, "partition": partition,
            "partition_column": self.partition_column}
        # the contract's own names too (``impression_id`` / ``ds`` on the packaged project)
        if self.key_column:
            doc[self.key_column] = self.key
        if self.partition_column:
            doc[self.partition_column] = partition
        doc.update({
            "model": self.model, "logged": self.logged, "online": dict(self.online),
            "offline": dict(self.offline) if self.offline is not None else None,
            "remainder": self.remainder, "duplicates": self.duplicates,
            "features": [{"feature": f.feature, "served": f.shown(f.served),
                          "offline": f.shown(f.offline), "differs": f.differs,
                          "delta": dict(f.delta), "redacted": f.classification is not None}
                         for f in self.features],
        })
        return doc


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


def _rows(engine: Engine, table: str, key: str, partition: str, value: str,
          columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    names = list(dict.fromkeys([key, partition, *columns]))
    require_columns(engine, table, names)
    tbl = sa.table(table, *[sa.column(c) for c in names])
    stmt = sa.select(*tbl.c).where(tbl.c[key] == value)
    try:
        with engine.connect() as conn:
            frame = pd.read_sql(stmt, conn)
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"reading {table} failed: {exc.orig}") from exc
    frame[partition] = pd.to_datetime(frame[partition]).dt.date
    return frame


@dataclass(frozen=True)
class ImpressionRows:
    """One impression's served and offline rows, as the features contract names them.

    Attributes:
        served, offline: one-row frames (served: features, logged scores, model version;
            a feature the online environment lacks is taken from the offline row).
        duplicates: further rows of the same key that were ignored.
        key, partition: the contract's key and partition columns.
        features: the model's features, in contract order.
        score_columns: task -> logged score column.
        classification: feature -> ODCS classification, for the personal-data ones.
        version: the model-version column, or None.
    """

    served: pd.DataFrame
    offline: pd.DataFrame
    duplicates: int
    key: str
    partition: str
    features: tuple[str, ...]
    score_columns: Mapping[str, str]
    classification: Mapping[str, str]
    version: str | None = None

    @property
    def ds(self) -> dt.date | None:
        return self.served[self.partition].iloc[0]

    @property
    def model_version(self) -> str | None:
        if self.version is None or self.version not in self.served.columns:
            return None
        return str(self.served[self.version].iloc[0])


def load_impression(project: Project, engine: Engine, key: str) -> ImpressionRows:
    """The impression's served row (features, scores) and offline row, and the duplicate count.

    Raises:
        ImpressionNotFound: the key is missing from the online or the offline table.
    """
    contract = project.features
    key_col, part = contract.key_column, contract.partition_column
    features = tuple(project.feature_names("offline"))
    online_names = set(project.feature_names("online"))
    scores = {t: c for t, c in project.score_columns.items() if t in project.tasks}
    version = version_column(project)
    online_table, offline_table = contract.table("online"), contract.table("offline")
    served = _rows(engine, online_table, key_col, part, key,
                   [*([version] if version else []), *[f for f in features if f in online_names],
                    *scores.values()])
    offline = _rows(engine, offline_table, key_col, part, key, features)
    missing = [name for name, f in ((online_table, served), (offline_table, offline)) if f.empty]
    if missing:
        raise ImpressionNotFound(
            f"explain: expected {key_col} {key!r} in {online_table} and {offline_table} of "
            f"{engine.url.render_as_string(hide_password=True)}; not found in "
            f"{', '.join(missing)}")
    duplicates = len(served) - 1 + len(offline) - 1
    served = served.iloc[[0]].reset_index(drop=True)
    offline = offline.iloc[[0]].reset_index(drop=True)
    for name in features:
        if name not in served.columns:
            served[name] = offline[name].to_numpy()
    classification = {f.name: label for f in contract.fields
                      if f.name in features and (label := classification_of(f)) is not None}
    return ImpressionRows(served, offline, duplicates, key_col, part, features, scores,
                          classification, version)


def explain_rows(scorer: ResolvedScorer, served: pd.DataFrame, offline: pd.DataFrame, *,
                 features: Sequence[str], key: str = "", ds: dt.date | None = None,
                 duplicates: int = 0, tasks: Sequence[str] | None = None,
                 score_columns: Mapping[str, str] | None = None,
                 classification: Mapping[str, str] | None = None,
                 key_column: str | None = None, partition_column: str | None = None
                 ) -> Explanation:
    """Explain one row: ``served`` and ``offline`` are one-row frames of the feature columns.

    Args:
        scorer: the model (one that cannot be re-run shows the logged score only).
        served, offline: the two one-row frames (``served`` also holds the logged scores).
        features: the feature columns, in contract order.
        key, ds, duplicates: the impression's key, partition and ignored duplicate rows.
        tasks: the stages (default: the scorer's, else the logged ones).
        score_columns: task -> logged score column of ``served``.
        classification: feature -> classification of the personal-data features (redacted).
        key_column, partition_column: the contract's names, for the output.
    """
    import pandas as pd

    names = list(features)
    score_columns = dict(score_columns or {})
    tasks = tuple(tasks or scorer.tasks or score_columns)
    classification = classification or {}
    diff = [n for n in names if differing(served, offline, n)[0]]
    logged = None
    if tasks and all(score_columns.get(t) in served.columns for t in tasks):
        logged = {t: float(served[score_columns[t]].iloc[0]) for t in tasks}
    deltas: dict[str, dict[str, float]] = {}
    if scorer.rescorable:
        versions = [served[names], offline[names]]
        for name in diff:
            swapped = served[names].copy()
            swapped[name] = offline[name].to_numpy()
            versions.append(swapped)
        scores = scorer.predict(pd.concat(versions, ignore_index=True), tasks)
        online = {t: float(scores[t][0]) for t in tasks}
        offline_scores: dict[str, float] | None = {t: float(scores[t][1]) for t in tasks}
        deltas = {name: {t: float(scores[t][2 + i]) - online[t] for t in tasks}
                  for i, name in enumerate(diff)}
    else:
        online, offline_scores = dict(logged or {}), None
    contributions = tuple(
        FeatureContribution(n, served[n].iloc[0], offline[n].iloc[0], n in diff,
                            deltas.get(n, {}), classification.get(n))
        for n in names)
    return Explanation(key, ds, scorer.name, logged, online, offline_scores, contributions,
                       duplicates, key_column, partition_column)


def explain_impression(project: Project, engine: Engine, key: str, scorer: ResolvedScorer
                       ) -> Explanation:
    """Load the impression from the warehouse and explain it with ``scorer``."""
    rows = load_impression(project, engine, key)
    return explain_rows(scorer, rows.served, rows.offline, features=rows.features, key=key,
                        ds=rows.ds, duplicates=rows.duplicates, score_columns=rows.score_columns,
                        classification=rows.classification, key_column=rows.key,
                        partition_column=rows.partition)
