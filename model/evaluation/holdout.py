"""The matured holdout as of a date, with its segments and, where there is one, the oracle.

The rows are exactly the training-set builder's holdout (:func:`model.trainset.build_training_set`,
``split == "holdout"``: the latest days whose every stage has matured), so a label is final where
``mask_{task}`` is True. Added here:

- the project's segment columns (:attr:`funnelguard.project.Project.segments`) the builder's
  frame lacks, read from the impressions contract's table by key;
- ``user``: ``new`` when the impressions table holds no impression of that person on a partition
  before the impression's own, else ``returning``. The person is the impressions contract's
  first personal-data id (a property with role ``id`` and a PII classification); a project
  without one gets no ``user`` segment. The holdout's days lie well after the warehouse's first
  day (every stage must have matured), so the first day's "everybody is new" never reaches it;
- true probabilities ``p_{task}`` of the same impressions from the table the project's
  ``defaults.oracle_table`` names (a simulated warehouse has one), keyed like the features
  table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from funnelguard.project import IMPRESSIONS
from funnelguard.warehouse import read_range
from model.evaluation.errors import EmptyHoldout

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from funnelguard.project import Project

__all__ = ["USER_SEGMENT", "EvaluationHoldout", "load_holdout", "person_column", "user_status",
           "training_overlap"]

USER_SEGMENT = "user"


@dataclass(frozen=True)
class EvaluationHoldout:
    """The rows evaluation scores.

    Attributes:
        frame: the builder's holdout rows (key, partition, features, ``label_{task}``,
            ``mask_{task}``) plus the segment columns.
        as_of: the knowledge date.
        days: the holdout's partitions.
        oracle: task -> true probability per row, or None without an oracle table.
        description: the training set's description (rows, positives, split).
        key, partition: the frame's key and partition columns.
        tasks: the stages the builder labelled, in funnel order.
        segments: the frame's segment columns, in the project's order (``user`` last).
    """

    frame: pd.DataFrame
    as_of: dt.date
    days: tuple[dt.date, ...]
    oracle: Mapping[str, np.ndarray] | None
    description: Mapping[str, Any]
    key: str = ""
    partition: str = ""
    tasks: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()


def person_column(project: Project) -> str | None:
    """The impressions contract's first personal-data id (role ``id``, PII), or None."""
    for f in project.impressions.fields:
        if f.role == "id" and f.pii:
            return f.name
    return None


def user_status(project: Project, engine: Engine, frame: pd.DataFrame, person: str,
                partition: str) -> np.ndarray:
    """``new`` / ``returning`` per row of ``frame`` (``person``, ``partition``): see module doc."""
    import pandas as pd

    imp = project.impressions
    before = max(frame[partition]) if len(frame) else dt.date.min
    tbl = sa.table(imp.table("offline"), sa.column(person), sa.column(imp.partition_column))
    part = tbl.c[imp.partition_column]
    stmt = (sa.select(tbl.c[person], sa.func.min(part).label("first_seen"))
            .where(part <= before).group_by(tbl.c[person]))
    with engine.connect() as conn:
        first = pd.read_sql(stmt, conn)
    first["first_seen"] = pd.to_datetime(first["first_seen"]).dt.date
    first_seen = frame[person].map(dict(zip(first[person], first["first_seen"], strict=True)))
    seen_before = first_seen.notna() & (first_seen < frame[partition])
    return np.where(seen_before.to_numpy(), "returning", "new")


def _oracle(project: Project, engine: Engine, frame: pd.DataFrame, days: tuple[dt.date, ...],
            key: str, tasks: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    table = project.defaults.get("oracle_table")
    if not table or not days or not sa.inspect(engine).has_table(table):
        return None
    columns = [f"p_{t}" for t in tasks]
    present = {c["name"] for c in sa.inspect(engine).get_columns(table)}
    oracle_key = project.features.key_column
    if not {oracle_key, *columns} <= present:
        return None
    rows = read_range(engine, table, min(days), max(days), [oracle_key, *columns],
                      partition_column=project.features.partition_column)
    rows = rows.drop_duplicates(oracle_key).set_index(oracle_key)
    aligned = rows.reindex(frame[key].to_numpy())
    if aligned.isna().any().any():
        return None
    return {t: aligned[f"p_{t}"].to_numpy(dtype=np.float64) for t in tasks}


def _impression_columns(project: Project, engine: Engine, frame: pd.DataFrame, key: str,
                        columns: list[str], days: tuple[dt.date, ...]) -> pd.DataFrame:
    """``columns`` of the impressions table for the frame's rows (by key), row-aligned."""
    imp = project.impressions
    rows = project.read(engine, IMPRESSIONS, "offline", min(days), max(days),
                        [imp.key_column, *columns])
    rows = rows.drop_duplicates(imp.key_column).set_index(imp.key_column)
    return rows.reindex(frame[key].to_numpy()).reset_index(drop=True)


def load_holdout(project: Project, engine: Engine, as_of: dt.date, *, naive: bool = False
                 ) -> EvaluationHoldout:
    """The builder's matured holdout as of ``as_of``, with segments and the oracle.

    Args:
        project: the project (contracts: tables, key, partition, stages, segments).
        engine: the warehouse.
        as_of: knowledge at this date's 00:00 UTC.
        naive: use the *wrong* builder (immature outcomes counted as negatives) — only to
            measure what that costs (bench/bench_evaluation.py).

    Raises:
        EmptyHoldout: the holdout has no rows.
        TrainingSetError: no matured day for a holdout (from the builder).
    """
    from model.trainset import build_naive_training_set, build_training_set

    builder = build_naive_training_set if naive else build_training_set
    ts = builder(project, engine, as_of)
    key, partition, tasks = ts.key, ts.partition, tuple(ts.tasks)
    frame = ts.holdout.reset_index(drop=True)
    if frame.empty:
        raise EmptyHoldout(
            f"evaluate: expected matured holdout rows as of {as_of} in "
            f"{engine.url.render_as_string(hide_password=True)}; found none "
            f"(training set: {ts.description.get('rows')})")
    days = tuple(sorted(set(frame[partition])))
    pii = {f.name for c in (project.features, project.impressions) for f in c.fields if f.pii}
    # A segment of personal data would put raw values into slice names: never one.
    segments = [s for s in project.segments if s not in pii]
    person = person_column(project)
    imp_fields = {f.name for f in project.impressions.fields}
    wanted = [c for c in (*segments, *([person] if person else []))
              if c not in frame.columns and c in imp_fields]
    if wanted:
        extra = _impression_columns(project, engine, frame, key, wanted, days)
        frame = frame.assign(**{c: extra[c].to_numpy() for c in wanted})
    segments = [s for s in segments if s in frame.columns]
    if person and person in frame.columns:
        frame = frame.assign(**{USER_SEGMENT: user_status(project, engine, frame, person,
                                                          partition)})
        segments.append(USER_SEGMENT)
    return EvaluationHoldout(frame, as_of, days, _oracle(project, engine, frame, days, key, tasks),
                             ts.description, key=key, partition=partition, tasks=tasks,
                             segments=tuple(segments))


def training_overlap(model_dir: Any, days: tuple[dt.date, ...]) -> list[dt.date]:
    """Evaluation days the model trained on, from its directory's ``training_set.json``.

    The model trained on every day of its window except its own holdout days; an evaluation
    day inside that set makes the evaluation optimistic.
    """
    import json
    from pathlib import Path

    if model_dir is None:
        return []
    path = Path(model_dir) / "training_set.json"
    if not path.is_file():
        return []
    doc = json.loads(path.read_text())
    window = doc.get("window")
    if not window:
        return []
    start, end = (dt.date.fromisoformat(x) for x in window)
    held = {dt.date.fromisoformat(x) for x in (doc.get("split") or {}).get("holdout_days", [])}
    return [d for d in days if start <= d <= end and d not in held]
