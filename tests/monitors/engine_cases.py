"""Both paths of the drift, default-rate and skew monitors on one partition, side by side.

``in_memory(...)`` reads the partition's rows and runs :mod:`monitors.drift`,
:mod:`monitors.default_rate` and :mod:`monitors.skew` as the monitors did before they ran in
the engine; ``in_engine(...)`` runs :mod:`monitors.engine_profile`, :mod:`monitors.engine_rates`
and :mod:`monitors.engine_skew` on the same warehouse. Tests compare what they decide.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from monitors import default_rate as dr
from monitors import drift
from monitors.skew import align_replay, replay_skew

ENVS = ("offline", "online")
WINDOW = 7


@dataclass(frozen=True)
class Decisions:
    drift: dict  # (comparison, feature) -> DriftResult
    rates: tuple
    causes: dict
    skew: object


def _columns(contract, env):
    return [f.name for f in contract.fields_for(env)]


def _segments(project, contract):
    present = set(_columns(contract, "offline"))
    return [s for s in project.segments if s in present]


def _compare(profiles, windows, contract):
    both = drift.drift_targets(contract, ENVS)
    results = list(drift.compare_profiles(profiles["offline"], profiles["online"], both,
                                          "online_vs_offline"))
    for env in ENVS:
        results += drift.compare_profiles(windows[env], profiles[env],
                                          drift.drift_targets(contract, (env,)), env)
    return {(r.environment, r.feature): r for r in results}


def in_memory(project, engine, day: dt.date, sample_size: int = drift.DEFAULT_SAMPLE_SIZE):
    contract = project.features
    first, last = day - dt.timedelta(days=WINDOW), day - dt.timedelta(days=1)
    frames = {e: project.read(engine, "features", e, day) for e in ENVS}
    window = {e: project.read(engine, "features", e, first, last) for e in ENVS}
    profiles = {e: drift.profile_frame(frames[e], drift.drift_targets(contract, (e,)),
                                       sample_size=sample_size, seed=int(e == "online"))
                for e in ENVS}
    windows = {e: drift.profile_frame(window[e], drift.drift_targets(contract, (e,)),
                                      sample_size=sample_size, seed=2) for e in ENVS}
    segments = _segments(project, contract)
    alignment = align_replay(frames["offline"], frames["online"], key=contract.key_column)
    rates = dr.default_rates(frames["offline"], frames["online"], contract, alignment=alignment,
                             segments=segments)
    causes = dr.default_rate_causes(frames["offline"], frames["online"], contract, rates,
                                    alignment=alignment, segments=segments)
    skew = replay_skew(frames["offline"], frames["online"], contract, segments=segments)
    return Decisions(_compare(profiles, windows, contract), rates, causes, skew)


def in_engine(project, engine, day: dt.date, sample_size: int = drift.DEFAULT_SAMPLE_SIZE):
    from monitors.engine_profile import TableRange, profile_table
    from monitors.engine_rates import engine_default_rates
    from monitors.engine_skew import engine_replay_skew
    from monitors.engine_sql import dialect_of

    contract = project.features
    dialect = dialect_of(engine)
    first, last = day - dt.timedelta(days=WINDOW), day - dt.timedelta(days=1)

    def rng(env, start, end):
        return TableRange(contract.table(env), start, end, contract.partition_column,
                          contract.key_column, dialect)

    profiles = {e: profile_table(engine, rng(e, day, day), drift.drift_targets(contract, (e,)),
                                 sample_size=sample_size, seed=int(e == "online")) for e in ENVS}
    windows = {e: profile_table(engine, rng(e, first, last), drift.drift_targets(contract, (e,)),
                                sample_size=sample_size, seed=2) for e in ENVS}
    columns = {e: _columns(contract, e) for e in ENVS}
    segments = _segments(project, contract)
    rates, causes = engine_default_rates(engine, contract, day, segments=segments,
                                         offline_columns=columns["offline"],
                                         online_columns=columns["online"])
    skew = engine_replay_skew(engine, contract, day, segments=segments,
                              offline_columns=columns["offline"],
                              online_columns=columns["online"])
    return Decisions(_compare(profiles, windows, contract), rates, causes, skew)


def by_segment(rates):
    return sorted(rates, key=lambda r: (r.feature, r.segment or ""))


def finding_key(f):
    return (f.check, f.feature or "", f.segment or "", f.environment or "")
