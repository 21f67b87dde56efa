"""The snapshot DAG on Airflow's CeleryExecutor: real scheduler, API server, DAG processor and a
real ``airflow celery worker``, a Redis broker and PostgreSQL for the metadata DB, the Celery
result backend and the results store.

Each run gets a database of its own (``fg_celery_<pid>``, dropped after) and a Redis key prefix
of its own, so runs sharing the servers never see each other's tasks. The worker, and only the
worker, names its host through ``[core] hostname_callable``: a task instance that carries that
name ran in the worker's process tree, not in the scheduler's. Every process is stopped (its
whole process group) on the way out.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"
DAG_ID = "funnelguard_snapshot_offline"
PARTITION = "2026-10-24"
REDIS_DB = 13  # a spare database number; the key prefix keeps concurrent runs apart
CHECKS = ("validate_features", "validate_impressions")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _redis():
    import redis

    return redis.Redis(host=LOOPBACK, port=6379, db=REDIS_DB, socket_connect_timeout=3)


class CeleryAirflow:
    """Airflow's components on one machine with the CeleryExecutor, each its own process group."""

    def __init__(self, home: Path, pg_url: str, *, warehouse: str, store: str) -> None:
        self.home = home
        self.tag = f"fg_celery_{os.getpid()}"
        self.worker_host = f"{self.tag}-worker"
        self.port = _free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        self.server = sa.make_url(pg_url)
        self.db_url = self.server.set(database=self.tag).render_as_string(hide_password=False)
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env = {
            **clean,
            "PATH": f"{VENV_BIN}{os.pathsep}{clean.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple."
                                           "simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
            # Airflow's default async driver for PostgreSQL is asyncpg; psycopg 3 does both.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.server.set(
                drivername="postgresql+psycopg_async", database=self.tag).render_as_string(
                hide_password=False),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{LOOPBACK}:6379/{REDIS_DB}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.db_url}",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": f"{self.tag}:",
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "3600",
            "AIRFLOW__API__HOST": LOOPBACK,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": f"http://{LOOPBACK}:{self.port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{LOOPBACK}:{self.port}/execution/",
            # The scheduler signs each task's token and the API server checks it: one secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "AIRFLOW__CORE__FERNET_KEY": "",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": LOOPBACK,
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW_CONN_FUNNELGUARD_WAREHOUSE": warehouse,
            "AIRFLOW_CONN_FUNNELGUARD_STORE": store,
            "FUNNELGUARD_OUTPUT_DIR": str(home / "out"),
        }
        self.env.pop("AIRFLOW_CONN_FUNNELGUARD_SLACK", None)

    # -- lifecycle ---------------------------------------------------------------------------

    def create_database(self) -> None:
        engine = sa.create_engine(self.server, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.tag}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{self.tag}"'))
        engine.dispose()

    def drop_database(self) -> None:
        engine = sa.create_engine(self.server, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.tag}" WITH (FORCE)'))
        engine.dispose()

    def airflow(self, *args: str, timeout: int = 180) -> str:
        done = subprocess.run([str(VENV_BIN / "airflow"), *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
        return done.stdout

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        log = (self.home / f"{name}.log").open("w")
        self.procs[name] = subprocess.Popen(
            [str(VENV_BIN / "airflow"), *args], env=env or self.env, cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def start_all(self) -> None:
        self.start("api-server", "api-server", "--host", LOOPBACK, "--port", str(self.port))
        self.start("scheduler", "scheduler", "--skip-serve-logs")
        self.start("dag-processor", "dag-processor")
        # Only the worker's processes name their host this way (see the module docstring).
        hostname = self.home / "worker_site"
        hostname.mkdir()
        (hostname / "fg_worker_hostname.py").write_text(
            f"def hostname():\n    return {self.worker_host!r}\n")
        worker_env = {**self.env,
                      "PYTHONPATH": os.pathsep.join(filter(None, [
                          str(hostname), str(ROOT), self.env.get("PYTHONPATH", "")])),
                      "AIRFLOW__CORE__HOSTNAME_CALLABLE": "fg_worker_hostname.hostname"}
        self.start("worker", "celery", "worker", "--skip-serve-logs", "--concurrency", "2",
                   "--celery-hostname", f"{self.worker_host}@%h", "--without-gossip",
                   "--without-mingle", env=worker_env)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            # Workers and pool processes live in the same group: none may outlive the test.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def forget_broker_keys(self) -> None:
        client = _redis()
        keys = list(client.scan_iter(match=f"{self.tag}:*"))
        if keys:
            client.delete(*keys)

    # -- observation -------------------------------------------------------------------------

    def logs(self) -> str:
        return "\n".join(f"== {name}\n{(self.home / f'{name}.log').read_text()[-2500:]}"
                         for name in self.procs)

    def assert_running(self) -> None:
        dead = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
        assert not dead, (dead, self.logs())

    def metadata(self) -> sa.Engine:
        return sa.create_engine(self.db_url)

    def wait_for(self, what: str, probe, timeout: float) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.assert_running()
            found = probe()
            if found:
                return found
            time.sleep(2)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.logs()}")


@pytest.fixture
def celery_airflow(tmp_path, pg_url, warehouse):
    try:
        _redis().ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no broker here"
        pytest.skip(f"Redis not reachable at {LOOPBACK}:6379: {exc}")
    # The provider's result-backend module imports a helper celery 5.7.0 removed.
    probe = subprocess.run([sys.executable, "-c", "from celery.backends.database import retry"],
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, (
        "apache-airflow-providers-celery 3.26 imports celery.backends.database.retry, which "
        f"this celery lacks (celery 5.7.0 removed it): pin celery==5.6.3\n{probe.stderr[-500:]}")
    home = tmp_path / "airflow"
    home.mkdir()
    server = sa.make_url(pg_url)
    store = server.set(drivername="postgres", database=f"fg_celery_{os.getpid()}")
    cluster = CeleryAirflow(home, pg_url, warehouse=warehouse(per_day=400),
                            store=store.render_as_string(hide_password=False))
    cluster.create_database()
    try:
        cluster.airflow("db", "migrate")
        cluster.start_all()
        yield cluster
    finally:
        cluster.stop()
        cluster.forget_broker_keys()
        cluster.drop_database()


def _task_instances(engine: sa.Engine, run_id: str) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT task_id, map_index, state, hostname, queue FROM task_instance "
            "WHERE dag_id = :dag AND run_id = :run"), {"dag": DAG_ID, "run": run_id}).mappings()
        return [dict(r) for r in rows]


def test_snapshot_dag_runs_its_checks_on_the_celery_worker(celery_airflow):
    cluster = celery_airflow
    engine = cluster.metadata()

    def dag_serialized():
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM serialized_dag WHERE dag_id = :d"),
                                {"d": DAG_ID}).scalar()

    def worker_ready():
        return "ready." in (cluster.home / "worker.log").read_text()

    cluster.wait_for("the DAG processor to serialize the DAG", dag_serialized, timeout=180)
    cluster.wait_for("the Celery worker to connect to Redis", worker_ready, timeout=120)
    cluster.airflow("dags", "unpause", DAG_ID)
    run_id = f"celery__{PARTITION}"
    cluster.airflow("dags", "trigger", DAG_ID, "--run-id", run_id,
                    "--conf", json.dumps({"partition": PARTITION}))

    def run_finished():
        with engine.connect() as conn:
            state = conn.execute(sa.text("SELECT state FROM dag_run WHERE run_id = :r"),
                                 {"r": run_id}).scalar()
        return state if state in ("success", "failed") else None

    state = cluster.wait_for("the DAG run to finish", run_finished, timeout=240)
    tis = _task_instances(engine, run_id)
    by_task = {(t["task_id"], t["map_index"]): t for t in tis}
    assert state == "success", (tis, cluster.logs())

    # Every task that ran, ran on the worker: only its processes name their host this way.
    # (send_alerts runs and skips itself without a Slack connection; checks_failed never runs.)
    executed = [t for t in tis if t["hostname"]]
    assert {t["task_id"] for t in executed} == {"resolve_partitions", *CHECKS,
                                                "record_snapshot", "send_alerts"}, tis
    assert {t["hostname"] for t in executed} == {cluster.worker_host}, executed
    assert by_task[("send_alerts", -1)]["state"] == "skipped"
    assert by_task[("checks_failed", -1)]["state"] == "skipped"
    assert {by_task[(check, 0)]["state"] for check in CHECKS} == {"success"}

    # The Celery result backend holds one successful result per workload the worker executed.
    with engine.connect() as conn:
        results = conn.execute(sa.text(
            "SELECT status, count(*) FROM celery_taskmeta GROUP BY status")).all()
    assert dict(results) == {"SUCCESS": len(executed)}, (results, executed)
    worker_log = (cluster.home / "worker.log").read_text()
    assert f"{cluster.worker_host}@" in worker_log

    # The store (PostgreSQL, the same database) holds both validation runs of the partition.
    from monitors.store import open_store

    store = open_store(cluster.db_url)
    runs = {(r.command, r.dataset, r.environment): r.status
            for r in store.runs(partition=PARTITION)}
    assert runs[("validate", "ranking_features", "offline")] == "pass", runs
    assert runs[("validate", "impressions", "offline")] == "pass", runs
    engine.dispose()
