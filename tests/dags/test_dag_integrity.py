"""Every DAG file parses in a fresh interpreter, cheaply and without side effects.

The parse runs in a subprocess so that ``sys.modules`` shows exactly what parsing imported:
no torch, pandas, evidently, pandera or funnelguard package may be imported at parse time, and
no connection or Variable may be looked up (the scheduler parses these files every 30 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
FORBIDDEN = ("torch", "pandas", "evidently", "pandera", "polars", "sklearn",
             "funnelguard", "monitors", "model", "contracts")

PARSE = textwrap.dedent("""
    import json, sys
    lookups = []

    def spy(name, original):
        def wrapper(*args, **kwargs):
            lookups.append(name + ":" + ",".join(str(a) for a in args[1:] or args))
            return original(*args, **kwargs)
        return wrapper

    from airflow.sdk import BaseHook, Connection, Variable
    from airflow.secrets.environment_variables import EnvironmentVariablesBackend
    Connection.get = classmethod(spy("Connection.get", Connection.get.__func__))
    BaseHook.get_connection = classmethod(spy("BaseHook.get_connection", BaseHook.get_connection.__func__))
    Variable.get = staticmethod(spy("Variable.get", Variable.get))
    for meth in ("get_conn_value", "get_variable", "get_connection"):
        if hasattr(EnvironmentVariablesBackend, meth):
            setattr(EnvironmentVariablesBackend, meth,
                    spy("env." + meth, getattr(EnvironmentVariablesBackend, meth)))

    def asset_names(condition):
        if condition is None:
            return []
        if hasattr(condition, "objects"):
            return [n for o in condition.objects for n in asset_names(o)]
        return [condition.name]

    from airflow.dag_processing.dagbag import DagBag
    bag = DagBag(dag_folder=sys.argv[1])
    dags = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "fileloc": dag.fileloc,
            "tags": sorted(dag.tags),
            "timetable": type(dag.timetable).__name__,
            "cron": getattr(dag.timetable, "expression", None),
            "assets": sorted(asset_names(getattr(dag.timetable, "asset_condition", None))),
            "catchup": dag.catchup,
            "start_date_tz": str(dag.start_date.tzinfo),
            "doc_md": bool(dag.doc_md and dag.doc_md.strip()),
            "tasks": {t.task_id: {"retries": t.retries, "owner": t.owner,
                                  "timeout": t.execution_timeout.total_seconds()
                                  if t.execution_timeout else None,
                                  "on_failure": len(t.on_failure_callback or [])
                                  if isinstance(t.on_failure_callback, list)
                                  else int(t.on_failure_callback is not None)}
                      for t in dag.tasks},
        }
    modules = sorted(m.split(".")[0] for m in sys.modules)
    print(json.dumps({"errors": {str(k): v for k, v in bag.import_errors.items()},
                      "dags": dags, "modules": sorted(set(modules)), "lookups": lookups}))
""")


@pytest.fixture(scope="module")
def parsed(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
           # Set, so that a parse-time lookup would succeed silently if the spies missed it.
           "AIRFLOW_CONN_FUNNELGUARD_WAREHOUSE": "sqlite:////nonexistent/warehouse.db"}
    done = subprocess.run([sys.executable, "-c", PARSE, str(DAGS)], env=env, cwd=home,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_dag_file_parses_without_import_errors(parsed):
    assert parsed["errors"] == {}
    files = sorted(p.stem for p in DAGS.glob("*.py") if not p.name.startswith("_"))
    assert sorted(parsed["dags"]) == files, "one DAG per file, dag_id = file name"
    for dag_id, dag in parsed["dags"].items():
        assert Path(dag["fileloc"]).stem == dag_id


def test_parsing_imports_nothing_heavy(parsed):
    heavy = [m for m in FORBIDDEN if m in parsed["modules"]]
    assert heavy == [], f"imported at parse time: {heavy}"


def test_parsing_looks_up_no_connection_or_variable(parsed):
    assert parsed["lookups"] == []


@pytest.mark.parametrize("dag_id", ["funnelguard_snapshot_offline", "funnelguard_snapshot_online",
                                    "funnelguard_nightly_training"])
def test_dag_conventions(parsed, dag_id):
    dag = parsed["dags"][dag_id]
    assert "funnelguard" in dag["tags"] and len(dag["tags"]) >= 2
    assert dag["catchup"] is False
    assert dag["start_date_tz"] == "UTC"
    assert dag["doc_md"]
    assert dag["timetable"] not in ("NullTimetable", "OnceTimetable")
    for task_id, task in dag["tasks"].items():
        assert task["owner"] == "ml-platform", task_id
        assert task["timeout"] and task["timeout"] > 0, task_id
        if task_id not in ("checks_failed", "training_failed"):
            assert task["retries"] >= 1, task_id
            assert task["on_failure"] >= 1, f"{task_id} has no Slack failure notifier"


def test_schedules(parsed):
    dags = parsed["dags"]
    assert dags["funnelguard_snapshot_offline"]["assets"] == ["funnelguard_offline_features"]
    assert dags["funnelguard_snapshot_online"]["assets"] == [
        "funnelguard_offline_features", "funnelguard_serving_log"]
    assert dags["funnelguard_nightly_training"]["timetable"] == "CronTriggerTimetable"
    assert dags["funnelguard_nightly_training"]["cron"] == "30 2 * * *"


def test_dag_files_import_only_airflow_pendulum_stdlib_and_the_notifier():
    allowed_roots = {"airflow", "pendulum", "__future__", "datetime", "typing", "os", "json"}
    for path in DAGS.glob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith(("import ", "from ")):
                root = line.split()[1].split(".")[0]
                assert root in allowed_roots, f"{path.name}:{number}: top-level import {line!r}"
