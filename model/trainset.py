"""Delay-aware training sets: offline features joined to labels as known at the as-of date.

:func:`build_training_set` follows the labels' as-of rule exactly (an event loaded after A does
not exist yet; impressions at or after A are excluded) and gives every funnel stage its own
mask: an example whose window for a stage has not closed is masked for that stage, never a
negative. The holdout is the latest days of the window whose every stage has matured, so offline
metrics are computed on final labels only. Non-finite feature values (NULL/NaN, ±inf) pass
through unchanged and are counted in ``description``: the training guard must see them
(docs/labels.md). Optional negative downsampling records its rate; :func:`correct_downsampled`
undoes its effect on predicted probabilities at evaluation. :func:`build_naive_training_set` is
the *wrong* builder (immature outcomes counted as negatives), kept only to show what it costs.
Tables, key, partition, event time, features and stages all come from the project.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from funnelguard.project import FEATURES, LABELS
from monitors.maturity.asof import (
    LabelColumns,
    matured_through,
    maturity_windows,
    read_label_frame,
    resolve_labels,
    select_tasks,
)
from monitors.maturity.errors import TrainingSetError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sqlalchemy.engine import Engine

    from contracts.spec import Contract
    from funnelguard.project import Project

__all__ = [
    "DEFAULT_WINDOW_DAYS",
    "DEFAULT_HOLDOUT_DAYS",
    "TrainingSet",
    "build_training_set",
    "build_naive_training_set",
    "holdout_days_for",
    "correct_downsampled",
]

DEFAULT_WINDOW_DAYS = 28
DEFAULT_HOLDOUT_DAYS = 3


@dataclass(frozen=True)
class TrainingSet:
    """Examples as known at ``as_of``, split in time, with per-stage label masks.

    Attributes:
        frame: the columns ``key``, ``partition``, ``event_time`` (named as in the project),
            every offline feature (``features``, the features contract's order), then per stage
            ``label_{task}`` (float 0/1: the event loaded before ``as_of``) and ``mask_{task}``
            (bool: the stage's window has closed, so the label is final; an immature row is
            masked even when its event already loaded), and ``split`` (``train`` /
            ``holdout``); sorted by event time, then key.
        as_of: knowledge at this date's 00:00 UTC.
        tasks: the stages, in funnel order (the column order).
        downsample_rate: the share ``w`` of all-negative training rows kept, or None.
        description: JSON-ready summary the model saves with the model directory (window,
            rows, positives / known / masked per stage and split, split dates, non-finite and
            null feature counts, downsampling, the column names).
        key: the impression key column (the impressions contract's primary key).
        partition: the day column (named as the features contract's partition column): the UTC
            day of ``event_time``, i.e. the impression's cohort.
        event_time: the impression time the maturity windows count from (``countsFrom``).
        features: the feature columns (``project.feature_names("offline")``).
    """

    frame: pd.DataFrame
    as_of: dt.date
    tasks: tuple[str, ...]
    downsample_rate: float | None
    description: Mapping[str, Any] = field(default_factory=dict)
    key: str = field(kw_only=True)
    partition: str = field(kw_only=True)
    event_time: str = field(kw_only=True)
    features: tuple[str, ...] = field(default=(), kw_only=True)

    @property
    def train(self) -> pd.DataFrame:
        return self.frame.loc[self.frame["split"] == "train"]

    @property
    def holdout(self) -> pd.DataFrame:
        return self.frame.loc[self.frame["split"] == "holdout"]


def correct_downsampled(p: float | np.ndarray, w: float,
                        p_any: float | np.ndarray | None = None) -> float | np.ndarray:
    """Undo negative downsampling on predicted probabilities.

    The builder keeps a share ``w`` of the training rows with no known positive. For a task
    whose negatives are exactly those rows (the first funnel stage: no first step means no later outcome either),
    the probability on the original scale is ``q = p / (p + (1 - p) / w)``. For a deeper task
    pass ``p_any``, the model's (downsampled-scale) probability that the row has any positive,
    i.e. its first-stage probability: then ``q = p * w / (1 - (1 - w) * p_any)``, which reduces to the
    first form when ``p_any = p``.

    Args:
        p: predicted probabilities of a model trained on the downsampled set.
        w: the recorded ``downsample_rate``, in (0, 1].
        p_any: for deeper stages, the predicted first-stage probability (same scale as ``p``).

    Raises:
        TrainingSetError: ``w`` is not in (0, 1].
    """
    import numpy as np

    if not 0.0 < w <= 1.0:
        raise TrainingSetError(f"downsample rate: expected a share in (0, 1], found {w!r}")
    p_arr = np.asarray(p, dtype=np.float64)
    any_arr = p_arr if p_any is None else np.asarray(p_any, dtype=np.float64)
    q = p_arr * w / (1.0 - (1.0 - w) * any_arr)
    return float(q) if np.ndim(q) == 0 else q


def holdout_days_for(as_of: dt.date, windows: Mapping[str, float], days: list[dt.date],
                     holdout_days: int) -> list[dt.date]:
    """The latest ``holdout_days`` of ``days`` whose every stage has matured as of ``as_of``."""
    last = min(matured_through(as_of, d) for d in windows.values())
    return sorted(d for d in days if d <= last)[-holdout_days:] if holdout_days > 0 else []


def _non_finite_counts(frame: pd.DataFrame, columns: list[str]) -> dict[str, dict[str, int]]:
    import numpy as np

    counts: dict[str, dict[str, int]] = {}
    for col in columns:
        values = frame[col]
        if values.dtype == object:
            nulls = int(values.isna().sum())
            entry = {"null": nulls, "posinf": 0, "neginf": 0}
        else:
            arr = values.to_numpy(dtype=np.float64)
            entry = {"null": int(np.isnan(arr).sum()), "posinf": int(np.isposinf(arr).sum()),
                     "neginf": int(np.isneginf(arr).sum())}
        if any(entry.values()):
            counts[col] = entry
    return counts


def _downsample(frame: pd.DataFrame, tasks: tuple[str, ...], w: float, seed: int
                ) -> tuple[pd.DataFrame, dict[str, Any]]:
    import numpy as np

    if not 0.0 < w <= 1.0:
        raise TrainingSetError(f"negative_downsample: expected a share in (0, 1], found {w!r}")
    labels = frame[[f"label_{t}" for t in tasks]].to_numpy()
    negative = (frame["split"].to_numpy() == "train") & (labels.sum(axis=1) == 0)
    candidates = np.flatnonzero(negative)
    keep_n = int(round(w * len(candidates)))
    rng = np.random.default_rng(seed)
    kept = rng.choice(candidates, size=keep_n, replace=False)
    keep = ~negative
    keep[kept] = True
    info = {"rate": w, "seed": seed, "negatives_before": int(len(candidates)),
            "negatives_kept": keep_n,
            "rule": "train rows with no known positive in any task, kept at rate w without "
                    "replacement; holdout untouched; correct with correct_downsampled"}
    return frame.loc[keep].reset_index(drop=True), info


def _features_frame(project: Project, engine: Engine, start: dt.date, end: dt.date,
                    columns: LabelColumns, features: list[str]) -> pd.DataFrame:
    """The offline features of the window, keyed by the impressions' key column name."""
    contract = project.features
    key = contract.key_column
    taken = {columns.key, columns.day, columns.event_time, *columns.loaded_at.values(),
             *columns.occurred_at.values()}
    clash = sorted(taken.intersection(features))
    if clash:
        raise TrainingSetError(
            f"features contract {contract.path}: expected feature names distinct from the "
            f"impressions' key, partition and event time and the label columns, found {clash}")
    offline = project.read(engine, FEATURES, "offline", start, end, columns=[key, *features])
    return offline.rename(columns={key: columns.key}) if key != columns.key else offline


def _build(project: Project, engine: Engine, as_of: dt.date, *, contract: Contract | None,
           window_days: int | None, holdout_days: int, negative_downsample: float | None,
           seed: int, tasks: Sequence[str] | None, naive: bool) -> TrainingSet:
    import numpy as np

    if contract is not None:  # a labels contract replacing the project's
        project = dataclasses.replace(project, contracts={**project.contracts, LABELS: contract})
    if window_days is None:
        window_days = project.defaults.get("window_days", DEFAULT_WINDOW_DAYS)
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
        raise TrainingSetError(f"window_days: expected a positive number of days, found "
                               f"{window_days!r}")
    tasks = select_tasks(project, tasks)
    columns = LabelColumns.of(project, tasks)
    windows = maturity_windows(project.labels, tasks, event_time=columns.event_time)
    key, event_time = columns.key, columns.event_time
    partition = project.features.partition_column
    start, end = as_of - dt.timedelta(days=window_days), as_of - dt.timedelta(days=1)
    labels = read_label_frame(project, engine, start, end, tasks=tasks)
    features = project.feature_names("offline")
    offline = _features_frame(project, engine, start, end, columns, features)
    duplicates = int(offline[key].duplicated().sum())
    joined = labels.merge(offline, on=key, how="inner")
    without_features = int((~labels[key].isin(offline[key])).sum())
    resolved = resolve_labels(joined, as_of, windows, columns=columns, naive=naive)
    if columns.day != partition:
        resolved = resolved.rename(columns={columns.day: partition})
    days = sorted(set(resolved[partition]))
    held = holdout_days_for(as_of, windows, days, holdout_days)
    if holdout_days > 0 and not held:
        slowest = max(windows, key=windows.get)
        raise TrainingSetError(
            f"holdout: expected at least one day in {start}..{end} whose every stage has matured "
            f"as of {as_of} ({slowest} needs {windows[slowest]:g} days, so days up to "
            f"{min(matured_through(as_of, d) for d in windows.values())}); found none among "
            f"{len(days)} days with data. Widen window_days or pass holdout_days=0")
    resolved["split"] = np.where(resolved[partition].isin(held), "holdout", "train")
    ordered = [key, partition, event_time, *features,
               *[f"{k}_{t}" for t in tasks for k in ("label", "mask")], "split"]
    frame = resolved[ordered].sort_values([event_time, key], kind="stable")
    frame = frame.reset_index(drop=True)
    sampling = None
    if negative_downsample is not None:
        frame, sampling = _downsample(frame, tasks, float(negative_downsample), seed)

    def per_split(values: pd.Series) -> dict[str, int]:
        return {s: int(values[frame["split"] == s].sum()) for s in ("train", "holdout")}

    train_days = sorted(set(frame.loc[frame["split"] == "train", partition]))
    description = {
        "as_of": as_of.isoformat(),
        "label_policy": "naive: immature outcomes counted as negatives" if naive
        else "masked: immature outcomes masked per task",
        "window": [start.isoformat(), end.isoformat()],
        "window_days": window_days,
        "tasks": list(tasks),
        "columns": {"key": key, "partition": partition, "event_time": event_time},
        "maturity_days": dict(windows),
        "rows": {"total": len(frame), **{s: int((frame["split"] == s).sum())
                                         for s in ("train", "holdout")}},
        "positives": {t: per_split(frame[f"label_{t}"] * frame[f"mask_{t}"]) for t in tasks},
        "known": {t: per_split(frame[f"mask_{t}"]) for t in tasks},
        "masked": {t: per_split(~frame[f"mask_{t}"]) for t in tasks},
        "split": {
            "train": [train_days[0].isoformat(), train_days[-1].isoformat()] if train_days else None,
            "holdout_days": [d.isoformat() for d in held],
            "rule": "holdout = the latest days of the window whose every task has matured",
        },
        "non_finite_features": _non_finite_counts(frame, features),
        "impressions_without_features": without_features,
        "missing_label_rows": int(labels.attrs.get("missing_label_rows", 0)),
        "duplicate_feature_rows": duplicates,
        "downsampling": sampling,
    }
    return TrainingSet(frame, as_of, tasks, sampling["rate"] if sampling else None, description,
                       key=key, partition=partition, event_time=event_time,
                       features=tuple(features))


def build_training_set(
    project: Project,
    engine: Engine,
    as_of: dt.date,
    *,
    contract: Contract | None = None,
    window_days: int | None = None,
    holdout_days: int = DEFAULT_HOLDOUT_DAYS,
    negative_downsample: float | None = None,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
) -> TrainingSet:
    """Build the training set of the ``window_days`` before ``as_of``, as known at ``as_of``.

    Args:
        project: the project: impressions (key, partition, event time), offline features and
            labels (stages, maturity windows, loaded-at columns) tables and columns.
        engine: the warehouse.
        as_of: knowledge at this date's 00:00 UTC: events loaded before it, impressions before it.
        contract: a labels contract replacing the project's (None: the project's).
        window_days: days before ``as_of`` in the set (None: the project's
            ``defaults.window_days``, else 28).
        holdout_days: the latest days whose every stage has matured form the holdout (0: none).
        negative_downsample: keep this share ``w`` of training rows without a known positive.
        seed: seed of the downsampling.
        tasks: a subset of the stages, returned in funnel order (None or empty: every stage).

    Raises:
        TrainingSetError: no matured day for the holdout, or a bad window or rate.
        MaturityConfigError: an unknown stage, a stage without a window or loaded-at column.
        InputError: a missing table or column in the warehouse.
    """
    return _build(project, engine, as_of, contract=contract, window_days=window_days,
                  holdout_days=holdout_days, negative_downsample=negative_downsample, seed=seed,
                  tasks=tasks, naive=False)


def build_naive_training_set(
    project: Project,
    engine: Engine,
    as_of: dt.date,
    *,
    contract: Contract | None = None,
    window_days: int | None = None,
    holdout_days: int = DEFAULT_HOLDOUT_DAYS,
    negative_downsample: float | None = None,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
) -> TrainingSet:
    """The wrong builder, for demonstrations only: every unknown outcome is a negative.

    Same arguments and split as :func:`build_training_set`, but every mask is True and an
    impression whose slow outcome has not had time to arrive counts as "did not happen".
    ``bench/bench_naive_labels.py`` measures what that does to calibration.
    """
    return _build(project, engine, as_of, contract=contract, window_days=window_days,
                  holdout_days=holdout_days, negative_downsample=negative_downsample, seed=seed,
                  tasks=tasks, naive=True)
