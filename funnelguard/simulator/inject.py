"""Applying faults to the in-memory warehouse, each on its own random stream.

Fault ``i`` of a configuration draws from ``default_rng([seed, 104729, i])``, never from the main
stream, so a faulted warehouse differs from the clean one with the same seed only in the cells
its :class:`ManifestEntry` rows list: the named feature (or task columns) of the named
environment's rows of the named partition. Online feature faults also recompute the logged
``score_*`` of exactly the rows whose value changed (the stand-in model scores served values).
``affected_rows`` counts rows whose value really changed (or rows added, for duplicates).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from funnelguard.simulator.config import FaultSpec
from funnelguard.simulator.errors import FaultSpecError
from funnelguard.simulator.schema import FEATURE_BY_NAME, TASKS
from funnelguard.simulator.tables import WorldTables
from funnelguard.simulator.world import feature_values

__all__ = ["ManifestEntry", "apply_faults", "fault_stream"]

_US_PER_DAY = 86_400 * 10**6
_INT64_LIMIT = 9.0e18


@dataclass(frozen=True)
class ManifestEntry:
    """One row of ``fault_manifest``: what a fault changed, where, and how many rows."""

    fault: str
    spec: str
    feature: str | None
    task: str | None
    environment: str | None
    ds: dt.date | None
    affected_rows: int


def fault_stream(seed: int, index: int) -> np.random.Generator:
    """The random stream of the ``index``-th fault of a configuration."""
    return np.random.default_rng([seed, 104_729, index])


def _day_number(day: object) -> int:
    return (day - dt.date(1970, 1, 1)).days  # type: ignore[operator]


def _date(day_number: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day_number))


def _is_null(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return pd.isnull(values)
    return np.zeros(len(values), dtype=bool)


def _changed(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    both_null = _is_null(old) & _is_null(new)
    with np.errstate(invalid="ignore"):
        return ~((old == new) | both_null)


def _pick(rng: np.random.Generator, candidates: np.ndarray, share: float) -> np.ndarray:
    """A random ``share`` of the candidate positions (exactly ``round(share * n)``), sorted."""
    size = int(round(share * len(candidates)))
    return np.sort(rng.choice(candidates, size=size, replace=False)) if size else candidates[:0]


def _day_rows(frame: pd.DataFrame, day: dt.date, segment: dict[str, str] | None = None) -> np.ndarray:
    mask = frame["ds"].to_numpy() == _day_number(day)
    for column, value in (segment or {}).items():
        mask &= frame[column].to_numpy() == value
    return np.flatnonzero(mask)


def _set_feature(world: WorldTables, env: str, fault: FaultSpec, feature: str, rows: np.ndarray,
                 new: np.ndarray) -> ManifestEntry:
    """Write ``new`` into ``feature`` at positions ``rows``; count and rescore the changed ones."""
    frame = world.frame(env)
    col = frame.columns.get_loc(feature)
    old = frame[feature].to_numpy()[rows]
    new = np.asarray(new)
    if frame[feature].dtype.kind in "iu" and (new.dtype.kind == "f" or new.dtype.kind == "O"):
        if new.dtype.kind == "O" or np.isnan(new).any():
            frame[feature] = frame[feature].astype(np.float64)
        else:
            new = new.astype(np.int64)
    changed = _changed(old, new)
    if len(rows):
        frame.iloc[rows, col] = new
    if env == "online":
        world.rescore(rows[changed])
    return ManifestEntry(fault.name, fault.spec, feature, None, env, fault.get("day"),
                         int(changed.sum()))


def _is_default(values: np.ndarray, feature: str) -> np.ndarray:
    default = FEATURE_BY_NAME[feature].default
    return _is_null(values) | (values == default) | ~np.isfinite(values.astype(np.float64))


def _serving_default(world, fault, rng):
    feature = str(fault.get("feature"))
    segment = {k: str(fault.get(k)) for k in ("device_type", "item_type") if fault.get(k)}
    rows = _pick(rng, _day_rows(world.online, fault.get("day"), segment), float(fault.get("share")))
    default = FEATURE_BY_NAME[feature].default
    return [_set_feature(world, "online", fault, feature, rows,
                         np.full(len(rows), default, dtype=object if isinstance(default, str) else None))]


def _scaled(world, fault, rng, env: str, factor: float):
    feature = str(fault.get("feature"))
    frame = world.frame(env)
    day_rows = _day_rows(frame, fault.get("day"))
    values = frame[feature].to_numpy()[day_rows]
    eligible = day_rows[~_is_default(values, feature)]
    rows = _pick(rng, eligible, float(fault.get("share")))
    new = frame[feature].to_numpy()[rows].astype(np.float64) * factor
    if FEATURE_BY_NAME[feature].kind == "int":
        if len(new) and np.abs(new).max() > _INT64_LIMIT:
            raise FaultSpecError(f"--fault {fault.spec!r}: {feature} is an integer column; "
                                 f"values times {factor:g} exceed the 64-bit range")
        new = np.rint(new)
    return [_set_feature(world, env, fault, feature, rows, new)]


def _unit_mismatch(world, fault, rng):
    return _scaled(world, fault, rng, "online", float(fault.get("factor")))


def _outlier_burst(world, fault, rng):
    return _scaled(world, fault, rng, str(fault.get("env")), float(fault.get("scale")))


def _stale_online(world, fault, rng):
    feature = str(fault.get("feature"))
    rows = _day_rows(world.online, fault.get("day"))
    draw_rows = world.online["_row"].to_numpy()[rows]
    stale = feature_values(world.draw, world.config.seed, online=True,
                           lag_days=int(fault.get("lag_days")), rows=draw_rows)[feature]
    return [_set_feature(world, "online", fault, feature, rows, stale)]


def _category_remap(world, fault, rng):
    feature = str(fault.get("feature"))
    rows = _day_rows(world.online, fault.get("day"))
    new = world.online[feature].to_numpy()[rows].copy()
    if fault.get("rename"):
        a, b = fault.get("rename")
        new[new == a] = b
    else:
        a, b = fault.get("swap")
        is_a, is_b = new == a, new == b
        new[is_a], new[is_b] = b, a
    return [_set_feature(world, "online", fault, feature, rows, new)]


def _tz_shift(world, fault, rng):
    rows = _day_rows(world.online, fault.get("day"))
    hours = world.online["hour_of_day"].to_numpy()[rows].astype(np.float64)
    valid = np.isfinite(hours) & (hours >= 0)
    new = np.where(valid, (hours + int(fault.get("hours"))) % 24, hours)
    return [_set_feature(world, "online", fault, "hour_of_day", rows, new)]


def _null_burst(world, fault, rng):
    feature, env = str(fault.get("feature")), str(fault.get("env"))
    rows = _pick(rng, _day_rows(world.frame(env), fault.get("day")), float(fault.get("share")))
    kind = FEATURE_BY_NAME[feature].kind
    new = np.full(len(rows), None, dtype=object) if kind in ("category", "id") else np.full(len(rows), np.nan)
    return [_set_feature(world, env, fault, feature, rows, new)]


def _nan_burst(world, fault, rng):
    feature, env = str(fault.get("feature")), str(fault.get("env"))
    rows = _pick(rng, _day_rows(world.frame(env), fault.get("day")), float(fault.get("share")))
    new = np.where(rng.random(len(rows)) < 0.5, np.inf, -np.inf)
    return [_set_feature(world, env, fault, feature, rows, new)]


def _duplicate_keys(world, fault, rng):
    env = str(fault.get("env"))
    frame = world.frame(env)
    rows = _pick(rng, _day_rows(frame, fault.get("day")), float(fault.get("share")))
    world.set_frame(env, pd.concat([frame, frame.iloc[rows]], ignore_index=True))
    return [ManifestEntry(fault.name, fault.spec, None, None, env, fault.get("day"), len(rows))]


def _unload(world: WorldTables, fault: FaultSpec, task: str, rows: np.ndarray) -> list[ManifestEntry]:
    """Make the events of ``rows`` of ``task`` never load (ts and loaded_at NULL), per ds."""
    labels = world.labels
    for suffix in ("ts", "loaded_at"):
        labels.iloc[rows, labels.columns.get_loc(f"{task}_{suffix}")] = -1
    days, counts = np.unique(labels["ds"].to_numpy()[rows], return_counts=True)
    return [ManifestEntry(fault.name, fault.spec, None, task, "labels", _date(d), int(c))
            for d, c in zip(days, counts, strict=True)]


def _label_lag(world, fault, rng):
    cutoff = world.now_us - int(fault.get("days")) * _US_PER_DAY
    out: list[ManifestEntry] = []
    for task in TASKS:
        loaded = world.labels[f"{task}_loaded_at"].to_numpy()
        out += _unload(world, fault, task, np.flatnonzero(loaded >= cutoff))
    return out


def _label_drop(world, fault, rng):
    task = str(fault.get("task"))
    since_us = _day_number(fault.get("since")) * _US_PER_DAY
    loaded = world.labels[f"{task}_loaded_at"].to_numpy()
    rows = _pick(rng, np.flatnonzero(loaded >= since_us), float(fault.get("share")))
    return _unload(world, fault, task, rows)


def _label_delay(world, fault, rng):
    task, shift = str(fault.get("task")), int(fault.get("days")) * _US_PER_DAY
    labels = world.labels
    loaded = labels[f"{task}_loaded_at"].to_numpy()
    since = _day_number(fault.get("since"))
    rows = np.flatnonzero((labels["ds"].to_numpy() >= since) & (loaded >= 0))
    moved = loaded[rows] + shift
    landed = moved < world.now_us
    col = labels.columns.get_loc(f"{task}_loaded_at")
    labels.iloc[rows[landed], col] = moved[landed]
    out = _unload(world, fault, task, rows[~landed]) if (~landed).any() else []
    days, counts = np.unique(labels["ds"].to_numpy()[rows[landed]], return_counts=True)
    # Only loaded_at moved for these rows (the event time is the same): the manifest names it.
    return out + [ManifestEntry(fault.name, fault.spec, f"{task}_loaded_at", task, "labels",
                                _date(d), int(c)) for d, c in zip(days, counts, strict=True)]


def _served_late(world, fault, rng):
    rows = _day_rows(world.online, fault.get("day"))
    col = world.online.columns.get_loc("served_at")
    served = world.online["served_at"].to_numpy()[rows]
    valid = served >= 0
    world.online.iloc[rows[valid], col] = served[valid] + int(fault.get("hours")) * 3_600 * 10**6
    return [ManifestEntry(fault.name, fault.spec, "served_at", None, "online", fault.get("day"),
                          int(valid.sum()))]


def _extreme_value(world, fault, rng):
    feature, env = str(fault.get("feature")), str(fault.get("env"))
    frame = world.frame(env)
    day_rows = _day_rows(frame, fault.get("day"))
    eligible = day_rows[~_is_default(frame[feature].to_numpy()[day_rows], feature)]
    rows = _pick(rng, eligible, float(fault.get("share")))
    return [_set_feature(world, env, fault, feature, rows,
                         np.full(len(rows), float(fault.get("value"))))]


def _label_leak(world, fault, rng):
    feature, task = str(fault.get("feature")), str(fault.get("task"))
    frame, labels = world.offline, world.labels
    positive = np.zeros(len(world.draw), dtype=bool)
    positive[labels["_row"].to_numpy()] = labels[f"{task}_ts"].to_numpy() >= 0
    out = []
    last = int(frame["ds"].max())
    for day in range(_day_number(fault.get("since")), last + 1):
        rows = _day_rows(frame, _date(day))
        values = frame[feature].to_numpy()[rows].astype(np.float64)
        usable = ~_is_default(values, feature)
        if not usable.any():
            continue
        high = np.quantile(values[usable], 0.99)
        is_pos = positive[frame["_row"].to_numpy()[rows]]
        target = rows[is_pos & usable]
        new = np.full(len(target), high)
        if FEATURE_BY_NAME[feature].kind == "int":
            new = np.rint(new)
        entry = _set_feature(world, "offline", fault, feature, target, new)
        out.append(ManifestEntry(entry.fault, entry.spec, feature, task, "offline", _date(day),
                                 entry.affected_rows))
    return out


def _volume_loss(world, fault, rng):
    env = str(fault.get("env"))
    frame = world.frame(env)
    rows = _pick(rng, _day_rows(frame, fault.get("day")), float(fault.get("share")))
    world.set_frame(env, frame.drop(index=frame.index[rows]).reset_index(drop=True))
    return [ManifestEntry(fault.name, fault.spec, None, None, env, fault.get("day"), len(rows))]


_APPLY: dict[str, Callable[..., list[ManifestEntry]]] = {
    "serving_default": _serving_default, "unit_mismatch": _unit_mismatch,
    "stale_online": _stale_online, "category_remap": _category_remap, "tz_shift": _tz_shift,
    "null_burst": _null_burst, "nan_burst": _nan_burst, "outlier_burst": _outlier_burst,
    "duplicate_keys": _duplicate_keys, "label_lag": _label_lag, "label_drop": _label_drop,
    "label_delay": _label_delay, "served_late": _served_late, "extreme_value": _extreme_value,
    "label_leak": _label_leak, "volume_loss": _volume_loss,
}


def apply_faults(world: WorldTables) -> list[ManifestEntry]:
    """Apply the configuration's faults in order; returns the ``fault_manifest`` rows."""
    manifest: list[ManifestEntry] = []
    for index, fault in enumerate(world.config.faults):
        manifest += _APPLY[fault.name](world, fault, fault_stream(world.config.seed, index))
    return manifest
