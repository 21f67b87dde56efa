"""The CLI edge of the contracts package: validate, contracts lint, contracts diff (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts import resolve_contract_path
from monitors.store import open_store
from tests.contracts.conftest import D2, D4

RANKING = Path(resolve_contract_path("ranking_features"))


def test_validate_writes_json_and_stores_the_run(run_cli, faulted_url, tmp_path):
    out, store = tmp_path / "out.json", f"sqlite:///{tmp_path / 'store.db'}"
    code, result = run_cli("validate", "--env", "offline", "--warehouse", faulted_url,
                           "--date", D2, "--json", out, "--store", store)
    assert code == 1 and result.status == "fail"
    doc = json.loads(out.read_text())
    assert doc["command"] == "validate" and doc["partition"] == str(D2) and doc["status"] == "fail"
    failed = [(f["feature"], f["check"]) for f in doc["findings"] if not f["passed"]]
    assert failed == [("credit_utilization", "not_null")]
    rows = open_store(store).findings(partition=str(D2), command="validate", failed_only=True)
    assert [(r.feature, r.check, r.environment) for r in rows] == [
        ("credit_utilization", "not_null", "offline")]


def test_validate_clean_partition_exits_0(run_cli, faulted_url):
    code, result = run_cli("validate", "--env", "online", "--warehouse", faulted_url, "--date", D2)
    assert code == 0 and result.status == "pass" and result.environment == "online"


def test_validate_other_contract_and_bad_environment(run_cli, faulted_url):
    code, result = run_cli("validate", "--contract", "impressions", "--env", "offline",
                           "--warehouse", faulted_url, "--date", D4)
    assert code == 0 and result.dataset == "impressions"
    code, result = run_cli("validate", "--contract", "labels", "--env", "online",
                           "--warehouse", faulted_url, "--date", D4)
    assert code == 2 and "has environments ['offline']" in result.error.message


def test_validate_bad_contract_is_exit_2_with_file_line(run_cli, faulted_url, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(RANKING.read_text().replace("required: true", "requried: true", 1))
    code, result = run_cli("validate", "--contract", bad, "--env", "offline",
                           "--warehouse", faulted_url, "--date", D4)
    assert code == 2 and result.error.kind == "input"
    assert f"{bad}:" in result.error.message and "did you mean `required`?" in result.error.message


def test_validate_unreachable_database_is_exit_3(run_cli):
    code, result = run_cli("validate", "--env", "offline", "--date", D4, "--warehouse",
                           "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    assert code == 3 and result.error.kind == "environment"


def test_lint_exit_codes(run_cli, tmp_path, capsys):
    code, _ = run_cli("contracts", "lint", RANKING, "labels", "impressions")
    assert code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(RANKING.read_text().replace("- name: item_apr", "- name: item apr"))
    code, _ = run_cli("contracts", "lint", RANKING, bad)
    assert code == 2
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "safe SQL identifier" in err


def test_diff_exit_codes_and_formats(run_cli, tmp_path, capsys):
    same = tmp_path / "same.yaml"
    same.write_text(RANKING.read_text())
    code, _ = run_cli("contracts", "diff", RANKING, same)
    assert code == 0 and "No breaking change" in capsys.readouterr().out
    widened = tmp_path / "widened.yaml"
    widened.write_text(RANKING.read_text().replace("{minimum: 0, maximum: 23}", "{minimum: 0, maximum: 24}")
                       .replace("version: 1.0.0", "version: 1.1.0"))
    code, _ = run_cli("contracts", "diff", RANKING, widened, "--format", "json")
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["breaking"] is True
    assert [(c["kind"], c["field"], c["breaking_model"]) for c in doc["changes"]] == [
        ("range_widened", "hour_of_day", True)]


def test_diff_of_different_contracts_is_an_input_error(run_cli):
    code, result = run_cli("contracts", "diff", "ranking_features", "labels")
    assert code == 2 and "two versions of one contract" in result.error.message


def test_diff_backtest_reports_share_of_failing_rows(run_cli, faulted_url, tmp_path, capsys):
    tighter = tmp_path / "tighter.yaml"
    tighter.write_text(RANKING.read_text().replace("{minimum: 300, maximum: 850}", "{minimum: 600, maximum: 850}")
                       .replace("version: 1.0.0", "version: 2.0.0"))
    code, _ = run_cli("contracts", "diff", RANKING, tighter, "--format", "json",
                      "--backtest-warehouse", faulted_url, "--days", 2)
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    backtest = doc["backtest"]
    assert {(b["environment"], b["partition"]) for b in backtest} == {
        (env, day) for env in ("offline", "online") for day in ("2026-10-03", "2026-10-04")}
    offline = next(b for b in backtest if b["environment"] == "offline" and b["partition"] == "2026-10-04")
    # credit scores between 300 and 600 now fail; the old contract passed that partition
    assert offline["old_failing_share"] == 0.0 and 0.05 < offline["new_failing_share"] < 0.9
    nan_day = next(b for b in backtest if b["environment"] == "offline" and b["partition"] == "2026-10-03")
    assert nan_day["old_failing_share"] == pytest.approx(0.05, abs=0.01)  # the nan_burst day
