"""The CLI's console: failures first, one summary line for passing checks, --version,
``--json -`` on stdout, runs read back from the store, no traceback on a closed pipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from funnelguard.cli import run


@pytest.fixture
def faulted_validate(marketplace_faulted, tmp_path, monkeypatch):
    monkeypatch.setenv("FUNNELGUARD_STORE", f"sqlite:///{tmp_path / 'store.db'}")
    m = marketplace_faulted
    return ["--project", str(m.project_path), "--date", m.last.isoformat(), "--env", "online"]


def test_failures_first_and_passing_checks_as_one_line(faulted_validate, capsys):
    code, result = run(["validate", *faulted_validate])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    passed = sum(f.passed for f in result.findings)
    assert lines[0].startswith("FAIL default_rate")
    assert "quoted_apr" in lines[0]
    assert f"ok   {passed} checks passed (-v lists them)" in lines
    assert not any(line.startswith("ok   ") and "checks passed" not in line for line in lines)


def test_verbose_lists_passing_checks_after_the_failures(faulted_validate, capsys):
    code, result = run(["-v", "validate", *faulted_validate])
    lines = capsys.readouterr().out.splitlines()
    ok_lines = [i for i, line in enumerate(lines) if line.startswith("ok  ")]
    fail_lines = [i for i, line in enumerate(lines) if line.startswith("FAIL")]
    assert len(ok_lines) == sum(f.passed for f in result.findings)
    assert max(fail_lines) < min(ok_lines)


def test_json_dash_writes_the_document_to_stdout(faulted_validate, capsys, tmp_path,
                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _ = run(["validate", *faulted_validate, "--json", "-"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 1 and doc["command"] == "validate" and doc["status"] == "fail"
    assert "funnelguard validate" in captured.err  # the summary moved to stderr
    assert not (tmp_path / "-").exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        run(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("funnelguard ")


def test_runs_list_and_show_read_the_store(faulted_validate, capsys):
    run(["validate", *faulted_validate])
    capsys.readouterr()
    code, _ = run(["runs", "list", "--json", "--command", "validate"])
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert code == 0 and len(runs) == 1
    assert runs[0]["dataset"] == "marketplace_features" and runs[0]["status"] == "fail"
    code, _ = run(["runs", "show", str(runs[0]["id"]), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["findings"][0]["passed"] is False
    assert doc["findings"][0]["feature"] == "quoted_apr"
    code, _ = run(["runs", "list"])
    assert code == 0 and f"{runs[0]['id']:>6}" in capsys.readouterr().out
    code, result = run(["runs", "show", "99999"])
    assert code == 2
    assert "found no run 99999" in capsys.readouterr().err


def test_a_closed_pipe_is_not_a_traceback(marketplace_faulted, tmp_path):
    m = marketplace_faulted
    exe = Path(sys.executable).with_name("funnelguard")
    cmd = (f"'{exe}' -v validate --project '{m.project_path}' --date {m.last} --env online "
           f"--store sqlite:///{tmp_path / 's.db'} | head -1")
    done = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True,
                          text=True, timeout=300)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert done.stdout.startswith("FAIL")
    # a reader that is gone before the first line: the write itself fails (EPIPE)
    done = subprocess.run(["bash", "-c", cmd.replace("| head -1", "| true") + "; echo ${PIPESTATUS[0]}"],
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert done.stdout.strip() == "141"


def test_starting_the_cli_reads_no_contract():
    """``funnelguard --help`` (every start) builds the parser without loading contracts."""
    code = ("import sys; from funnelguard.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('funnelguard.simulator.schema', 'pydantic', 'pandas', "
            "'open_data_contract_standard') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
