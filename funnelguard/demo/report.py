"""What the demo prints: the warehouse it built, and a summary generated from the results store.

The summary is read back from the store (not from the DAG runs' memory), so it shows what a
person would find there the next morning: which checks passed, what was flagged and for whom,
whether training ran and where the reports and the published model are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from funnelguard.orchestration.readiness import SNAPSHOT_COMMANDS

__all__ = ["warehouse_lines", "print_warehouse", "airflow_lines", "summary_lines", "print_summary"]

SHOWN = 3  # failing findings shown per run; the reports have them all


def _project_tables(project) -> list[tuple[str, str]]:
    """(table, partition column) of every table the project's contracts name, in order."""
    tables: dict[str, str] = {}
    for contract in project.contracts.values():
        for table in contract.tables.values():
            tables.setdefault(table, contract.partition_column)
    oracle = project.defaults.get("oracle_table")
    if oracle:
        tables.setdefault(oracle, project.impressions.partition_column)
    return list(tables.items())


def warehouse_lines(url: str, project=None) -> list[str]:
    """Row counts and partition range of the project's tables, and the simulator's fault
    manifest when there is one.

    Args:
        url: the warehouse.
        project: whose contracts name the tables (default: the packaged demo project).
    """
    from funnelguard.project import PACKAGED_PROJECT, load_project
    from funnelguard.warehouse import connect

    project = project or load_project(PACKAGED_PROJECT)
    engine = connect(url)
    insp = sa.inspect(engine)
    quote = engine.dialect.identifier_preparer.quote
    lines = [f"Warehouse {url}"]
    with engine.connect() as conn:
        for table, part in _project_tables(project):
            if not insp.has_table(table):
                continue
            p = quote(part)
            n, first, last, days = conn.execute(sa.text(
                f"SELECT COUNT(*), MIN({p}), MAX({p}), COUNT(DISTINCT {p}) "
                f"FROM {quote(table)}")).one()
            lines.append(f"  {table:<17} {n:>9,} rows  {days:>3} partitions  {first} .. {last}")
        if insp.has_table("fault_manifest"):
            rows = conn.execute(sa.text(
                "SELECT fault, spec, feature, task, environment, ds, affected_rows "
                "FROM fault_manifest ORDER BY id")).all()
            lines.append(f"  faults injected: {len(rows) or 'none'}")
            for fault, spec, feature, task, env, ds, n in rows:
                about = ", ".join(x for x in (feature, task, env) if x)
                lines.append(f"    {fault} ({about}) on {ds}: {n:,} rows changed  [{spec}]")
    engine.dispose()
    return lines


def print_warehouse(url: str, project=None) -> None:
    print("\n".join(warehouse_lines(url, project)), flush=True)


def _owner(run, feature: str | None) -> str:
    """`` → team @mention`` of ``feature``, from the contracts the run used."""
    if not feature:
        return ""
    try:
        from funnelguard.project import PACKAGED_PROJECT, load_project

        owner = load_project(run.project or PACKAGED_PROJECT).owner_of(run.dataset, feature)
    except Exception:  # noqa: BLE001 - an owner is a nicety in a summary, never a failure
        return ""
    return f" → {owner.team} {owner.mention}".rstrip() if owner else ""


def _run_lines(store, commands: Sequence[str], partitions: Sequence[str] | None = None) -> list[str]:
    from monitors.store.models import FindingRow, Run

    lines: list[str] = []
    with store.session() as s:
        runs = list(s.scalars(sa.select(Run).where(Run.command.in_(commands))
                              .order_by(Run.partition, Run.id)))
        for partition in partitions or sorted({r.partition for r in runs}):
            mine = [r for r in runs if r.partition == partition]
            if not mine:
                continue
            verdicts = ", ".join(
                f"{r.command}{' ' + r.dataset if r.command == 'validate' else ''}"
                f"{'/' + r.environment if r.environment else ''} "
                f"{r.status.upper() if r.status != 'pass' else 'pass'}" for r in mine)
            lines.append(f"  {partition}: {verdicts}")
            for r in mine:
                failed = list(s.scalars(sa.select(FindingRow).where(
                    FindingRow.run_id == r.id, FindingRow.passed.is_(False))
                    .order_by(FindingRow.severity, FindingRow.id)))
                passed = s.scalar(sa.select(sa.func.count()).where(
                    FindingRow.run_id == r.id, FindingRow.passed.is_(True)))
                if r.status == "error":
                    lines.append(f"      {r.command}: could not run: {r.error_message}")
                for f in failed[:SHOWN]:
                    where = " ".join(x for x in (f.environment, f.feature, f.task, f.segment) if x)
                    message = " ".join(f.message.split())
                    lines.append(f"      {f.severity.upper():<7} {r.command} {f.check} {where}: "
                                 f"{message[:240]}{_owner(r, f.feature)}")
                if len(failed) > SHOWN:
                    lines.append(f"      ... and {len(failed) - SHOWN} more not passed in "
                                 f"{r.command} (see the reports)")
                if failed:
                    lines.append(f"      ({passed} checks of {r.command} passed)")
    return lines


def _nightly_lines(store, states: Sequence[tuple[str, str, str]]) -> list[str]:
    """Per nightly run: held (and why, from the store), or its gate/train/evaluate verdicts."""
    import datetime as dt

    from funnelguard.orchestration.readiness import snapshot_readiness

    lines: list[str] = []
    for dag_id, partition, state in states:
        if "nightly" not in dag_id:
            continue
        as_of = (dt.date.fromisoformat(partition) + dt.timedelta(days=1)).isoformat()
        lines.append(f"  partition {partition} (as of {as_of}): {state}")
        readiness = snapshot_readiness(store, partition)
        if not readiness.ready:
            reason = readiness.describe().splitlines()[0].rstrip(":")
            lines.append(f"      held before the gate: {reason} (listed above)")
            continue
        lines += _run_lines(store, ("gate", "train", "evaluate"), [as_of])[1:]
    return lines


def _model_lines(store) -> list[str]:
    from monitors.store.models import ModelRow, TrainingRun

    lines = []
    with store.session() as s:
        for t in s.scalars(sa.select(TrainingRun).order_by(TrainingRun.id)):
            verdict = f", guard: {t.anomaly} → triage {t.verdict}" if t.anomaly else ""
            lines.append(f"  training as of {t.as_of}: {t.status}{verdict} ({t.out_dir})")
        for m in s.scalars(sa.select(ModelRow).order_by(ModelRow.id)):
            lines.append(f"  model {m.version}{' (champion)' if m.is_champion else ''}: {m.path}")
    return lines or ["  no model published"]


def airflow_lines(runs: Sequence[Any], airflow_home: Path | None = None) -> list[str]:
    """Where the runs are in Airflow: run ids and notes, the task log files, the site links."""
    import os

    files = [p for r in runs for p in r.log_files]
    present = [p for p in files if p.is_file()]
    lines = ["Airflow (`make airflow` shows these runs"
             + (f"; AIRFLOW_HOME={airflow_home}" if airflow_home else "") + "):"]
    lines += [f"  {r.dag_id:<32} run {r.run_id}  note: {r.note}" for r in runs]
    if present:
        base = os.path.commonpath([str(p) for p in present])
        lines.append(f"  task logs: {len(present)} files (one per task try) under {base}, e.g.")
        example = next((p for p in present if "map_index=" in str(p)), present[0])
        lines.append(f"    {example}")
    else:
        lines.append("  task logs: none written")
    if len(present) < len(files):
        lines.append(f"  ({len(files) - len(present)} task logs missing)")
    base_url = os.environ.get("FUNNELGUARD_BASE_URL", "").strip()
    lines.append(
        f"  results site: each check task's \"Results site\" link opens {base_url}/runs/<id>.html"
        if base_url else
        "  results site: the check tasks' logs name their page (runs/<id>.html); set "
        "FUNNELGUARD_BASE_URL to where `funnelguard site build` is published to link it")
    return lines


def summary_lines(store_url: str, output: Path, runs: Sequence[Any],
                  slack: Sequence[dict[str, Any]] | None, *,
                  airflow_home: Path | None = None) -> list[str]:
    """The demo's closing summary (see the module docstring).

    Args:
        store_url: the results store the summary is read from.
        output: the demo's output folder (reports).
        runs: the DAG runs (:class:`funnelguard.demo.dag_test.DagTestRun`).
        slack: what the Slack sink received (None: a real connection was used).
        airflow_home: the demo's Airflow home, named in the Airflow lines.
    """
    from funnelguard.demo.slack_sink import message_text
    from monitors.store import open_store

    store = open_store(store_url)
    states = [(r.dag_id, r.partition, r.state) for r in runs]
    lines = ["", "=" * 78, "funnelguard demo summary (from the results store "
             f"{store_url})", "=" * 78, "DAG runs:"]
    lines += [f"  {dag:<32} {partition}  {state}" for dag, partition, state in states]
    lines += ["Snapshot checks by partition (failures with their owners):",
              *_run_lines(store, SNAPSHOT_COMMANDS)]
    lines += ["Nightly training:", *_nightly_lines(store, states)]
    lines += ["Training runs and models:", *_model_lines(store)]
    reports = sorted(output.glob("reports/**/*.html"))
    lines.append(f"Reports: {len(reports)} HTML files under {output / 'reports'}")
    lines += [f"  {p.relative_to(output)}" for p in reports[:8]]
    lines += airflow_lines(runs, airflow_home)
    if slack is not None:
        kinds = Counter("failure notice" if "failed" in message_text(b)[:200] else "alert"
                        for b in slack)
        lines.append(f"Slack (local sink): {len(slack)} messages received "
                     f"({', '.join(f'{n} {k}' for k, n in kinds.items()) or 'none'})")
        for body in slack:
            text = " ".join(message_text(body).split())
            lines.append(f"  > {text[:300]}{'…' if len(text) > 300 else ''}")
    return lines


def print_summary(store_url: str, output: Path, runs: Sequence[Any],
                  slack: Sequence[dict[str, Any]] | None, *,
                  airflow_home: Path | None = None) -> None:
    print("\n".join(summary_lines(store_url, output, runs, slack, airflow_home=airflow_home)),
          flush=True)
