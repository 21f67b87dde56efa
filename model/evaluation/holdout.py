"""The matured holdout as of a date, with its segments and the simulator's oracle.

The rows are exactly the training-set builder's holdout (:func:`model.trainset.build_training_set`,
``split == "holdout"``: the latest days whose every task has matured), so a label is final where
``mask_{task}`` is True. Added here:

- ``user``: ``new`` when the warehouse holds no impression of that user on a day before the
  impression's own day (``ds``), else ``returning``. Needs only ``impressions``; the holdout's
  days lie well after the warehouse's first day (every task must have matured), so the first
  day's "everybody is new" never reaches it.
- the ``oracle`` table's true probabilities ``p_{task}`` of the same impressions, when the
  warehouse has that table (a simulated one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from funnelguard.warehouse import TASKS, read_range
from model.evaluation.errors import EmptyHoldout

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

__all__ = ["EvaluationHoldout", "load_holdout", "user_status", "training_overlap"]


@dataclass(frozen=True)
class EvaluationHoldout:
    """The rows evaluation scores.

    Attributes:
        frame: the builder's holdout rows (features, ``label_{task}``, ``mask_{task}``) plus the
            ``user`` segment column.
        as_of: the knowledge date.
        days: the holdout's ``ds`` values.
        oracle: task -> true probability per row, or None without an ``oracle`` table.
        description: the training set's description (rows, positives, split).
    """

    frame: pd.DataFrame
    as_of: dt.date
    days: tuple[dt.date, ...]
    oracle: Mapping[str, np.ndarray] | None
    description: Mapping[str, Any]


def user_status(engine: Engine, frame: pd.DataFrame) -> np.ndarray:
    """``new`` / ``returning`` per row of ``frame`` (``user_id``, ``ds``): see module doc."""
    import pandas as pd

    before = max(frame["ds"]) if len(frame) else dt.date.min
    tbl = sa.table("impressions", sa.column("user_id"), sa.column("ds"))
    stmt = (sa.select(tbl.c.user_id, sa.func.min(tbl.c.ds).label("first_ds"))
            .where(tbl.c.ds <= before).group_by(tbl.c.user_id))
    with engine.connect() as conn:
        first = pd.read_sql(stmt, conn)
    first["first_ds"] = pd.to_datetime(first["first_ds"]).dt.date
    first_ds = frame["user_id"].map(dict(zip(first["user_id"], first["first_ds"], strict=True)))
    seen_before = first_ds.notna() & (first_ds < frame["ds"])
    return np.where(seen_before.to_numpy(), "returning", "new")


def _oracle(engine: Engine, frame: pd.DataFrame, days: tuple[dt.date, ...]
            ) -> dict[str, np.ndarray] | None:
    if not sa.inspect(engine).has_table("oracle") or not days:
        return None
    table = read_range(engine, "oracle", min(days), max(days),
                       ["impression_id", *[f"p_{t}" for t in TASKS]])
    table = table.drop_duplicates("impression_id").set_index("impression_id")
    aligned = table.reindex(frame["impression_id"])
    if aligned.isna().any().any():
        return None
    return {t: aligned[f"p_{t}"].to_numpy(dtype=np.float64) for t in TASKS}


def load_holdout(engine: Engine, as_of: dt.date, *, naive: bool = False) -> EvaluationHoldout:
    """The builder's matured holdout as of ``as_of``, with ``user`` and the oracle.

    Args:
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
    ts = builder(engine, as_of)
    frame = ts.holdout.reset_index(drop=True)
    if frame.empty:
        raise EmptyHoldout(
            f"evaluate: expected matured holdout rows as of {as_of} in "
            f"{engine.url.render_as_string(hide_password=True)}; found none "
            f"(training set: {ts.description.get('rows')})")
    frame = frame.assign(user=user_status(engine, frame))
    days = tuple(sorted(set(frame["ds"])))
    return EvaluationHoldout(frame, as_of, days, _oracle(engine, frame, days), ts.description)


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
