"""Evaluate, replay and explain on the second project (tests/byow): its own tables, key
(``imp_key``), partition (``event_date``), stages (click -> signup -> funded), features, score
columns (``pred_*``) and segments (``channel``, ``member_tier``); no oracle table."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from funnelguard.commands import job
from funnelguard.warehouse import connect
from tests.byow.marketplace import FAULT_FEATURE, _stage_probabilities

STAGES = ("click", "signup", "funded")


class StandIn:
    """The marketplace's own production formula (what logged ``pred_*``), re-runnable."""

    name = "mkt-stand-in"
    tasks = STAGES
    serves = True

    def predict(self, frame):
        return _stage_probabilities(frame)


@pytest.fixture
def faulted_engine(marketplace_faulted):
    engine = connect(marketplace_faulted.warehouse_url)
    yield engine
    engine.dispose()


# -- evaluate ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_evaluation(marketplace, tmp_path_factory):
    from funnelguard.cli import run

    out = tmp_path_factory.mktemp("mkt-eval") / "evaluate.json"
    code, result = run(["--quiet", "evaluate", "--project", str(marketplace.project_path),
                        "--model", "served", "--as-of", marketplace.as_of.isoformat(),
                        "--bootstrap", "20", "--json", str(out), "--store",
                        f"sqlite:///{out.parent / 'results.db'}"])
    return code, result, json.loads(out.read_text())


def test_evaluate_slices_by_the_projects_own_segments_and_stages(served_evaluation):
    code, result, doc = served_evaluation
    report = doc["evaluation"]
    assert result.error is None and code == (1 if result.status == "fail" else 0)
    assert {f.task for f in result.findings if f.check == "eval_calibration"} == set(STAGES)
    assert report["tasks"] == list(STAGES) and report["oracle"] is False
    assert report["segments"] == ["channel", "member_tier", "user"]
    segments = {s["segment"] for s in report["slices"]}
    assert {"channel=app", "channel=web", "channel=partner", "member_tier=bronze",
            "member_tier=silver", "member_tier=gold", "user=new", "user=returning"} <= segments
    assert not [s for s in segments if s and s.split("=")[0] not in report["segments"]]
    # 21 days from 2026-09-01, as of 09-22: funded matures in 10 days, so 09-09..09-11
    assert report["holdout_days"] == ["2026-09-09", "2026-09-10", "2026-09-11"]
    overall = {s["task"]: s for s in report["slices"] if s["segment"] is None}
    assert set(overall) == set(STAGES)
    assert overall["click"]["rows"] == report["rows"] == 1800  # 3 days x 600, click matured
    # the served model is the formula the outcomes were drawn from: it ranks well
    assert overall["click"]["model"]["auc"]["value"] > 0.6
    floors = {f.task: f.threshold for f in result.findings
              if f.check == "eval_auc_floor" and f.segment is None}
    assert floors == {"click": 0.60, "signup": 0.65, "funded": 0.65}  # by funnel position


def test_served_scores_are_the_logged_pred_columns(marketplace, marketplace_project):
    from model.evaluation.holdout import load_holdout
    from model.evaluation.scorers import resolve_scorer

    engine = connect(marketplace.warehouse_url)
    try:
        holdout = load_holdout(marketplace_project, engine, marketplace.as_of)
        served = resolve_scorer("served", marketplace_project, engine=engine)
        scores = served.predict(holdout.frame.head(50))
        with engine.connect() as conn:
            logged = pd.read_sql(sa.text("SELECT imp_key, pred_funded FROM features_served"),
                                 conn).set_index("imp_key")
    finally:
        engine.dispose()
    assert not served.rescorable and served.tasks == STAGES
    expected = logged["pred_funded"].reindex(holdout.frame["imp_key"].head(50)).to_numpy()
    assert scores["funded"].tolist() == pytest.approx(expected.tolist(), abs=0)


def test_an_untrained_model_loses_to_the_served_champion_and_gets_importance(
        marketplace, marketplace_project, marketplace_model_dir):
    engine = connect(marketplace.warehouse_url)
    try:
        result = job("evaluate")(marketplace_project, engine, marketplace.as_of,
                                 model=marketplace_model_dir, champion="served", bootstrap=20,
                                 segments=False)
    finally:
        engine.dispose()
    regressions = {f.task for f in result.findings
                   if f.check == "eval_champion_auc" and f.failed_error}
    assert "click" in regressions and result.status == "fail"
    leak = next(f for f in result.findings if f.check == "eval_holdout_leak")
    assert leak.passed
    doc = json.loads((marketplace_model_dir / "feature_importance.json").read_text())
    assert set(doc["tasks"]) == set(STAGES)
    assert sorted(doc["tasks"]["funded"]["ranking"]) == sorted(
        marketplace_project.feature_names("offline"))


def test_thresholds_name_the_projects_stages(marketplace_project, tmp_path):
    from model.evaluation.errors import ThresholdsError
    from model.evaluation.thresholds import load_thresholds

    good = tmp_path / "good.yaml"
    good.write_text("evaluation:\n  auc_floor: {funded: 0.7}\n")
    ev, _ = load_thresholds(good, marketplace_project.tasks)
    assert ev.auc_floor == {"click": 0.60, "signup": 0.65, "funded": 0.7}
    assert set(ev.champion_auc_tolerance) == set(STAGES)
    bad = tmp_path / "bad.yaml"
    bad.write_text("evaluation:\n  auc_floor: {approval: 0.7}\n")
    with pytest.raises(ThresholdsError, match=r"unknown stages \['approval'\]"):
        load_thresholds(bad, marketplace_project.tasks)


# -- replay ------------------------------------------------------------------------------------


def test_replay_of_the_faulted_day_names_quoted_apr(marketplace_faulted,
                                                    marketplace_faulted_project, faulted_engine):
    result = job("replay")(marketplace_faulted_project, faulted_engine, marketplace_faulted.last,
                           model=StandIn())
    assert result.status == "fail"
    for task in STAGES:
        (skew,) = [f for f in result.findings
                   if f.check == "score_replay_skew" and f.task == task]
        assert not skew.passed and skew.severity == "error"
        assert f"main contributor {FAULT_FEATURE}" in skew.message
        named = [f for f in result.findings
                 if f.check == "score_replay_contributor" and f.task == task]
        top = max(named, key=lambda f: f.value)
        assert top.feature == FAULT_FEATURE and top.value > 0.9
        # the stand-in reproduces its own logged pred_* (rounded to 6 places)
        (logged,) = [f for f in result.findings
                     if f.check == "score_replay_logged" and f.task == task]
        assert logged.passed and logged.count == 0
        (ranks,) = [f for f in result.findings
                    if f.check == "score_replay_rank_moves" and f.task == task]
        assert ranks.severity == "info" and "no request" in ranks.message
    doc = result.details["replay"]
    assert doc["event_date"] == marketplace_faulted.last.isoformat()
    # ~40 % of the app channel (about half the 600 rows) differ on quoted_apr only
    rows = doc["tasks"][0]["contributions"][0]["rows"]
    assert [c["feature"] for c in doc["tasks"][0]["contributions"]] == [FAULT_FEATURE]
    assert 80 < rows < 160


def test_replay_of_the_clean_day_before_passes(marketplace_faulted, marketplace_faulted_project,
                                               faulted_engine):
    import datetime as dt

    day = marketplace_faulted.last - dt.timedelta(days=1)
    result = job("replay")(marketplace_faulted_project, faulted_engine, day, model=StandIn())
    assert result.status == "pass", [f.message for f in result.failures]
    assert not [f for f in result.findings if f.check == "score_replay_contributor"]


def test_replay_with_a_trained_model_directory_names_quoted_apr(
        run_cli, marketplace_faulted, marketplace_model_dir):
    code, result = run_cli("replay", "--project", marketplace_faulted.project_path,
                           "--date", marketplace_faulted.last, "--model", marketplace_model_dir)
    assert result.error is None and code in (0, 1)
    report = result.details["replay"]
    assert [t["task"] for t in report["tasks"]] == list(STAGES)
    for t in report["tasks"]:
        assert t["contributions"][0]["feature"] == FAULT_FEATURE
    logged = [f for f in result.findings if f.check == "score_replay_logged"]
    assert len(logged) == 3 and all(f.severity == "info" for f in logged)


def test_replay_with_logged_scores_only_is_an_input_error(run_cli, marketplace_faulted):
    code, result = run_cli("replay", "--project", marketplace_faulted.project_path,
                           "--date", marketplace_faulted.last)
    assert code == 2
    assert "known only by its logged scores" in result.error.message
    assert "--model" in result.error.message
    code, result = run_cli("replay", "--project", marketplace_faulted.project_path,
                           "--date", "2027-01-01", "--model", "served")
    assert code == 2 and "features_served" in result.error.message
    assert "event_date = 2027-01-01" in result.error.message


# -- explain -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stuck(marketplace_faulted):
    """An impression of the faulted day whose quoted_apr was served as -9.0, and its rows."""
    engine = connect(marketplace_faulted.warehouse_url)
    with engine.connect() as conn:
        served = pd.read_sql(sa.text(
            "SELECT * FROM features_served WHERE event_date = :d AND quoted_apr = -9.0 "
            "ORDER BY imp_key LIMIT 1"), conn, params={"d": marketplace_faulted.last.isoformat()})
        key = served["imp_key"].iloc[0]
        offline = pd.read_sql(sa.text("SELECT * FROM features_batch WHERE imp_key = :k"), conn,
                              params={"k": key})
    engine.dispose()
    return key, served, offline


def test_explain_reconstructs_the_prediction_and_redacts_personal_data(
        marketplace_faulted_project, faulted_engine, stuck, capsys):
    key, served, offline = stuck
    result = job("explain")(marketplace_faulted_project, faulted_engine, key, model=StandIn(),
                            quiet=False)
    printed = capsys.readouterr().out
    doc = result.details["explanation"]
    assert doc["imp_key"] == key and doc["event_date"] is not None
    rows = {f["feature"]: f for f in doc["features"]}
    assert rows[FAULT_FEATURE]["served"] == -9.0 and rows[FAULT_FEATURE]["differs"]
    assert rows[FAULT_FEATURE]["offline"] == pytest.approx(offline[FAULT_FEATURE].iloc[0])
    assert [n for n, r in rows.items() if r["differs"]] == [FAULT_FEATURE]
    swapped = served.copy()
    swapped[FAULT_FEATURE] = offline[FAULT_FEATURE].to_numpy()
    expected = {t: _stage_probabilities(swapped)[t][0] - _stage_probabilities(served)[t][0]
                for t in STAGES}
    for t in STAGES:
        assert rows[FAULT_FEATURE]["delta"][t] == pytest.approx(expected[t], abs=1e-12)
        assert doc["logged"][t] == pytest.approx(served[f"pred_{t}"].iloc[0], abs=1e-12)
    # member_ref (pii) and loan_amount (restricted) never appear raw
    member, loan = served["member_ref"].iloc[0], served["loan_amount"].iloc[0]
    assert rows["member_ref"]["served"] == "<redacted pii>" and rows["member_ref"]["redacted"]
    assert rows["loan_amount"]["offline"] == "<redacted restricted>"
    assert "<redacted pii>" in printed and "<redacted restricted>" in printed
    text = printed + json.dumps(result.to_json(), default=str)
    assert member not in text and f"{loan:.6g}" not in text and str(loan) not in text
    assert "quoted_apr" in printed and "-9" in printed
    checks = {(f.check, f.feature) for f in result.findings}
    assert ("explain_contribution", FAULT_FEATURE) in checks and result.status == "pass"


def test_explain_with_the_logged_scores_only_shows_them(run_cli, marketplace, tmp_path, capsys):
    engine = connect(marketplace.warehouse_url)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT imp_key, member_ref, pred_click FROM features_served "
                                   "ORDER BY imp_key LIMIT 1")).one()
    engine.dispose()
    out = tmp_path / "explain.json"
    code, result = run_cli("explain", row.imp_key, "--project", marketplace.project_path,
                           "--model", "served", "--json", out)
    assert code == 0, result.error
    printed = capsys.readouterr().out
    doc = json.loads(out.read_text())["explanation"]
    assert doc["logged"]["click"] == pytest.approx(row.pred_click)
    assert doc["offline"] is None and doc["key_column"] == "imp_key"
    assert row.member_ref not in printed and row.member_ref not in out.read_text()
    code, result = run_cli("explain", "req-nope", "--project", marketplace.project_path,
                           "--model", "served")
    assert code == 2 and "imp_key 'req-nope'" in result.error.message
    assert "features_served" in result.error.message
