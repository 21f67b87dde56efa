"""Concurrent runs of one key all succeed and leave one row: 6 processes validating one
partition at once, on SQLite and on the shared PostgreSQL server, each writing the same key
of the results store at the same moment (a barrier inside the store write).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.reliability.stored_runs import stored_validate_runs as _rows

REPO = Path(__file__).resolve().parents[2]


# -- concurrency: 6 processes, one partition --------------------------------------------------

_WORKER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path

    barrier, n = Path(sys.argv[1]), int(sys.argv[2])
    import monitors.store.spool as spool

    stored = spool.record_or_spool

    def all_at_once(*args, **kwargs):
        # every process opens (and migrates) the store and writes the key at the same moment
        (barrier / str(os.getpid())).touch()
        deadline = time.monotonic() + 240
        while len(list(barrier.iterdir())) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        return stored(*args, **kwargs)

    spool.record_or_spool = all_at_once
    from funnelguard.cli import main

    sys.exit(main(sys.argv[3:]))
""")


def _six_at_once(m, url: str, tmp_path: Path) -> list[tuple[int, str, Path]]:
    worker = tmp_path / "worker.py"
    worker.write_text(_WORKER)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "FUNNELGUARD_SPOOL": str(tmp_path / "spool"),
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("FUNNELGUARD_STORE", None)
    procs = []
    for i in range(6):
        out = tmp_path / f"run{i}.json"
        argv = [sys.executable, str(worker), str(barrier), "6", "validate", "--project",
                str(m.project_path), "--date", m.last.isoformat(), "--env", "online",
                "--store", url, "--json", str(out)]
        procs.append((subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True), out))
    done = []
    for proc, out in procs:
        try:
            _, err = proc.communicate(timeout=480)
        except subprocess.TimeoutExpired:
            for p, _ in procs:
                p.kill()
            raise
        done.append((proc.returncode, err, out))
    return done


def _assert_six_succeeded(done, url: str, m, tmp_path: Path) -> None:
    for code, err, _ in done:
        assert code == 1, err[-3000:]  # the faulted partition fails its check: exit 1, never 3
        assert "IntegrityError" not in err and "Traceback" not in err, err[-3000:]
        assert "could not be stored" not in err, err
    docs = [json.loads(out.read_text()) for _, _, out in done]
    assert all(d["status"] == "fail" and d["findings"] for d in docs)
    stored = _rows(url)
    assert list(stored) == [m.last.isoformat()], "exactly one fg_runs row for the key"
    status, n, project, _ = stored[m.last.isoformat()]
    assert (status, n, project) == ("fail", len(docs[0]["findings"]), str(m.project_path.resolve()))
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        alerts = conn.execute(sa.text("SELECT count(*) FROM fg_alert_outbox WHERE kind = 'alert'"))
        assert alerts.scalar() == 1, "six runs of one failing key queue one alert"
    engine.dispose()
    assert not (tmp_path / "spool").exists(), "nothing may be spooled"


@pytest.mark.slow
def test_six_concurrent_validates_of_one_partition_on_sqlite(marketplace_faulted, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"  # fresh: the six also race to migrate it
    _assert_six_succeeded(_six_at_once(marketplace_faulted, url, tmp_path), url,
                          marketplace_faulted, tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_six_concurrent_validates_of_one_partition_on_postgresql(marketplace_faulted,
                                                                 pg_schema_url, tmp_path):
    _assert_six_succeeded(_six_at_once(marketplace_faulted, pg_schema_url, tmp_path),
                          pg_schema_url, marketplace_faulted, tmp_path)
