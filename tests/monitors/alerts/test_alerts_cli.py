"""``funnelguard alerts mute|unmute|list|flush`` in-process: exit codes, what is printed, the
``--json`` delivery report."""

from __future__ import annotations

import json

import pytest
from alert_cases import connection_json, default_rate, validate_run

from monitors.store import open_store

FP = "default_rate|ranking_features|online|approval_odds||device_type=android"


@pytest.fixture
def cli_store(store_url, clock):
    open_store(store_url).record_run(validate_run(default_rate()))
    return store_url


def test_mute_list_unmute(run_cli, cli_store, capsys):
    assert run_cli("alerts", "list", "--store", cli_store)[0] == 0
    out = capsys.readouterr().out
    assert f"OPEN (1)\n  {FP}  since 2026-10-24" in out
    assert "PENDING (1)\n  #1 alert validate|ranking_features|online|2026-10-24  pending" in out
    code, _ = run_cli("alerts", "mute", FP, "--for", "24h", "--reason", "prequal rollback",
                      "--store", cli_store)
    assert code == 0 and capsys.readouterr().out.startswith(f"muted {FP} until ")
    run_cli("alerts", "list", "--store", cli_store)
    out = capsys.readouterr().out
    assert "OPEN (0)" in out and "MUTED (1)" in out and "(open) prequal rollback" in out
    assert run_cli("alerts", "unmute", FP, "--store", cli_store)[0] == 0
    run_cli("alerts", "list", "--store", cli_store)
    assert "MUTED (0)" in capsys.readouterr().out


def test_mute_refuses_unknown_fingerprints_and_bad_durations(run_cli, cli_store, capsys):
    code, result = run_cli("alerts", "mute", FP.replace("android", "androd"), "--for", "2h",
                           "--reason", "x", "--store", cli_store)
    assert code == 2 and result.error.kind == "input"
    assert "not among the 1 known; did you mean" in result.error.message and FP in \
        result.error.message
    code, result = run_cli("alerts", "mute", FP, "--for", "tomorrow", "--reason", "x",
                           "--store", cli_store)
    assert code == 2
    assert result.error.message == ("alerts mute --for: expected a duration like 24h, 30m, 2d, "
                                    "90s or 1w; found 'tomorrow'")
    code, result = run_cli("alerts", "mute", FP, "--for", "2h", "--reason", " ",
                           "--store", cli_store)
    assert code == 2 and "--reason" in result.error.message


def test_flush_exit_codes_and_json(run_cli, cli_store, tmp_path, monkeypatch, refused_url,
                                   capsys):
    monkeypatch.delenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", raising=False)
    code, result = run_cli("alerts", "flush", "--store", cli_store)
    assert code == 2 and "Slack connection 'funnelguard_slack'" in result.error.message
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", connection_json(refused_url))
    monkeypatch.setenv("FUNNELGUARD_SLACK_TIMEOUT", "0.5")
    out = tmp_path / "flush.json"
    code, _ = run_cli("alerts", "flush", "--store", cli_store, "--json", out)
    assert code == 3
    doc = json.loads(out.read_text())
    assert doc["status"] == "error" and doc["error"]["kind"] == "environment"
    assert [(f["check"], f["passed"], f["value"]) for f in doc["findings"]] == [
        ("alert_delivery", False, "pending")]
    assert "connection refused" in doc["findings"][0]["message"]
    assert "1 waiting after failed deliveries" in capsys.readouterr().out


def test_flush_with_an_empty_outbox_needs_no_slack(run_cli, store_url, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", raising=False)
    assert run_cli("alerts", "flush", "--store", store_url)[0] == 0


def test_registering_the_command_imports_nothing_heavy():
    import subprocess
    import sys

    probe = ("import sys, funnelguard.cli, monitors.alerts.cli, monitors.alerts; "
             "print(sorted(m for m in ('airflow', 'pandas', 'torch', 'evidently', 'pandera') "
             "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
