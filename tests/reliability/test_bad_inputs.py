"""The battery of bad inputs: every command, both projects, as a hostile user and a bad night.

Each case of :data:`tests.reliability.cases.CASES` runs in-process (``run_cli``) against a copy
of a results store seeded with runs of its project, and asserts the exit code (2 bad input,
3 environment, 1 only for a real failed check), a message saying what was expected, found and
where, no traceback, and that every run stored before is intact. The cases marked
``subprocess`` also run through the real ``funnelguard`` console script with a timeout (no
hang, no traceback). ``--json -`` and a reader that closes the pipe are tried on their own.
Cases the product gets wrong today are strict ``xfail`` with what is wrong and where.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.case_types import params
from tests.reliability.cases import CASES, CORRUPTIONS
from tests.reliability.harness import (
    Ctx,
    assert_intact,
    assert_outcome,
    expand,
    fill,
    make_files,
    mkt_ctx,
    run_in_process,
    seeded_stores,
    sim_ctx,
    store_rows,
)

CONSOLE = Path(sys.executable).with_name("funnelguard")
TIMEOUT_S = 180  # generous on a loaded 2-core machine; the point is "no hang", not speed


@pytest.fixture(scope="session")
def battery_ctx(clean_warehouse, marketplace) -> dict[str, Ctx]:
    return {"sim": sim_ctx(clean_warehouse), "mkt": mkt_ctx(marketplace)}


@pytest.fixture(scope="session")
def seeded(battery_ctx, tmp_path_factory) -> dict[str, Path]:
    """A results store per project with runs already in it (built once, copied per test)."""
    return seeded_stores(battery_ctx, tmp_path_factory)


@pytest.fixture
def setup(battery_ctx, seeded, tmp_path, monkeypatch):
    """(ctx, files, store file) for one case: the test's own files and its own store copy."""

    def _setup(project: str, case=None):
        ctx = battery_ctx[project]
        work = tmp_path / "work"
        work.mkdir()
        files = make_files(work, ctx)
        store = tmp_path / "store.db"
        shutil.copyfile(seeded[project], store)
        files["store"] = f"sqlite:///{store}"
        files["fingerprint"] = _a_fingerprint(store)
        if case is not None and any("{wh_copy}" in a for a in case.argv):
            files["wh_copy"] = str(tmp_path / "warehouse_copy.db")
            shutil.copyfile(ctx.warehouse_file, files["wh_copy"])
        monkeypatch.chdir(work)  # default report folders land here, not in the repository
        monkeypatch.setenv("FUNNELGUARD_STORE", files["store"])
        monkeypatch.delenv("FUNNELGUARD_PROJECT", raising=False)
        if case is not None:
            for key, value in case.env.items():
                monkeypatch.setenv(key, fill(value, ctx, files))
        return ctx, files, store

    return _setup


def _a_fingerprint(store: Path) -> str:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as con:
        row = con.execute("SELECT fingerprint FROM fg_alert_state ORDER BY fingerprint").fetchone()
    assert row, "the seeded store has no alert state"
    return row[0]


@pytest.mark.parametrize(("case", "project"), params(CASES))
def test_bad_input(case, project, setup, run_cli, capsys):
    ctx, files, store = setup(project, case)
    before = store_rows(store)
    assert before, "the seeded store is empty"
    outcome = run_in_process(run_cli, capsys, expand(case.argv, ctx, files))
    assert_outcome(outcome, case.code, fill(case.message, ctx, files))
    assert_intact(before, store)


@pytest.mark.skipif(not CONSOLE.exists(), reason=f"no console script at {CONSOLE}")
@pytest.mark.parametrize(("case", "project"), params(CASES, only_subprocess=True))
def test_bad_input_console_script(case, project, setup):
    """The real console script: no hang (timeout), no traceback, the exit code, the message."""
    ctx, files, store = setup(project, case)
    before = store_rows(store)
    done = subprocess.run([str(CONSOLE), *expand(case.argv, ctx, files)], capture_output=True,
                          text=True, timeout=TIMEOUT_S, env=dict(os.environ), cwd=os.getcwd())
    text = done.stdout + "\n" + done.stderr
    assert "Traceback" not in text, text[-3000:]
    assert done.returncode == case.code, f"exit {done.returncode}:\n{text[-3000:]}"
    assert fill(case.message, ctx, files) in text, text[-3000:]
    assert_intact(before, store)


def test_case_table_is_a_battery():
    """At least 60 distinct bad inputs, every command tried, no id twice."""
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) + len(CORRUPTIONS) >= 60
    commands = {c.argv[0] if c.argv else "" for c in CASES}
    commands |= {" ".join(c.argv[:2]) for c in CASES if c.argv[:1] in (("contracts",),
                                                                         ("alerts",))}
    assert {"validate", "contracts lint", "contracts diff", "contracts infer", "init", "drift",
            "skew", "freshness", "gate", "train", "evaluate", "replay", "explain", "alerts list",
            "alerts mute", "alerts flush", "simulate"} <= commands


# -- --json - and a closed pipe ---------------------------------------------------------------


@pytest.mark.parametrize("project", ["sim", "mkt"])
def test_json_dash_writes_the_document_to_stdout(project, setup, run_cli, capsys):
    """``--json -`` means stdout (the summary goes to stderr); no file named '-' appears."""
    ctx, files, store = setup(project)
    before = store_rows(store)
    outcome = run_in_process(run_cli, capsys, ["validate", *ctx.where, "--date", ctx.day,
                                               "--env", "offline", "--json", "-"])
    assert_outcome(outcome, 0, "pass")
    doc = json.loads(outcome.out)
    assert doc["command"] == "validate" and doc["partition"] == ctx.day
    assert not Path("-").exists(), "--json - wrote a file named '-'"
    assert_intact(before, store)
    assert len(store_rows(store)) == len(before) + 1  # the run itself was stored


@pytest.mark.skipif(not CONSOLE.exists(), reason=f"no console script at {CONSOLE}")
@pytest.mark.parametrize("project", ["sim", "mkt"])
def test_reader_that_closes_the_pipe(project, setup):
    """``funnelguard ... | head`` where head has already gone: no traceback, no hang, exit 141
    (as SIGPIPE would), and the result is stored all the same."""
    ctx, files, store = setup(project)
    before = store_rows(store)
    proc = subprocess.Popen([str(CONSOLE), "-v", "validate", *ctx.where, "--date", ctx.day,
                             "--env", "online", "--json", "-"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ), cwd=os.getcwd())
    proc.stdout.close()  # the reader is gone before the first byte is written
    try:
        _, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    err = err.decode(errors="replace")
    assert "Traceback" not in err and "BrokenPipeError" not in err, err[-3000:]
    assert "Exception ignored" not in err, err[-3000:]
    assert proc.returncode == 141, (proc.returncode, err[-3000:])
    assert_intact(before, store)
    runs = store_rows(store)
    assert len(runs) == len(before) + 1, "the result was lost with the pipe"
    command, _, environment, partition, status, _ = next(
        r for k, r in runs.items() if k not in before)
    assert (command, environment, partition, status) == ("validate", "online", ctx.day, "pass")
