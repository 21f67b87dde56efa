"""The drift, skew and freshness commands at the edge: flags, JSON, HTML, exit codes, errors."""

from __future__ import annotations

import json
import subprocess
import sys

DAYS, PER_DAY = 10, 2000


def test_drift_writes_json_html_and_metrics(warehouse, run_cli, tmp_path):
    url = warehouse(days=DAYS, per_day=PER_DAY)
    out, html = tmp_path / "drift.json", tmp_path / "html"
    code, result = run_cli("drift", "--warehouse", url, "--date", "2026-10-10", "--json", out,
                           "--html", html, "--sample-size", 1500)
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["command"] == "drift" and doc["status"] == "pass" and doc["partition"] == "2026-10-10"
    checks = {f["check"] for f in doc["findings"]}
    assert checks == {"drift", "default_rate"}
    assert (html / "drift.html").exists() and (html / "drift_online_vs_offline.html").stat().st_size > 0
    names = {m.name for m in result.metrics}
    assert names == {"drift_score", "default_rate"}
    scores = [m for m in result.metrics if m.name == "drift_score"]
    assert len(scores) == 45  # 15 features x (online_vs_offline, offline, online)


def test_skew_and_freshness_write_their_reports(warehouse, run_cli, tmp_path):
    url = warehouse(days=DAYS, per_day=PER_DAY)
    code, result = run_cli("skew", "--warehouse", url, "--date", "2026-10-10", "--html", tmp_path)
    assert code == 0 and (tmp_path / "skew.html").exists()
    assert any(m.name == "mismatch_rate" for m in result.metrics)
    code, result = run_cli("freshness", "--warehouse", url, "--date", "2026-10-10", "--html", tmp_path)
    assert code == 0
    assert {f.check for f in result.findings} == {"freshness_arrival", "volume", "freshness_latest_event",
                                                  "freshness_sla"}


def test_partition_that_has_not_arrived(warehouse, run_cli, tmp_path):
    url = warehouse(days=DAYS, per_day=PER_DAY)
    code, result = run_cli("freshness", "--warehouse", url, "--date", "2026-10-11", "--html", tmp_path)
    assert code == 1
    assert {(f.environment, f.passed) for f in result.findings if f.check == "freshness_arrival"} == {
        ("offline", False), ("online", False)}
    code, result = run_cli("skew", "--warehouse", url, "--date", "2026-10-11", "--html", tmp_path)
    assert code == 2 and result.error.kind == "input"
    assert "offline_features" in result.error.message and "2026-10-11" in result.error.message


def test_bad_input_exits_2(run_cli, tmp_path):
    code, result = run_cli("drift", "--warehouse", f"sqlite:///{tmp_path / 'missing.db'}",
                           "--date", "2026-10-10")
    assert code == 2 and "no file" in result.error.message
    code, result = run_cli("skew", "--warehouse", "sqlite:///x.db", "--date", "10/10/2026")
    assert code == 2 and "YYYY-MM-DD" in result.error.message


def test_registration_imports_nothing_heavy():
    code = ("import sys, argparse, monitors.cli as m; p = argparse.ArgumentParser(); "
            "m.register(p.add_subparsers()); "
            "heavy = {'pandas', 'evidently', 'torch', 'pandera', 'airflow'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
