"""``make airflow`` (scripts/airflow-standalone.sh) listens on 127.0.0.1 only.

Airflow 3.3's ``airflow standalone`` would start the scheduler's and the triggerer's log servers,
which bind every interface whatever the configuration says; the script starts the components
itself without them. The plan test reads the script's settings back through Airflow's own
configuration; the slow test starts the components and lists the sockets they listen on.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "airflow-standalone.sh"
LOOPBACK = "127.0.0.1"


def _plan(home: Path, **env: str) -> tuple[dict[str, str], list[list[str]]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    done = subprocess.run(["bash", str(SCRIPT), "--print-plan"], capture_output=True, text=True,
                          env={**clean, "AIRFLOW_HOME": str(home), **env}, timeout=60)
    assert done.returncode == 0, done.stderr
    settings, commands = {}, []
    for line in done.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "env":
            key, _, value = rest.partition("=")
            settings[key] = value
        elif kind == "run":
            commands.append(rest.split())
    return settings, commands


def test_every_component_is_told_127_0_0_1_even_when_the_caller_said_otherwise(tmp_path):
    settings, commands = _plan(tmp_path, AIRFLOW__API__HOST="0.0.0.0",
                               AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST="0.0.0.0")
    by_name = {c[0]: c[1:] for c in commands}
    assert sorted(by_name) == ["api-server", "dag-processor", "scheduler", "triggerer"]
    api = by_name["api-server"]
    assert api[api.index("--host") + 1] == LOOPBACK
    # No log server: Airflow 3.3 has no setting for their host (they bind every interface).
    assert "--skip-serve-logs" in by_name["scheduler"]
    assert "--skip-serve-logs" in by_name["triggerer"]

    keys = {"api_host": ("api", "host"), "base_url": ("api", "base_url"),
            "execution_api": ("core", "execution_api_server_url"),
            "health_check_host": ("scheduler", "scheduler_health_check_server_host"),
            "health_check": ("scheduler", "enable_health_check"),
            "logs": ("logging", "base_log_folder")}
    read = ("import json, sys\nfrom airflow.configuration import conf\n"
            "print(json.dumps({k: conf.get(*v) for k, v in json.loads(sys.argv[1]).items()}))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    done = subprocess.run([sys.executable, "-c", read, json.dumps(keys)], capture_output=True,
                          text=True, env={**clean, "AIRFLOW_HOME": str(tmp_path), **settings},
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    conf = json.loads(done.stdout.strip().splitlines()[-1])
    assert conf["api_host"] == LOOPBACK
    assert conf["health_check_host"] == LOOPBACK
    assert conf["health_check"] == "False"
    assert conf["base_url"].startswith(f"http://{LOOPBACK}:")
    assert conf["execution_api"].startswith(f"http://{LOOPBACK}:")
    assert conf["logs"] == str(tmp_path / "logs")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _listening(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state held by one of ``pids``."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            if width == 8:
                host = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:
                host = socket.inet_ntop(socket.AF_INET6, b"".join(
                    raw[i:i + 4][::-1] for i in range(0, 16, 4)))
            found.add((host, int(port, 16)))
    return found


def _group(pgid: int) -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.slow
def test_make_airflow_listens_on_127_0_0_1_only(tmp_path):
    port = _free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env = {**clean, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW_PORT": str(port),
           "AIRFLOW_CONN_FUNNELGUARD_STORE": f"sqlite:///{tmp_path / 'results.db'}"}
    log = (tmp_path / "out.txt").open("w")
    proc = subprocess.Popen(["bash", str(SCRIPT)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline, healthy = time.monotonic() + 240, {}
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                        f"http://{LOOPBACK}:{port}/api/v2/monitor/health", timeout=5) as r:
                    healthy = json.load(r)
            except OSError:
                healthy = {}
            if all(healthy.get(c, {}).get("status") == "healthy"
                   for c in ("scheduler", "triggerer", "dag_processor")):
                break
            time.sleep(3)
        assert healthy, (tmp_path / "out.txt").read_text()[-3000:]
        time.sleep(5)  # any log server a component would start is up by now
        sockets = _listening(_group(proc.pid))
        assert sockets == {(LOOPBACK, port)}, sockets
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
