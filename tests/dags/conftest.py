"""Fixtures of the DAG tests: one project-local Airflow (SQLite metadata DB) per session.

Airflow reads its configuration when it is first imported, so ``AIRFLOW_HOME`` is pointed at a
session folder here, at collection time, before any test module imports Airflow. The migration
uses whatever database the in-process configuration names, so the two always agree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"

if "airflow" not in sys.modules:
    _home = Path(tempfile.mkdtemp(prefix="funnelguard-airflow-"))
    os.environ["AIRFLOW_HOME"] = str(_home)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home / 'airflow.db'}"
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """The migrated Airflow metadata DB (``airflow db migrate`` once per session)."""
    from airflow.configuration import conf

    url = conf.get("database", "sql_alchemy_conn")
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return url


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag
