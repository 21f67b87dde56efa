"""``funnelguard drift``, ``funnelguard skew`` and ``funnelguard freshness``: the monitors' edge.

Each handler reads one partition (and, for drift and freshness, its trailing history) from the
warehouse, calls the pure checks, writes HTML reports to ``--html DIR`` (default
``.funnelguard/reports/<partition>/``), adds "since YYYY-MM-DD" to failing findings from the
results store and returns a :class:`~funnelguard.findings.RunResult`; the CLI edge stores it and
maps it to the exit code. ``drift`` also carries the default-value rates (the "drift and
default-value-rate report"). Nothing heavy is imported at module level.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

__all__ = ["register", "run_drift", "run_skew", "run_freshness", "REFERENCE_DAYS"]

REFERENCE_DAYS = 7  # the trailing reference window of drift: the previous 7 partitions
KEY = "impression_id"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``drift``, ``skew`` and ``freshness`` to the ``funnelguard`` command."""
    from funnelguard.cli import add_common_flags

    commands = (
        ("drift", run_drift, "feature drift (online vs offline, each vs the previous "
                             f"{REFERENCE_DAYS} partitions) and default-value rates by segment"),
        ("skew", run_skew, "replay skew: offline vs online features of the same impressions"),
        ("freshness", run_freshness, "partition arrival, volume against history, latest event_ts"),
    )
    for name, handler, help_text in commands:
        parser = subparsers.add_parser(name, help=help_text, description=help_text)
        add_common_flags(parser, contract="ranking_features.yaml")
        parser.add_argument("--html", default=None, metavar="DIR",
                            help="write HTML reports here (default .funnelguard/reports/<date>/)")
        if name == "drift":
            parser.add_argument("--sample-size", type=int, default=None, metavar="N",
                                help="rows per column the drift tests use (default 20000, > 1000)")
        parser.set_defaults(handler=handler, command_name=name)


def _setup(args: argparse.Namespace) -> tuple[Any, Any, dt.date, Path]:
    from contracts import load_contract
    from funnelguard.warehouse import connect, parse_date

    partition = parse_date(args.date)
    contract = load_contract(args.contract or "ranking_features")
    engine = connect(args.warehouse)
    html_dir = Path(args.html) if args.html else Path(".funnelguard") / "reports" / partition.isoformat()
    return contract, engine, partition, html_dir


def _read(engine, table: str, partition: dt.date, columns: list[str], *, days: int = 0):
    from funnelguard.warehouse import read_partition, read_range

    if days:
        return read_range(engine, table, partition - dt.timedelta(days=days),
                          partition - dt.timedelta(days=1), columns)
    frame = read_partition(engine, table, partition, columns)
    if frame.empty:
        from monitors.errors import EmptyPartition

        raise EmptyPartition(table, partition.isoformat(), engine.url.render_as_string(hide_password=True))
    return frame


def _columns(contract, environment: str, roles: tuple[str, ...]) -> list[str]:
    names = [KEY] + [f.name for f in contract.fields_for(environment) if f.role in roles]
    names += [s for s in contract.segments if s not in names]
    return list(dict.fromkeys(names))


def _since(findings, args, partition: str, dataset: str):
    from funnelguard.cli import default_store_url
    from monitors.freshness import with_since
    from monitors.store import open_store

    if not any(not f.passed for f in findings):
        return list(findings)
    return with_since(findings, open_store(args.store or default_store_url()), partition, dataset)


def run_drift(args: argparse.Namespace):
    """Drift of every contract feature (3 comparisons) and default-value rates by segment."""
    from funnelguard.findings import Finding, RunResult
    from monitors import default_rate as dr
    from monitors import drift
    from monitors.reports import write_evidently_drift, write_summary
    from monitors.skew import SKEW_ROLES, align_replay

    contract, engine, partition, html_dir = _setup(args)
    sample_size = args.sample_size or drift.DEFAULT_SAMPLE_SIZE
    roles = tuple(set(drift.DRIFT_ROLES) | set(SKEW_ROLES))
    frames, windows, targets, profiles = {}, {}, {}, {}
    for env in ("offline", "online"):
        table = contract.table(env)
        cols = _columns(contract, env, roles)
        frames[env] = _read(engine, table, partition, cols)
        windows[env] = _read(engine, table, partition, cols, days=REFERENCE_DAYS)
        targets[env] = drift.drift_targets(contract, (env,))
        profiles[env] = drift.profile_frame(frames[env], targets[env], sample_size=sample_size,
                                            seed=1 if env == "online" else 0)
    both = drift.drift_targets(contract, ("offline", "online"))
    results = {"online_vs_offline": drift.compare_profiles(profiles["offline"], profiles["online"],
                                                           both, "online_vs_offline")}
    window_profiles = {}
    first, last = partition - dt.timedelta(days=REFERENCE_DAYS), partition - dt.timedelta(days=1)
    findings = []
    for env in ("offline", "online"):
        if windows[env].empty:
            findings.append(Finding(
                check="drift", passed=True, severity="info", environment=env, dataset=contract.name,
                message=f"no reference window: {contract.table(env)} has no rows from {first} to {last}"))
            continue
        window_profiles[env] = drift.profile_frame(windows[env], targets[env],
                                                   sample_size=sample_size, seed=2)
        results[env] = drift.compare_profiles(window_profiles[env], profiles[env], targets[env], env)
    from contracts.spec import CheckPolicy

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
    alignment = align_replay(frames["offline"], frames["online"])
    rates = dr.default_rates(frames["offline"], frames["online"], contract, alignment=alignment)
    findings += dr.default_rate_findings(rates, contract)
    findings = _since(findings, args, partition.isoformat(), contract.name)

    artifacts: dict[str, str] = {}
    sides = {"online_vs_offline": (profiles["offline"], profiles["online"], both)}
    for env, window_profile in window_profiles.items():
        sides[env] = (window_profile, profiles[env], targets[env])
    for env, (reference, current, env_targets) in sides.items():
        written = write_evidently_drift(html_dir / f"drift_{env}.html", reference, current,
                                        env_targets, results[env])
        if written:
            artifacts[f"evidently_drift_{env}"] = written
    artifacts["drift_report"] = write_summary(
        html_dir / "drift.html", f"{contract.name} drift and default rates, {partition}",
        findings, links=dict(artifacts))
    metrics = [m for r in results.values() for m in drift.drift_metrics(r)]
    metrics += dr.default_rate_metrics(rates)
    return RunResult(command="drift", partition=partition.isoformat(), findings=tuple(findings),
                     dataset=contract.name, metrics=tuple(metrics), artifacts=artifacts)


def run_skew(args: argparse.Namespace):
    """Replay skew of one partition: matched, mismatched, one-sided, duplicate keys."""
    from funnelguard.findings import RunResult
    from monitors.reports import write_summary
    from monitors.skew import SKEW_ROLES, replay_skew, skew_findings, skew_metrics

    contract, engine, partition, html_dir = _setup(args)
    offline = _read(engine, contract.table("offline"), partition,
                    _columns(contract, "offline", SKEW_ROLES))
    online = _read(engine, contract.table("online"), partition,
                   _columns(contract, "online", SKEW_ROLES))
    report = replay_skew(offline, online, contract)
    findings = _since(skew_findings(report, contract), args, partition.isoformat(), contract.name)
    path = write_summary(html_dir / "skew.html",
                         f"{contract.name} replay skew, {partition} (features ranked by mismatch rate)",
                         findings)
    return RunResult(command="skew", partition=partition.isoformat(), findings=tuple(findings),
                     dataset=contract.name, metrics=tuple(skew_metrics(report)),
                     artifacts={"skew_report": path})


def run_freshness(args: argparse.Namespace):
    """Arrival and volume of each environment's table; latest event_ts of the impressions."""
    import sqlalchemy as sa

    from funnelguard.findings import RunResult
    from monitors import freshness as fr
    from monitors.reports import write_summary

    contract, engine, partition, html_dir = _setup(args)
    findings = []
    for env in ("offline", "online"):
        table = contract.table(env)
        facts = fr.read_partition_facts(engine, table, partition)
        findings.append(fr.arrival_finding(facts, partition, environment=env, dataset=contract.name))
        findings.append(fr.volume_finding(fr.volume_check(facts.history, facts.rows), table,
                                          environment=env, dataset=contract.name))
    if sa.inspect(engine).has_table("impressions"):
        facts = fr.read_partition_facts(engine, "impressions", partition, timestamp="event_ts")
        findings.append(fr.latest_event_finding(facts, partition, "event_ts", dataset=contract.name))
    findings = _since(findings, args, partition.isoformat(), contract.name)
    path = write_summary(html_dir / "freshness.html", f"{contract.name} freshness, {partition}",
                         findings)
    return RunResult(command="freshness", partition=partition.isoformat(),
                     findings=tuple(findings), dataset=contract.name,
                     artifacts={"freshness_report": path})
