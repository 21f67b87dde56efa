"""Never lose a result: every failure of the results store is exit 3 with one line naming the
store, the ``--json`` document is still written, the run waits in the spool, and the next write
that reaches the store (or ``funnelguard store sync``) stores it exactly once. Concurrent runs
of one key all succeed and leave one row (tests/reliability/test_store_concurrency.py).

Faults: PostgreSQL stopped inside the write transaction (a throwaway cluster of our own), a
read-only SQLite file, a text file, a directory, a corrupt SQLite file, an unreachable server
with a password in its URL. Each asserts the exit code, the message, the ``--json`` document, the spool
file, that runs stored before are intact and that the synced run is there once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from funnelguard.findings import Finding, RunResult
from tests.reliability.stored_runs import stored_validate_runs as _rows

REPO = Path(__file__).resolve().parents[2]


# -- helpers ----------------------------------------------------------------------------------


def _validate(run_cli, m, day: str, store: str, json_out: Path):
    return run_cli("validate", "--project", m.project_path, "--date", day, "--env", "online",
                   "--store", store, "--json", json_out)


def _store_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "could not be stored" in line]


def _one_spooled(spool: Path) -> dict:
    files = sorted(spool.glob("*.json"))
    assert len(files) == 1, [f.name for f in files]
    return json.loads(files[0].read_text())


def _assert_failed_cleanly(code, result, capsys, json_out: Path, spool: Path, m, *,
                           store_shown: str, found: str) -> dict:
    """Exit 3, one stderr line naming the store and the cause, the document written, the run
    spooled whole with its provenance. Returns the spool document."""
    captured = capsys.readouterr()
    assert code == 3, captured.err
    lines = _store_lines(captured.err)
    assert len(lines) == 1 and "Traceback" not in captured.err + captured.out, captured.err
    assert f"results store {store_shown}: " in lines[0] and found in lines[0], lines[0]
    assert "kept in the spool at " + str(spool) in lines[0]
    doc = json.loads(json_out.read_text())
    assert doc == result.to_json() and doc["findings"]
    spooled = _one_spooled(spool)
    assert spooled["result"] == doc
    assert spooled["store"] == store_shown and found in spooled["reason"]
    assert spooled["project"] == str(m.project_path.resolve())
    assert Path(spooled["contract"]).name == "marketplace_features.yaml"
    return spooled


def _assert_synced_once(url: str, partition: str, doc: dict, m, spool: Path) -> None:
    status, n, project, contract = _rows(url)[partition]
    assert (status, n) == (doc["status"], len(doc["findings"]))
    assert project == str(m.project_path.resolve())
    assert Path(contract).name == "marketplace_features.yaml"
    assert not list(spool.glob("*.json")), "a synced run's spool file must be deleted"


def _days(m) -> tuple[str, str, str]:
    """The marketplace's last three partitions, oldest first (the last one is faulted)."""
    return tuple((m.last - dt.timedelta(days=k)).isoformat() for k in (2, 1, 0))


# -- PostgreSQL stopped inside the write transaction ------------------------------------------


def test_store_lost_mid_write_exits_3_keeps_the_run_and_sync_stores_it_once(
        run_cli, marketplace_faulted, throwaway_pg, spool, tmp_path, capsys, monkeypatch):
    from monitors.alerts import outbox

    m, pg = marketplace_faulted, throwaway_pg
    pg.start()
    engine = sa.create_engine(pg.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS lost_mid_write CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA lost_mid_write"))
    engine.dispose()
    url = f"{pg.url}?options=-csearch_path%3Dlost_mid_write"
    _, before, day = _days(m)

    code, _ = _validate(run_cli, m, before, url, tmp_path / "before.json")
    assert code == 0
    stored_before = _rows(url)
    capsys.readouterr()

    real_enqueue = outbox.enqueue_for_run
    stops = []

    def enqueue_then_crash(session, run, result, **kw):
        rows = real_enqueue(session, run, result, **kw)
        session.flush()  # the run, its findings and its alerts are written, not committed
        pg.stop("immediate")
        stops.append(run.partition)
        return rows

    monkeypatch.setattr(outbox, "enqueue_for_run", enqueue_then_crash)
    code, result = _validate(run_cli, m, day, url, tmp_path / "day.json")
    monkeypatch.setattr(outbox, "enqueue_for_run", real_enqueue)
    assert stops == [day]
    spooled = _assert_failed_cleanly(
        code, result, capsys, tmp_path / "day.json", spool, m,
        store_shown="postgresql+psycopg://postgres@127.0.0.1:"
                    f"{pg.port}/postgres?options=-csearch_path%3Dlost_mid_write",
        found="connection lost in the middle of the write")
    assert "while writing run validate marketplace_features online " + day in spooled["reason"]

    pg.start()
    assert _rows(url) == stored_before, "the run stored before must be intact, the lost one absent"

    code, _ = run_cli("store", "sync", "--store", url)
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"synced     validate marketplace_features online {day}" in out and "1 synced" in out
    _assert_synced_once(url, day, spooled["result"], m, spool)
    assert _rows(url)[before] == stored_before[before]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        queued = conn.execute(sa.text(
            "SELECT project, contract FROM fg_alert_outbox WHERE partition = :d"), {"d": day}).all()
    engine.dispose()
    assert queued and {p for p, _ in queued} == {str(m.project_path.resolve())}
    assert {Path(c).name for _, c in queued} == {"marketplace_features.yaml"}

    code, _ = run_cli("store", "sync", "--store", url)
    assert code == 0 and "0 synced" in capsys.readouterr().out
    assert _rows(url)[day] == (spooled["result"]["status"], len(spooled["result"]["findings"]),
                               str(m.project_path.resolve()), _rows(url)[day][3])


# -- SQLite files that are not a writable store -----------------------------------------------


def test_read_only_sqlite_url_exits_3_and_keeps_what_was_stored(run_cli, marketplace_faulted,
                                                                spool, tmp_path, capsys):
    m = marketplace_faulted
    db = tmp_path / "results.db"
    before, day = _days(m)[1], _days(m)[2]
    assert _validate(run_cli, m, before, f"sqlite:///{db}", tmp_path / "b.json")[0] == 0
    stored_before = _rows(f"sqlite:///{db}")
    capsys.readouterr()
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"
    code, result = _validate(run_cli, m, day, read_only, tmp_path / "day.json")
    _assert_failed_cleanly(code, result, capsys, tmp_path / "day.json", spool, m,
                           store_shown=f"sqlite:///file%3A{db}?mode=ro&uri=true",
                           found="found a read-only database")
    assert _rows(f"sqlite:///{db}") == stored_before


def _make_read_only(path: Path) -> None:
    if os.geteuid() != 0:
        path.chmod(0o444)
        return
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:  # root ignores file modes; an immutable file is read-only to it
        pytest.skip(f"running as root and `chattr +i` failed ({done.stderr.strip()}): "
                    "cannot make a file read-only for root here")


def _make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)
    path.chmod(0o644)


def test_read_only_sqlite_file_spools_and_the_next_run_that_reaches_it_syncs(
        run_cli, marketplace_faulted, spool, tmp_path, capsys):
    m = marketplace_faulted
    db = tmp_path / "results.db"
    url = f"sqlite:///{db}"
    first, day, after = _days(m)
    assert _validate(run_cli, m, first, url, tmp_path / "first.json")[0] == 0
    stored_before = _rows(url)
    capsys.readouterr()
    _make_read_only(db)
    try:
        code, result = _validate(run_cli, m, day, url, tmp_path / "day.json")
        spooled = _assert_failed_cleanly(code, result, capsys, tmp_path / "day.json", spool, m,
                                         store_shown=url, found="found a read-only database")
    finally:
        _make_writable(db)
    assert _rows(url) == stored_before

    code, _ = _validate(run_cli, m, after, url, tmp_path / "after.json")
    err = capsys.readouterr().err
    assert code == 1
    assert f"wrote 1 spooled run(s) to the store (validate marketplace_features online {day})" in err
    _assert_synced_once(url, day, spooled["result"], m, spool)
    assert set(_rows(url)) == {first, day, after} and _rows(url)[first] == stored_before[first]


def test_a_text_file_as_store_exits_3_and_is_left_as_it_was(run_cli, marketplace_faulted, spool,
                                                            tmp_path, capsys):
    m = marketplace_faulted
    text = tmp_path / "results.db"
    text.write_text("these are my notes, not a database\n" * 40)
    url = f"sqlite:///{text}"
    code, result = _validate(run_cli, m, m.last.isoformat(), url, tmp_path / "day.json")
    spooled = _assert_failed_cleanly(code, result, capsys, tmp_path / "day.json", spool, m,
                                     store_shown=url,
                                     found="found a file that is not a SQLite database")
    assert text.read_text() == "these are my notes, not a database\n" * 40

    code, _ = run_cli("store", "sync", "--store", url)
    captured = capsys.readouterr()
    assert code == 3 and "kept       validate marketplace_features online" in captured.out
    assert "not a SQLite database" in captured.err and "Traceback" not in captured.err
    assert len(list(spool.glob("*.json"))) == 1

    text.rename(tmp_path / "notes.txt")  # the operator moves the file away: sync creates the store
    code, _ = run_cli("store", "sync", "--store", url)
    assert code == 0 and "1 synced" in capsys.readouterr().out
    _assert_synced_once(url, m.last.isoformat(), spooled["result"], m, spool)


def test_a_directory_as_store_exits_3(run_cli, marketplace_faulted, spool, tmp_path, capsys):
    m = marketplace_faulted
    folder = tmp_path / "store-dir"
    folder.mkdir()
    url = f"sqlite:///{folder}"
    code, result = _validate(run_cli, m, m.last.isoformat(), url, tmp_path / "day.json")
    _assert_failed_cleanly(code, result, capsys, tmp_path / "day.json", spool, m,
                           store_shown=url, found="found a directory")
    assert list(folder.iterdir()) == []


def test_a_corrupt_sqlite_store_exits_3(run_cli, marketplace_faulted, spool, tmp_path, capsys):
    m = marketplace_faulted
    db = tmp_path / "results.db"
    url = f"sqlite:///{db}"
    first, _, day = _days(m)
    assert _validate(run_cli, m, first, url, tmp_path / "first.json")[0] == 0
    capsys.readouterr()
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    data[page:] = b"\xa5" * (len(data) - page)  # every page after the schema page is garbage
    counter = int.from_bytes(data[24:28], "big") + 1  # "changed by another process": no cache
    data[24:28] = counter.to_bytes(4, "big")
    db.write_bytes(bytes(data))
    code, result = _validate(run_cli, m, day, url, tmp_path / "day.json")
    _assert_failed_cleanly(code, result, capsys, tmp_path / "day.json", spool, m,
                           store_shown=url, found="found a corrupt SQLite database")


def test_an_unreachable_server_is_named_without_its_password(run_cli, marketplace_faulted, spool,
                                                            tmp_path, capsys):
    import socket

    m = marketplace_faulted
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    url = f"postgresql+psycopg://funnel:s3cret-pw@127.0.0.1:{port}/results"
    code, result = _validate(run_cli, m, m.last.isoformat(), url, tmp_path / "day.json")
    spooled = _assert_failed_cleanly(
        code, result, capsys, tmp_path / "day.json", spool, m,
        store_shown=f"postgresql+psycopg://funnel:***@127.0.0.1:{port}/results",
        found="found it unreachable")
    assert "s3cret-pw" not in json.dumps(spooled)
    assert all("s3cret-pw" not in p.read_text() for p in spool.iterdir())


@pytest.mark.postgres
def test_a_store_database_the_server_refuses_exits_2_and_is_still_spooled(
        run_cli, marketplace_faulted, pg_url, spool, tmp_path, capsys):
    """A server that answers and refuses (unknown database): a retry cannot fix it (exit 2),
    but the run is kept for a sync once the URL is corrected."""
    m = marketplace_faulted
    url = pg_url.rsplit("/", 1)[0] + "/fg_no_such_store_db"
    code, result = _validate(run_cli, m, m.last.isoformat(), url, tmp_path / "day.json")
    captured = capsys.readouterr()
    assert code == 2, captured.err
    [line] = _store_lines(captured.err)
    assert "results store " + url in line and "connection rejected" in line
    assert 'database "fg_no_such_store_db" does not exist' in line and "kept in the spool" in line
    assert json.loads((tmp_path / "day.json").read_text()) == result.to_json()
    assert _one_spooled(spool)["result"] == result.to_json()


@pytest.mark.parametrize("where", ["under_a_file", "a_directory"])
def test_a_json_path_that_cannot_be_written_exits_2_and_the_run_is_still_stored(
        run_cli, marketplace_faulted, spool, tmp_path, capsys, where):
    m = marketplace_faulted
    (tmp_path / "file").write_text("not a folder\n")
    (tmp_path / "folder").mkdir()
    out, found = {"under_a_file": (tmp_path / "file" / "r.json",
                                   "found a regular file where its folder should be "
                                   f"({tmp_path / 'file'})"),
                  "a_directory": (tmp_path / "folder", "found a directory")}[where]
    url = f"sqlite:///{tmp_path / 'results.db'}"
    code, result = _validate(run_cli, m, m.last.isoformat(), url, out)
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    [line] = [x for x in captured.err.splitlines() if "--json" in x]
    assert line == f"funnelguard validate: --json {out}: expected a file path it can write, {found}"
    assert (tmp_path / "file").read_text() == "not a folder\n"
    assert list((tmp_path / "folder").iterdir()) == []
    assert _rows(url)[m.last.isoformat()][:2] == (result.status, len(result.findings))
    assert not spool.exists()


# -- the spool itself: exactly once, newest wins ----------------------------------------------


def _result(partition: str, *, passed: bool) -> RunResult:
    return RunResult("validate", partition,
                     [Finding("range", passed=passed, feature="quoted_apr", environment="online",
                              dataset="outcomes", count=0 if passed else 7, value=float("nan"))],
                     dataset="outcomes", environment="online")


def test_a_spooled_run_never_overwrites_a_newer_run_of_its_key(spool, tmp_path, capsys):
    from funnelguard.commands import execute

    path = tmp_path / "later.db"
    path.mkdir()  # the store is a directory for now
    url = f"sqlite:///{path}"
    assert execute("validate", lambda: _result("2026-09-20", passed=False), store_url=url).code == 3
    assert len(list(spool.glob("*.json"))) == 1
    path.rmdir()
    assert execute("validate", lambda: _result("2026-09-20", passed=True), store_url=url).code == 0
    assert _rows(url) == {"2026-09-20": ("pass", 1, None, None)}
    assert not list(spool.glob("*.json")), "the older spooled run is dropped, not written"
    capsys.readouterr()


def test_an_orphaned_claim_is_synced_and_a_second_sync_writes_nothing(spool, tmp_path, capsys):
    from funnelguard.commands import execute
    from monitors.store.spool import sync
    from monitors.store.store import open_store

    path = tmp_path / "s.db"
    path.mkdir()
    url = f"sqlite:///{path}"
    assert execute("validate", lambda: _result("2026-09-21", passed=False), store_url=url).code == 3
    [file] = spool.glob("*.json")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    file.rename(file.with_name(f"{file.name}.claimed-{dead}.0000"))  # a sync killed mid-write
    path.rmdir()
    store = open_store(url)
    report = sync(store, url)
    assert [e.describe() for e, _ in report.synced] == ["validate outcomes online 2026-09-21"]
    assert list(spool.iterdir()) == []
    again = sync(store, url)
    assert (again.synced, again.superseded, again.kept) == ([], [], [])
    assert _rows(url) == {"2026-09-21": ("fail", 1, None, None)}
    capsys.readouterr()
