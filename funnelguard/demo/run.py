"""``make demo``: two simulated nights of the funnelguard jobs, run through Airflow.

1. Builds a simulated SQLite warehouse (``.funnelguard/demo/warehouse.db``) with a fault in the
   last partition: the online pipeline serves the default ``approval_odds`` to android users.
2. Prepares a project-local Airflow (``AIRFLOW_HOME=.funnelguard/airflow``, SQLite metadata DB,
   ``airflow db migrate``) whose connections point at the demo warehouse, a demo results store
   and — unless ``AIRFLOW_CONN_FUNNELGUARD_SLACK`` is already set — a Slack sink on 127.0.0.1.
3. Night one (the day before the fault): both snapshot DAGs, then the nightly training, which
   publishes a champion. Night two (the faulted day): both snapshot DAGs — the online one flags
   the fault and alerts its owners — and the nightly training, which holds.
   Each run is dated by its partition and carries the note ``partition YYYY-MM-DD``; each
   task try's log is written where the Airflow UI (``make airflow``) reads it
   (``.funnelguard/airflow/logs``).
4. Prints a summary generated from the results store, what the Slack sink received, and where
   the task logs are.

HTML reports, results and the model stay under ``demo-output/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from funnelguard.demo.dag_test import DagTestRun, quick_retries, run_partition
from funnelguard.demo.report import print_summary, print_warehouse
from funnelguard.demo.slack_sink import SlackSink

__all__ = ["DEMO_FAULTS", "DemoPaths", "build_warehouse", "airflow_environment", "quick_retries",
           "run_dags", "main"]

DEMO_START = dt.date(2026, 10, 1)
DEMO_FAULTS: tuple[str, ...] = ("serving_default:feature=approval_odds,device_type=android",)
DAGS = ("funnelguard_snapshot_offline", "funnelguard_snapshot_online",
        "funnelguard_nightly_training")
REQUIRED_COMMANDS = ("validate", "drift", "skew", "freshness", "gate", "train", "evaluate", "alerts")


class DemoPaths:
    """Where the demo keeps its warehouse, store, Airflow home and output."""

    def __init__(self, root: Path, output: Path) -> None:
        self.root = root.resolve()
        self.state = self.root / ".funnelguard"
        self.warehouse = self.state / "demo" / "warehouse.db"
        self.store = self.state / "demo" / "results.db"
        self.airflow_home = self.state / "airflow"
        self.dags = Path(__file__).resolve().parents[2] / "dags"
        self.output = output.resolve()

    @property
    def warehouse_url(self) -> str:
        return f"sqlite:///{self.warehouse}"

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.store}"


def build_warehouse(paths: DemoPaths, *, days: int, per_day: int, seed: int,
                    faults: Sequence[str] = DEMO_FAULTS) -> None:
    """Simulate the demo warehouse from scratch (the store is reset with it)."""
    from funnelguard.simulator import SimConfig, parse_fault, simulate
    from funnelguard.warehouse import connect

    paths.warehouse.parent.mkdir(parents=True, exist_ok=True)
    for stale in (paths.warehouse, paths.store):
        stale.unlink(missing_ok=True)
    engine = connect(paths.warehouse_url, must_exist=False)
    config = SimConfig(start=DEMO_START, days=days, per_day=per_day, seed=seed,
                       faults=tuple(parse_fault(f, start=DEMO_START, days=days) for f in faults))
    simulate(engine, config)
    engine.dispose()


def airflow_environment(paths: DemoPaths, slack_url: str | None) -> dict[str, str]:
    """Environment variables for a project-local Airflow wired to the demo's databases; the
    DAGs run on the packaged project (the one the simulated warehouse is built for), whatever
    ``$FUNNELGUARD_PROJECT`` or ``./funnelguard.yaml`` say."""
    from funnelguard.project import PACKAGED_PROJECT

    env = {
        "AIRFLOW_HOME": str(paths.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(paths.dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{paths.airflow_home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        # Where the task logs go and where `make airflow`'s UI reads them (its default, named
        # so that both always agree).
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(paths.airflow_home / "logs"),
        # URI form: the four slashes make an absolute path.
        "AIRFLOW_CONN_FUNNELGUARD_WAREHOUSE": f"sqlite:///{paths.warehouse}",
        "AIRFLOW_CONN_FUNNELGUARD_STORE": f"sqlite:///{paths.store}",
        "FUNNELGUARD_STORE": paths.store_url,
        "FUNNELGUARD_OUTPUT_DIR": str(paths.output),
        "FUNNELGUARD_PROJECT": str(PACKAGED_PROJECT),
    }
    if slack_url is not None:
        env["AIRFLOW_CONN_FUNNELGUARD_SLACK"] = json.dumps(
            {"conn_type": "slackwebhook", "password": slack_url})
    return env


def _missing_commands() -> list[str]:
    from funnelguard.cli import build_parser

    parser = build_parser()
    registered = set()
    for action in parser._subparsers._group_actions:  # noqa: SLF001 - argparse keeps them here
        registered |= set(action.choices)
    return [c for c in REQUIRED_COMMANDS if c not in registered]


def _migrate_airflow(env: dict[str, str]) -> None:
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"],
                          env={**os.environ, **env}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"airflow db migrate failed (exit {done.returncode}):\n"
                         f"{done.stderr[-2000:]}")


def run_dags(paths: DemoPaths, nights: Sequence[dt.date],
             train_config: str | None) -> list[DagTestRun]:
    """Run the three DAGs with ``dag.test()`` for each night (each run dated and noted with its
    partition, task logs where the UI reads them: :mod:`funnelguard.demo.dag_test`)."""
    from airflow.dag_processing.dagbag import DagBag

    from funnelguard.demo.task_logs import TaskLogFiles

    bag = DagBag(dag_folder=str(paths.dags))
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    runs = []
    with TaskLogFiles() as logs:
        for night in nights:
            for dag_id in DAGS:
                conf = {}
                if dag_id == "funnelguard_nightly_training" and train_config:
                    conf["train_config"] = train_config
                started = time.monotonic()
                print(f"\n=== {dag_id} partition={night} (airflow dag.test) ===", flush=True)
                run = run_partition(bag.get_dag(dag_id), night.isoformat(), conf, logs=logs)
                print(f"=== {dag_id} {night}: {run.state} in {time.monotonic() - started:.0f} s "
                      f"(run {run.run_id}, {len(run.log_files)} task logs) ===", flush=True)
                runs.append(run)
    return runs


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m funnelguard.demo", description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=24, help="partitions to simulate (default 24)")
    p.add_argument("--per-day", type=int, default=3000, help="mean impressions a day (default 3000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default="demo-output", help="reports, results and models (default demo-output)")
    p.add_argument("--train-config", default=None, help="training config file (default: the packaged one)")
    p.add_argument("--warehouse-only", action="store_true", help="build the warehouse, skip Airflow")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    paths = DemoPaths(Path.cwd(), Path(args.out))
    began = time.monotonic()
    print(f"Building the simulated warehouse: {args.days} days from {DEMO_START}, "
          f"~{args.per_day}/day, seed {args.seed}, faults: {', '.join(DEMO_FAULTS)}", flush=True)
    build_warehouse(paths, days=args.days, per_day=args.per_day, seed=args.seed)
    print_warehouse(paths.warehouse_url)
    if args.warehouse_only:
        return 0
    missing = _missing_commands()
    if missing:
        print(f"\nNot running the DAGs yet: commands not available in this checkout: "
              f"{', '.join(missing)}")
        return 0
    last = DEMO_START + dt.timedelta(days=args.days - 1)
    configured_slack = os.environ.get("AIRFLOW_CONN_FUNNELGUARD_SLACK")
    with SlackSink() as sink:
        env = airflow_environment(paths, None if configured_slack else sink.url)
        os.environ.update(env)
        print(f"\nAirflow: AIRFLOW_HOME={paths.airflow_home} (SQLite metadata DB); "
              f"Slack: {'the configured funnelguard_slack connection' if configured_slack else sink.url}",
              flush=True)
        _migrate_airflow(env)
        runs = run_dags(paths, [last - dt.timedelta(days=1), last], args.train_config)
    print_summary(paths.store_url, paths.output, runs, None if configured_slack else sink.received,
                  airflow_home=paths.airflow_home)
    from monitors.site import build_site

    site = build_site(paths.store_url, paths.output / "site")
    print(f"\nResults site: {(paths.output / 'site' / 'index.html').resolve()} "
          f"({site.run_pages_written} run pages written; `funnelguard site serve --out {paths.output / 'site'}` "
          "serves it on 127.0.0.1)")
    print(f"\nDemo finished in {time.monotonic() - began:.0f} s.")
    return 0

