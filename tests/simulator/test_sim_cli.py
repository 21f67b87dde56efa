"""``funnelguard simulate``: builds and prints, refuses a used warehouse, documents every fault."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from funnelguard.simulator import FAULTS

ARGS = ("--start", "2026-10-01", "--days", "3", "--per-day", "300", "--seed", "4")


def test_simulate_builds_and_prints_what_it_built(run_cli, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    code, result = run_cli("simulate", "--warehouse", url, *ARGS,
                           "--fault", "serving_default:feature=approval_odds,share=0.5",
                           "--fault", "label_lag:days=1")
    out = capsys.readouterr().out
    assert code == 0 and result is None
    assert "rows: impressions" in out and "serving_log" in out
    assert "expected rate per impression: click" in out
    assert "fault serving_default:feature=approval_odds,share=0.5: approval_odds online 2026-10-03" in out
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        faults = conn.execute(sa.text("SELECT DISTINCT fault FROM fault_manifest ORDER BY fault")).scalars().all()
    engine.dispose()
    assert faults == ["label_lag", "serving_default"]


def test_used_warehouse_is_refused_without_replace(run_cli, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert run_cli("simulate", "--warehouse", url, *ARGS)[0] == 0
    code, result = run_cli("simulate", "--warehouse", url, *ARGS)
    assert code == 2 and result.error.kind == "input"
    assert "expected an empty warehouse" in result.error.message
    assert "--replace" in result.error.message
    assert run_cli("simulate", "--warehouse", url, *ARGS, "--replace")[0] == 0


def test_bad_fault_spec_exits_2_with_the_spec_in_the_message(run_cli, tmp_path):
    code, result = run_cli("simulate", "--warehouse", f"sqlite:///{tmp_path / 'w.db'}", *ARGS,
                           "--fault", "unit_mismatch:feature=approval_odds,factr=100")
    assert code == 2
    assert "--fault 'unit_mismatch:feature=approval_odds,factr=100'" in result.error.message
    assert "'factr'" in result.error.message
    assert not (tmp_path / "w.db").exists() or sa.inspect(
        sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")).get_table_names() == []


def test_bad_start_date_exits_2(run_cli, tmp_path):
    code, result = run_cli("simulate", "--warehouse", f"sqlite:///{tmp_path / 'w.db'}",
                           "--start", "2026-13-01", "--days", "3", "--per-day", "10", "--seed", "1")
    assert code == 2 and "--start: expected a date YYYY-MM-DD" in result.error.message


def test_help_documents_every_fault_with_its_keys(run_cli, capsys):
    with pytest.raises(SystemExit) as done:
        run_cli("simulate", "--help")
    assert done.value.code == 0
    out = capsys.readouterr().out
    for name, kind in FAULTS.items():
        assert f"  {name} " in out, name
        for key in kind.keys:
            assert key.name in out, (name, key.name)
    assert "lag_days=7" in out and "factor=100" in out and "scale=1000000" in out
    assert "--replace" in out and "--per-day" in out


def test_registering_simulate_imports_nothing_heavy():
    # A fresh interpreter is the point: the parent test process has pandas loaded already.
    import subprocess
    import sys

    code = ("import argparse, sys; from funnelguard.simulator import cli; "
            "cli.register(argparse.ArgumentParser().add_subparsers()); "
            "print(sorted(m for m in ('pandas', 'numpy', 'torch', 'evidently', 'pandera', 'airflow', "
            "'pydantic', 'funnelguard.simulator.schema') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
