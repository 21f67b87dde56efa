"""Every command on the second project, through the CLI edge, by its project file alone.

The marketplace (tests/byow/marketplace.py) has its own tables, partition (``event_date``), key
(``imp_key``), event time (``shown_at``), stages (click -> signup -> funded), features,
sentinels and owners; nothing in the product was written for it. Each command is run in-process
with ``--project`` only (the warehouse comes from the project file).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def cli(run_cli):
    def _run(m, *argv):
        return run_cli(*argv, "--project", str(m.project_path))

    return _run


def _failing(result, check=None):
    return [f for f in result.findings if not f.passed and (check is None or f.check == check)]


def test_validate_every_part_passes_on_a_clean_day(cli, marketplace):
    day = marketplace.last.isoformat()
    for argv in (("--env", "offline"), ("--env", "online"),
                 ("--dataset", "impressions", "--env", "offline"),
                 ("--dataset", "labels", "--env", "offline")):
        code, result = cli(marketplace, "validate", "--date", day, *argv)
        assert code == 0, [f.message for f in _failing(result)]
    assert {result.dataset} == {"outcomes"}


def test_online_fault_is_caught_on_the_right_feature_segment_and_owner(cli, marketplace_faulted,
                                                                     tmp_path):
    m = marketplace_faulted
    day = m.last.isoformat()
    code, result = cli(m, "validate", "--date", day, "--env", "online")
    assert code == 1
    assert {f.feature for f in _failing(result)} == {"quoted_apr"}
    code, drift = cli(m, "drift", "--date", day, "--html", str(tmp_path / "r"))
    assert code == 1
    segments = {(f.feature, f.segment) for f in _failing(drift, "default_rate") if f.segment}
    assert ("quoted_apr", "channel=app") in segments
    assert not any(f.feature != "quoted_apr" for f in _failing(drift) if f.severity == "error")
    code, skew = cli(m, "skew", "--date", day, "--html", str(tmp_path / "r"))
    assert code == 1
    assert {f.feature for f in _failing(skew) if f.feature} == {"quoted_apr"}
    from funnelguard.project import load_project

    assert load_project(m.project_path).owner_of(result.dataset, "quoted_apr").team == "pricing"


def test_the_days_before_the_fault_pass(cli, marketplace_faulted, tmp_path):
    day = (marketplace_faulted.last.replace(day=marketplace_faulted.last.day - 1)).isoformat()
    for command in ("skew", "freshness"):
        code, result = cli(marketplace_faulted, command, "--date", day, "--html", str(tmp_path))
        assert code == 0, (command, [f.message for f in _failing(result)])


def test_gate_judges_the_projects_own_stages(cli, marketplace, tmp_path):
    out = tmp_path / "gate.json"
    code, result = cli(marketplace, "gate", "--as-of", marketplace.as_of.isoformat(),
                       "--json", str(out))
    assert code in (0, 1)
    tasks = {f.task for f in result.findings if f.task}
    assert tasks == {"click", "signup", "funded"}
    assert json.loads(out.read_text())["command"] == "gate"


def test_train_evaluate_replay_explain(cli, marketplace_faulted, tmp_path):
    m = marketplace_faulted
    model_dir = tmp_path / "model"
    code, result = cli(m, "train", "--as-of", m.last.isoformat(), "--out", str(model_dir),
                       "--config", str(HERE / "tiny_train.yaml"))
    assert code == 0, result.error or [f.message for f in _failing(result)]
    saved = json.loads((model_dir / "model.json").read_text())
    assert list(saved["tasks"]) == ["click", "signup", "funded"]
    code, ev = cli(m, "evaluate", "--model", str(model_dir), "--as-of", m.last.isoformat(),
                   "--bootstrap", "0", "--no-importance")
    assert ev.error is None and code in (0, 1)
    assert {f.task for f in ev.findings if f.task} <= {"click", "signup", "funded"}
    code, replay = cli(m, "replay", "--date", m.last.isoformat(), "--model", str(model_dir))
    assert replay.error is None and code in (0, 1)
    # the served quoted_apr differs from the warehouse's: it is the score difference's cause
    contributors = {f.feature for f in replay.findings if f.check == "score_replay_contributor"}
    assert contributors == {"quoted_apr"}
    # the logged scores cannot be recomputed here: the served model is not in the warehouse
    code, refused = cli(m, "replay", "--date", m.last.isoformat())
    assert code == 2 and "--model" in refused.error.message
    code, explained = cli(m, "explain", "req020-00001", "--model", "served")
    assert explained.error is None
    assert "M-0" not in json.dumps(explained.to_json())  # member_ref is personal data


def test_cli_runs_carry_their_project_to_the_alert(run_cli, marketplace_faulted, tmp_path,
                                                   monkeypatch):
    """``--project`` alone (no environment variable, another working directory): the queued
    alert knows the project and contract, so it is addressed to the feature's owner."""
    import sqlalchemy as sa

    from monitors.store import AlertOutbox, open_store

    m = marketplace_faulted
    monkeypatch.delenv("FUNNELGUARD_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    code, _ = run_cli("validate", "--project", m.project_path, "--date", m.last.isoformat(),
                      "--env", "online", "--store", store)
    assert code == 1
    with sa.orm.Session(open_store(store).engine) as s:
        rows = list(s.scalars(sa.select(AlertOutbox)))
    assert rows and {r.project for r in rows} == {str(m.project_path.resolve())}
    assert {Path(r.contract).name for r in rows} == {"marketplace_features.yaml"}


def test_contract_override_is_the_contract_the_alert_reads(run_cli, marketplace_faulted,
                                                            tmp_path, monkeypatch):
    """``--contract FILE`` with a contract of another name: the run stores that file, so its
    alert is addressed from it (not from the project's features contract, nor the default)."""
    import sqlalchemy as sa

    from monitors.store import AlertOutbox, open_store

    m = marketplace_faulted
    renamed = tmp_path / "features_v2.yaml"
    renamed.write_text((m.root / "contracts" / "marketplace_features.yaml").read_text()
                       .replace("name: marketplace_features", "name: marketplace_features_v2")
                       .replace("id: marketplace_features", "id: marketplace_features_v2"))
    store = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.chdir(tmp_path)
    code, result = run_cli("validate", "--project", m.project_path, "--contract", renamed,
                           "--date", m.last.isoformat(), "--env", "online", "--store", store)
    assert code == 1 and result.dataset == "marketplace_features_v2"
    with sa.orm.Session(open_store(store).engine) as s:
        rows = list(s.scalars(sa.select(AlertOutbox)))
    assert rows and {r.contract for r in rows} == {str(renamed.resolve())}
