"""Serving-score replay: a served default on approval_odds is found and attributed."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd

from funnelguard.warehouse import FEATURES, TASKS, feature_names
from model.evaluation.replay import ReplayFrames, replay_scores
from model.evaluation.scorers import ResolvedScorer

LAST = "2026-10-24"  # the faulted partition (conftest.FAULT)


class OddsScorer:
    """A tiny scorer: every task's logit is 3 * approval_odds + 10 * user_ctr_30d - 4."""

    def predict(self, frame):
        z = 3 * frame["approval_odds"].to_numpy(float) + 10 * frame["user_ctr_30d"].to_numpy(float)
        p = 1 / (1 + np.exp(-(z - 4)))
        return {t: p for t in TASKS}


def frames(online_odds, offline_odds, requests):
    n = len(online_odds)
    base = {f.name: [f.default] * n for f in FEATURES}
    online = pd.DataFrame({**base, "approval_odds": online_odds, "user_ctr_30d": [0.05] * n})
    offline = pd.DataFrame({**base, "approval_odds": offline_odds, "user_ctr_30d": [0.05] * n})
    online["impression_id"] = [f"i{k}" for k in range(n)]
    scores = OddsScorer().predict(online)
    for t in TASKS:
        online[f"score_{t}"] = scores[t]
    return ReplayFrames(online, offline, np.array(requests), key="impression_id",
                        features=tuple(feature_names()),
                        score_columns={t: f"score_{t}" for t in TASKS})


def test_replay_attributes_the_difference_and_counts_rank_moves_by_hand():
    # One request of four: offline order by odds is 0.9, 0.6, 0.3, 0.1; online the 0.9 row is
    # served as 0.0 and drops from rank 1 to rank 4 (a move of 3); the others move up by 1.
    fr = frames([0.0, 0.6, 0.3, 0.1], [0.9, 0.6, 0.3, 0.1], ["r"] * 4)
    out = replay_scores(ResolvedScorer(OddsScorer(), "odds", serves=True), fr, rank_k=1)
    click = out.tasks[0]
    assert click.logged_off == 0 and click.logged_max == 0.0
    assert click.rank_moved_share == 0.25
    (only,) = click.contributions
    assert only[0] == "approval_odds" and only[2] == 1.0 and only[3] == 1
    s = OddsScorer().predict(pd.DataFrame({"approval_odds": [0.0, 0.9], "user_ctr_30d": [.05, .05]}))
    assert click.skew_mad == np.abs(s["click"][0] - s["click"][1]) / 4


def test_serving_default_on_approval_odds_fails_replay_and_names_it(run_cli, skewed_warehouse,
                                                                     tmp_path):
    out = tmp_path / "replay.json"
    code, result = run_cli("replay", "--warehouse", skewed_warehouse, "--date", LAST,
                           "--json", out)
    assert code == 1
    doc = json.loads(out.read_text())
    assert doc["status"] == "fail" and doc["replay"]["serves"] is True
    for task in TASKS:
        (skew,) = [f for f in result.findings if f.check == "score_replay_skew" and f.task == task]
        assert not skew.passed and skew.severity == "error" and skew.value > 0.05
        assert "main contributor approval_odds" in skew.message
        named = [f for f in result.findings
                 if f.check == "score_replay_contributor" and f.task == task]
        top = max(named, key=lambda f: f.value)
        assert top.feature == "approval_odds" and not top.passed and top.value > 0.5
        # Same data, same model: the served model reproduces its own logged scores.
        (logged,) = [f for f in result.findings
                     if f.check == "score_replay_logged" and f.task == task]
        assert logged.passed and logged.severity == "error" and logged.count == 0
    report = {t["task"]: t for t in doc["replay"]["tasks"]}
    assert report["approval"]["contributions"][0]["feature"] == "approval_odds"
    assert set(report["click"]["distributions"]) == {"online", "offline", "logged"}


def test_the_clean_day_before_passes(run_cli, skewed_warehouse):
    code, result = run_cli("replay", "--warehouse", skewed_warehouse,
                           "--date", "2026-10-23")
    assert code == 0, [f.message for f in result.failures]
    skews = [f for f in result.findings if f.check == "score_replay_skew"]
    assert len(skews) == 4 and all(f.passed for f in skews)
    assert not [f for f in result.findings
                if f.check == "score_replay_contributor" and f.feature == "approval_odds"]


def test_a_candidate_model_is_compared_with_the_logs_for_reference_only(
        run_cli, skewed_warehouse, untrained_model_dir):
    code, result = run_cli("replay", "--warehouse", skewed_warehouse, "--date", "2026-10-23",
                           "--model", untrained_model_dir)
    logged = [f for f in result.findings if f.check == "score_replay_logged"]
    assert len(logged) == 4 and all(f.severity == "info" and f.passed for f in logged)
    assert all(f.value > 0 for f in logged)  # a different model scores differently
    assert code in (0, 1)


def test_unknown_partition_is_an_input_error(run_cli, skewed_warehouse):
    code, result = run_cli("replay", "--warehouse", skewed_warehouse, "--date", "2027-01-01")
    assert code == 2 and "serving_log" in result.error.message and "2027-01-01" in result.error.message


def test_feature_list_is_the_warehouse_contract():
    assert "approval_odds" in feature_names()


def test_streaming_noise_within_the_contract_tolerance_is_not_a_contributor():
    # user_ctr_30d's contract tolerance is 0.005: 0.004 of noise is legitimate, 0.05 is not.
    fr = frames([0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5], ["r"] * 4)
    noisy = fr.served.copy()
    noisy["user_ctr_30d"] = [0.054, 0.046, 0.1, 0.05]
    scorer = ResolvedScorer(OddsScorer(), "odds", serves=True)
    tolerant = dataclasses.replace(fr, served=noisy, tolerances={"user_ctr_30d": (0.005, 0.0)})
    (click, *_) = replay_scores(scorer, tolerant).tasks
    (only,) = click.contributions
    assert only[0] == "user_ctr_30d" and only[3] == 1  # only the row 0.05 away is named
    assert only[1] > 0 and 0.5 < only[2] < 1.0  # the noise within tolerance stays unexplained
    exact = dataclasses.replace(tolerant, tolerances={})
    (click_exact, *_) = replay_scores(scorer, exact).tasks
    assert click_exact.contributions[0][3] == 3  # without the tolerance all three rows differ


def test_the_clean_day_names_no_contributor_for_streaming_noise(run_cli, skewed_warehouse):
    # Online user_ctr_30d carries streaming noise (|delta| <= 0.005, its contract tolerance) on
    # every row, merchant_approval_rate_90d and account_age_days small differences within
    # theirs: none of them explains score skew.
    code, result = run_cli("replay", "--warehouse", skewed_warehouse, "--date", "2026-10-23")
    assert code == 0
    assert not [f for f in result.findings if f.check == "score_replay_contributor"]
    tasks = result.details["replay"]["tasks"]
    assert len(tasks) == 4 and all(t["contributions"] == [] for t in tasks)
