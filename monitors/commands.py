"""The monitors' command layer: ``drift``, ``skew`` and ``freshness`` as plain functions.

Each function takes a :class:`~funnelguard.project.Project`, a warehouse engine and a partition,
computes its profiles, default rates and replay join in the engine where the engine runs the
monitors' SQL (:mod:`monitors.engine_monitors`; else it reads the rows into pandas), through the
project's contracts (the features contract's tables, key and
partition column; the impressions contract's table, partition column and event time), runs the
pure checks of :mod:`monitors.drift`, :mod:`monitors.default_rate`, :mod:`monitors.skew` and
:mod:`monitors.freshness`, writes HTML reports and returns a
:class:`~funnelguard.findings.RunResult`. Storing the result, ``--json`` and the exit code are
the edge's (:func:`funnelguard.commands.execute`); the CLI (:mod:`monitors.cli`) and the DAG
tasks both call these functions by their registered names (``funnelguard.commands.JOBS``).
``store_url`` is read for history only: failing findings get "(failing since YYYY-MM-DD)".
Nothing heavy is imported at module level.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from funnelguard.project import FEATURES
from funnelguard.redaction import personal_fields

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from contracts.spec import Contract
    from funnelguard.findings import Finding, RunResult
    from funnelguard.project import Project

__all__ = ["REFERENCE_DAYS", "ENVIRONMENTS", "run_drift", "run_skew", "run_freshness",
           "report_dir"]

REFERENCE_DAYS = 7  # the trailing reference window of drift: the previous 7 partitions
ENVIRONMENTS = ("offline", "online")  # the features contract's two sides


def report_dir(html_dir: str | Path | None, partition: dt.date) -> Path:
    """``html_dir``, else ``.funnelguard/reports/<partition>/`` in the working directory.

    Raises:
        InputError: ``html_dir`` is a regular file or lies under one (checked before any
            monitor reads the warehouse, so a bad ``--html`` costs no run).
    """
    from funnelguard.output_paths import expect_folder

    if html_dir:
        return expect_folder("--html", html_dir)
    return expect_folder("the report folder",
                         Path(".funnelguard") / "reports" / partition.isoformat())


def _sample_size(sample_size: int | None) -> int:
    """``--sample-size``: None for the default, else more than ``LARGE_SAMPLE_ROWS`` rows."""
    from funnelguard.errors import InputError
    from monitors import drift

    if sample_size is None:
        return drift.DEFAULT_SAMPLE_SIZE
    if isinstance(sample_size, bool) or sample_size <= drift.LARGE_SAMPLE_ROWS:
        raise InputError(f"--sample-size: expected a number of rows above "
                         f"{drift.LARGE_SAMPLE_ROWS} (Evidently's distance tests need more "
                         f"than that), found {sample_size}")
    return sample_size


def _partition(partition: dt.date | str) -> dt.date:
    from funnelguard.warehouse import parse_date

    return parse_date(partition)


def _shape(contract: Contract, environments: Sequence[str] = ENVIRONMENTS) -> tuple[str, str]:
    """(key column, partition column) of ``contract``, checked to have ``environments``' tables."""
    from monitors.errors import ContractShapeError

    missing = [e for e in environments if e not in contract.tables]
    if missing:
        raise ContractShapeError(contract.name, contract.path,
                                 f"a table for each of the environments {list(environments)}",
                                 f"tables {dict(contract.tables)}")
    try:
        return contract.key_column, contract.partition_column
    except KeyError as exc:
        raise ContractShapeError(contract.name, contract.path,
                                 "a property with `primaryKey: true` and one with "
                                 "`partitioned: true`", str(exc.args[0])) from None


def _segments(project: Project, contract: Contract, environment: str) -> list[str]:
    """The project's segments that are columns of ``contract``'s table for ``environment``."""
    present = {f.name for f in contract.fields_for(environment)}
    return [s for s in project.segments if s in present]


def _columns(contract: Contract, environment: str, roles: Sequence[str], key: str,
             segments: Sequence[str]) -> list[str]:
    names = [key] + [f.name for f in contract.fields_for(environment) if f.role in roles]
    return list(dict.fromkeys([*names, *segments]))


def _read_day(engine: Engine, contract: Contract, environment: str, partition: dt.date,
              columns: Sequence[str]) -> pd.DataFrame:
    """One partition of ``contract``'s table for ``environment``; it must have rows."""
    from funnelguard.warehouse import read_partition
    from monitors.errors import EmptyPartition

    table = contract.table(environment)
    frame = read_partition(engine, table, partition, columns,
                           partition_column=contract.partition_column,
                           timestamps=contract.timestamp_columns(environment))
    if frame.empty:
        raise EmptyPartition(table, partition.isoformat(),
                             engine.url.render_as_string(hide_password=True),
                             partition_column=contract.partition_column)
    return frame


def _since(findings: Sequence[Finding], store_url: str | None, partition: dt.date,
           dataset: str) -> list[Finding]:
    """Failing findings get "(failing since ...)" from the store (no store: unchanged)."""
    if store_url is None or all(f.passed for f in findings):
        return list(findings)
    from monitors.freshness import with_since
    from monitors.store import open_store

    return with_since(findings, open_store(store_url), partition.isoformat(), dataset)


def run_drift(project: Project, engine: Engine, partition: dt.date | str, *,
              store_url: str | None = None, html_dir: str | Path | None = None,
              sample_size: int | None = None, multivariate: bool = False) -> RunResult:
    """Drift of every contract feature (3 comparisons) and default-value rates by segment.

    Comparisons: online vs offline of the same day (severity: the field's ``drift`` policy,
    default the contract's), and each environment vs its previous :data:`REFERENCE_DAYS`
    partitions (``warning`` unless the field names a ``drift`` policy).

    Args:
        project: the project; its features contract names the tables, key, partition column,
            features, defaults and segments.
        engine: the warehouse.
        partition: the partition to check.
        store_url: results store to read "failing since" from (None: not annotated).
        html_dir: where the HTML reports go (default ``.funnelguard/reports/<partition>/``).
        sample_size: rows per column the drift tests use (default 20000, above 1000).
        multivariate: also a domain classifier per environment, the day vs its window
            (check ``drift_multivariate``, :mod:`monitors.multivariate`).

    The window comparisons adjust features that grow with time (``driftTrend``) and hold
    distances to the window's own day-to-day noise (:mod:`monitors.drift_window`).

    Raises:
        InputError: ``sample_size`` of 1000 rows or fewer, or ``html_dir`` a regular file
            (both checked before anything is read).
        EmptyPartition: the partition has no rows offline or online.
        ContractShapeError: the features contract lacks an environment, key or partition.
    """
    from contracts.spec import CheckPolicy
    from funnelguard.findings import Finding, RunResult
    from monitors import default_rate as dr
    from monitors import drift
    from monitors.reports import write_evidently_drift, write_summary
    from monitors.skew import SKEW_ROLES, align_replay

    partition = _partition(partition)
    sample_size = _sample_size(sample_size)
    out_dir = report_dir(html_dir, partition)
    contract = project.features
    key, _ = _shape(contract)
    roles = tuple(dict.fromkeys((*drift.DRIFT_ROLES, *SKEW_ROLES)))
    first, last = partition - dt.timedelta(days=REFERENCE_DAYS), partition - dt.timedelta(days=1)
    frames, windows, targets, profiles = {}, {}, {}, {}
    from funnelguard.progress import progress
    from monitors import engine_monitors

    # per environment: the day and its window profiled (in the engine where it runs SQL,
    # else read and profiled in memory), then the window compared
    in_engine = engine_monitors.runs_in_engine(engine)
    bar = progress(2 * len(ENVIRONMENTS) + 1, "drift", unit="stage")
    for env in ENVIRONMENTS:
        targets[env] = drift.drift_targets(contract, (env,))
        if in_engine:
            profiles[env], windows[env] = engine_monitors.profiles_in_engine(
                project, engine, env, partition, first, last, targets[env],
                sample_size=sample_size)
            bar.update(1)
            continue
        cols = _columns(contract, env, roles, key, _segments(project, contract, env))
        frames[env] = _read_day(engine, contract, env, partition, cols)
        window_rows = project.read(engine, FEATURES, env, first, last, cols)
        windows[env] = None if window_rows.empty else drift.profile_frame(
            window_rows, targets[env], sample_size=sample_size, seed=2)
        profiles[env] = drift.profile_frame(frames[env], targets[env], sample_size=sample_size,
                                            seed=1 if env == "online" else 0)
        bar.update(1)
    both = drift.drift_targets(contract, ENVIRONMENTS)
    results = {"online_vs_offline": drift.compare_profiles(profiles["offline"], profiles["online"],
                                                           both, "online_vs_offline")}
    bar.update(1)
    from monitors.drift_window import window_drift

    window_profiles, slopes = {}, {}
    findings: list[Finding] = []
    for env in ENVIRONMENTS:
        if windows[env] is None:
            findings.append(Finding(
                check="drift", passed=True, severity="info", environment=env, dataset=contract.name,
                message=f"no reference window: {contract.table(env)} has no rows from {first} to {last}"))
            continue
        window_profiles[env], results[env], slopes[env] = window_drift(
            project, engine, env, partition, windows[env], profiles[env], targets[env],
            sample_size=sample_size, in_engine=in_engine)
        bar.update(1)
    bar.close()
    # Same-day online vs offline drift is training/serving skew: the contract's policy (error).
    # Drift against the trailing window is often a real change in the population (a day's mix
    # of users), so it warns unless the field's contract names a drift policy.
    same_day = {f.name: f.policy("drift", contract.default_policy) for f in contract.fields}
    window = {f.name: f.policy("drift", CheckPolicy(severity="warning")) for f in contract.fields}
    for env, env_results in results.items():
        findings += drift.drift_findings(
            env_results, dataset=contract.name,
            policies=same_day if env == "online_vs_offline" else window,
            reference_label=f"the window {first}..{last}")
    if in_engine:
        rates, causes = engine_monitors.default_rates_in_engine(project, engine, partition)
    else:
        alignment = align_replay(frames["offline"], frames["online"], key=key)
        segments = _segments(project, contract, "offline")
        rates = dr.default_rates(frames["offline"], frames["online"], contract,
                                 alignment=alignment, segments=segments)
        causes = dr.default_rate_causes(frames["offline"], frames["online"], contract, rates,
                                        alignment=alignment, segments=segments)
    findings += dr.default_rate_findings(rates, contract, causes)
    multivariate_metrics = []
    if multivariate:
        from monitors.multivariate import multivariate_checks

        found, multivariate_metrics = multivariate_checks(project, engine, partition, slopes)
        findings += found
    findings = _since(findings, store_url, partition, contract.name)

    artifacts: dict[str, str] = {}
    sides = {"online_vs_offline": (profiles["offline"], profiles["online"], both)}
    for env, window_profile in window_profiles.items():
        sides[env] = (window_profile, profiles[env], targets[env])
    for env, (reference, current, env_targets) in sides.items():
        written = write_evidently_drift(out_dir / f"drift_{env}.html", reference, current,
                                        env_targets, results[env])
        if written:
            artifacts[f"evidently_drift_{env}"] = written
    artifacts["drift_report"] = write_summary(
        out_dir / "drift.html", f"{contract.name} drift and default rates, {partition}",
        findings, links=dict(artifacts), personal=personal_fields(project.contracts.values()))
    metrics = [m for r in results.values() for m in drift.drift_metrics(r)]
    metrics += dr.default_rate_metrics(rates) + multivariate_metrics
    return RunResult(command="drift", partition=partition.isoformat(), findings=tuple(findings),
                     dataset=contract.name, metrics=tuple(metrics), artifacts=artifacts)


def run_skew(project: Project, engine: Engine, partition: dt.date | str, *,
             store_url: str | None = None, html_dir: str | Path | None = None) -> RunResult:
    """Replay skew of one partition: matched, mismatched, one-sided and duplicate keys.

    The offline and online tables of the features contract are joined on its key; mismatches
    are broken down by the project's segments (a row's offline value).

    Args:
        project: the project (its features contract).
        engine: the warehouse.
        partition: the partition to check.
        store_url: results store to read "failing since" from (None: not annotated).
        html_dir: where ``skew.html`` goes (default ``.funnelguard/reports/<partition>/``).

    Raises:
        InputError: ``html_dir`` is a regular file (checked before anything is read).
        EmptyPartition: the partition has no rows offline or online.
        ContractShapeError: the features contract lacks an environment, key or partition.
    """
    from funnelguard.findings import RunResult
    from monitors.reports import write_summary
    from monitors.skew import SKEW_ROLES, replay_skew, skew_findings, skew_metrics

    partition = _partition(partition)
    out_dir = report_dir(html_dir, partition)
    contract = project.features
    key, _ = _shape(contract)
    from monitors import engine_monitors

    if engine_monitors.runs_in_engine(engine):
        report = engine_monitors.replay_skew_in_engine(project, engine, partition)
    else:
        frames = {env: _read_day(engine, contract, env, partition,
                                 _columns(contract, env, SKEW_ROLES, key,
                                          _segments(project, contract, env)))
                  for env in ENVIRONMENTS}
        report = replay_skew(frames["offline"], frames["online"], contract, key=key,
                             segments=_segments(project, contract, "offline"))
    findings = _since(skew_findings(report, contract), store_url, partition, contract.name)
    path = write_summary(out_dir / "skew.html",
                         f"{contract.name} replay skew, {partition} (features ranked by mismatch rate)",
                         findings, personal=personal_fields(project.contracts.values()))
    return RunResult(command="skew", partition=partition.isoformat(), findings=tuple(findings),
                     dataset=contract.name, metrics=tuple(skew_metrics(report)),
                     artifacts={"skew_report": path})


def _event_table(contract: Contract, event_time: str) -> str:
    """The impressions contract's table that carries the event time (its first, else)."""
    for env, table in contract.tables.items():
        if any(f.name == event_time for f in contract.fields_for(env)):
            return table
    return next(iter(contract.tables.values()))


def run_freshness(project: Project, engine: Engine, partition: dt.date | str, *,
                  store_url: str | None = None, html_dir: str | Path | None = None,
                  observed_at: dt.datetime | None = None) -> RunResult:
    """Arrival and volume of each features table; latest event time of the impressions;
    arrival against the contracts' latency SLA (``freshness_sla``, :mod:`monitors.arrival`).

    ``freshness_arrival`` and ``volume`` per environment of the features contract (counted by
    its partition column); ``freshness_latest_event`` on the impressions contract's table, by
    its partition column and the project's event time (the labels' ``countsFrom``), with
    ``dataset`` = the impressions contract's name. A partition that has not arrived is a
    finding, not an error.

    Args:
        project: the project (features and impressions contracts).
        engine: the warehouse.
        partition: the partition to check.
        store_url: results store to read "failing since" and earlier arrival observations from
            (None: not annotated, no earlier observation).
        html_dir: where ``freshness.html`` goes (default ``.funnelguard/reports/<partition>/``).
        observed_at: when this run looks (default now, UTC): a table without a landing column
            arrived when a freshness run first saw its rows.

    Raises:
        InputError: ``html_dir`` is a regular file (checked before anything is read).
        ContractShapeError: a contract lacks its partition column or tables.
        InputError: a table or column the contract names is missing from the warehouse.
    """
    import sqlalchemy as sa

    from funnelguard.findings import Finding, RunResult
    from monitors import freshness as fr
    from monitors.arrival import check_arrivals
    from monitors.reports import write_summary

    partition = _partition(partition)
    out_dir = report_dir(html_dir, partition)
    contract = project.features
    _, part_col = _shape(contract, tuple(contract.tables) or ENVIRONMENTS)
    findings: list[Finding] = []
    rows: dict[str, int] = {}
    for env, table in contract.tables.items():
        facts = fr.read_partition_facts(engine, table, partition, partition_column=part_col)
        rows[table] = facts.rows
        findings.append(fr.arrival_finding(facts, partition, environment=env, dataset=contract.name))
        findings.append(fr.volume_finding(
            fr.volume_check(facts.history, facts.rows, partition=partition), table,
            environment=env, dataset=contract.name))
    impressions, event_time = project.impressions, project.event_time
    _, imp_part = _shape(impressions, tuple(impressions.tables) or ENVIRONMENTS[:1])
    table = _event_table(impressions, event_time)
    if sa.inspect(engine).has_table(table):
        facts = fr.read_partition_facts(engine, table, partition, partition_column=imp_part,
                                        timestamp=event_time)
        rows[table] = facts.rows
        findings.append(fr.latest_event_finding(facts, partition, event_time,
                                                dataset=impressions.name))
    else:
        findings.append(Finding(
            check="freshness_latest_event", passed=True, severity="info", dataset=impressions.name,
            message=(f"not checked: the impressions contract's table {table!r} is not in the "
                     "warehouse")))
    absent = [t for t in impressions.tables.values() if t not in rows
              and not sa.inspect(engine).has_table(t)]
    on_time, arrival_metrics = check_arrivals(project, engine, partition, rows,
                                              store_url=store_url, observed_at=observed_at,
                                              skip=absent)
    findings += on_time
    findings = _since(findings, store_url, partition, contract.name)
    path = write_summary(out_dir / "freshness.html",
                         f"{contract.name} freshness, {partition}", findings,
                         personal=personal_fields(project.contracts.values()))
    return RunResult(command="freshness", partition=partition.isoformat(),
                     findings=tuple(findings), dataset=contract.name,
                     metrics=tuple(arrival_metrics), artifacts={"freshness_report": path})
