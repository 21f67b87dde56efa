"""Contract tooling on the second project: lint (files and ``--project``), diff, backtest by the
contract's own partition column, and the ``contracts infer`` action's wiring."""

from __future__ import annotations

import json
import shutil
import sys
import types

import pytest

from contracts import load_contract
from contracts.diff import diff_contracts
from funnelguard.cli import build_parser

STAGES = ["click", "signup", "funded"]


@pytest.fixture
def project_copy(marketplace, tmp_path):
    """A copy of the marketplace project's files (same warehouse) to break on purpose."""
    root = tmp_path / "proj"
    shutil.copytree(marketplace.root / "contracts", root / "contracts")
    shutil.copy(marketplace.project_path, root / "funnelguard.yaml")
    return root


def _line_of(path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_lint_passes_the_marketplace_contracts_and_project(run_cli, marketplace, capsys):
    paths = sorted((marketplace.root / "contracts").glob("*.yaml"))
    assert load_contract(marketplace.root / "contracts" / "outcomes.yaml").tasks == tuple(STAGES)
    code, _ = run_cli("contracts", "lint", *paths)
    assert code == 0
    assert "3 file(s), 0 problem(s)" in capsys.readouterr().out
    code, _ = run_cli("contracts", "lint", "--project", marketplace.project_path)
    assert code == 0
    assert "4 file(s)" in capsys.readouterr().out  # the project file and its three contracts


def test_lint_of_the_packaged_project_passes(run_cli):
    from funnelguard.project import PACKAGED_PROJECT

    code, _ = run_cli("contracts", "lint", "--project", PACKAGED_PROJECT)
    assert code == 0


def test_any_safe_identifier_is_a_stage(run_cli, project_copy, capsys):
    outcomes = project_copy / "contracts" / "outcomes.yaml"
    outcomes.write_text(outcomes.read_text().replace("funded", "loan_funded_2"))
    features = project_copy / "contracts" / "marketplace_features.yaml"
    features.write_text(features.read_text().replace("value: funded", "value: loan_funded_2"))
    code, _ = run_cli("contracts", "lint", "--project", project_copy / "funnelguard.yaml")
    assert code == 0, capsys.readouterr().err
    assert load_contract(outcomes).tasks == ("click", "signup", "loan_funded_2")


def test_a_label_whose_stage_has_no_maturity_window_fails_with_file_line(run_cli, project_copy,
                                                                       capsys):
    outcomes = project_copy / "contracts" / "outcomes.yaml"
    outcomes.write_text(outcomes.read_text() + (
        "      - name: repaid_time\n"
        "        logicalType: timestamp\n"
        "        customProperties:\n"
        "          - {property: role, value: label}\n"
        "          - {property: task, value: repaid}\n"))
    line = _line_of(outcomes, "- name: repaid_time")
    expected = (f"{outcomes}:{line}: property `repaid_time`: task 'repaid' has no maturity "
                f"window; the stages are {STAGES}")
    code, _ = run_cli("contracts", "lint", outcomes)
    assert code == 2 and expected in capsys.readouterr().err
    code, _ = run_cli("contracts", "lint", "--project", project_copy / "funnelguard.yaml")
    assert code == 2 and expected in capsys.readouterr().err


def test_lint_project_reports_counts_from_a_non_timestamp_column(run_cli, project_copy, capsys):
    outcomes = project_copy / "contracts" / "outcomes.yaml"
    outcomes.write_text(outcomes.read_text().replace("countsFrom: shown_at", "countsFrom: channel"))
    code, _ = run_cli("contracts", "lint", outcomes)
    assert code == 0  # alone the contract is fine: only the project knows the impressions table
    capsys.readouterr()
    project = project_copy / "funnelguard.yaml"
    code, _ = run_cli("contracts", "lint", "--project", project)
    captured = capsys.readouterr()
    assert code == 2
    problems = captured.err.strip().splitlines()
    assert len(problems) == 3  # one per stage
    # each points at its own countsFrom line of the labels contract
    assert [p.split(": ")[0] for p in problems] == [
        f"{outcomes}:{n}" for n in sorted(int(p.split(": ")[0].rsplit(":", 1)[1]) for p in problems)]
    assert len({p.split(": ")[0] for p in problems}) == 3
    assert ("maturityWindows.click.countsFrom 'channel' is not a timestamp property of the "
            "impressions contract ranking_requests") in problems[0]
    assert "['shown_at']" in problems[0]
    assert "3 problem(s)" in captured.out


def test_lint_project_reports_a_missing_contract_file(run_cli, project_copy, capsys):
    (project_copy / "contracts" / "outcomes.yaml").unlink()
    project = project_copy / "funnelguard.yaml"
    code, _ = run_cli("contracts", "lint", "--project", project)
    err = capsys.readouterr().err
    line = _line_of(project, "labels:")
    assert code == 2 and f"{project}:{line}: contracts.labels: expected a contract file" in err


def test_lint_needs_paths_or_a_project(run_cli, tmp_path):
    code, result = run_cli("contracts", "lint")
    assert code == 2 and "--project" in result.error.message
    code, _ = run_cli("contracts", "lint", "--project", tmp_path / "absent.yaml")
    assert code == 2


def test_diff_reports_a_lost_partition_column(marketplace, tmp_path):
    old = marketplace.root / "contracts" / "outcomes.yaml"
    new = tmp_path / "outcomes.yaml"
    new.write_text(old.read_text().replace("        partitioned: true\n", "")
                   .replace("version: 1.4.0", "version: 2.0.0"))
    changes = diff_contracts(load_contract(old), load_contract(new))
    assert [(c.kind, c.breaking_producers, c.breaking_model) for c in changes] == [
        ("partition_column_changed", True, True)]
    assert "partition column 'event_date' -> none" in changes[0].message


def test_diff_reports_reordered_stages(marketplace, tmp_path):
    old = marketplace.root / "contracts" / "outcomes.yaml"
    text = old.read_text()
    click = "      click: {days: 1, countsFrom: shown_at}\n"
    new = tmp_path / "outcomes.yaml"
    new.write_text(text.replace(click, "").replace(
        "      funded: {days: 10, countsFrom: shown_at}\n",
        "      funded: {days: 10, countsFrom: shown_at}\n" + click))
    kinds = [c.kind for c in diff_contracts(load_contract(old), load_contract(new))]
    assert kinds == ["stage_order_changed", "version_not_bumped"]


def test_backtest_reads_the_contracts_own_partitions(run_cli, marketplace, tmp_path, capsys):
    old = marketplace.root / "contracts" / "marketplace_features.yaml"
    tighter = tmp_path / "marketplace_features.yaml"
    tighter.write_text(old.read_text().replace("{minimum: 0, maximum: 40}", "{minimum: 0, maximum: 30}")
                       .replace("version: 2.1.0", "version: 3.0.0"))
    code, _ = run_cli("contracts", "diff", old, tighter, "--format", "json",
                      "--backtest-warehouse", marketplace.warehouse_url, "--days", 2)
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    days = {str(marketplace.last), str(marketplace.last.fromordinal(marketplace.last.toordinal() - 1))}
    report = doc["backtest"]
    assert {(b["environment"], b["partition"]) for b in report} == {
        (env, d) for env in ("offline", "online") for d in days}
    for b in report:
        # quoted APRs are uniform on [4, 36]: those above 30 (~19 %) now fail; none did before
        assert b["rows"] == 600 and b["old_failing_share"] == 0.0, b
        assert 0.12 < b["new_failing_share"] < 0.26, b


def test_infer_is_a_contracts_action_that_delegates_to_the_scaffolder(run_cli, monkeypatch):
    seen = {}
    fake = types.ModuleType("contracts.scaffold_cli")
    fake.register = lambda subparsers: None
    fake.infer_handler = lambda args: seen.update(vars(args)) or 0
    monkeypatch.setitem(sys.modules, "contracts.scaffold_cli", fake)
    code, result = run_cli("contracts", "infer", "--table", "features_batch", "--warehouse",
                           "sqlite:///wh.db", "--partition-column", "event_date")
    assert code == 0 and result is None
    assert (seen["table"], seen["warehouse"], seen["partition_column"], seen["key_column"],
            seen["out"], seen["command_name"]) == (
        "features_batch", "sqlite:///wh.db", "event_date", None, None, "contracts infer")


def test_infer_requires_table_and_warehouse(capsys):
    parser = build_parser()
    for argv in (["contracts", "infer", "--warehouse", "sqlite:///x.db"],
                 ["contracts", "infer", "--table", "t"]):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(argv)
        assert info.value.code == 2
    assert "--table" in capsys.readouterr().err
