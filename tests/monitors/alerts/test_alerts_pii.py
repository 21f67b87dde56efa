"""No personal data in any message: for every fault of the simulator's catalogue, findings of
the kind the checks produce — with raw user ids, credit scores and incomes planted in examples,
messages and segments of PII fields — go through the store, the outbox and a real flush; every
body Slack receives, and the failure-notifier summary, is scanned for the planted values."""

from __future__ import annotations

import json

from alert_cases import default_rate

from funnelguard.findings import Finding, RunResult
from monitors.alerts.dispatch import flush_store
from monitors.alerts.message import render_run_summary

# Values that must never reach Slack (user_id, credit_score, annual_income are PII in the
# ranking_features contract; user_id also in impressions).
PLANTED = ("u_48213977", "u_77410023", "712", "787", "123456.78", "12345678", "85250500000")
FAULTS = ("serving_default", "unit_mismatch", "stale_online", "category_remap", "tz_shift",
          "null_burst", "nan_burst", "outlier_burst", "duplicate_keys", "label_lag",
          "label_drop")


def _f(check, feature, env="online", *, message, examples=None, segment=None, value=0.2,
       threshold=0.0, count=630, dataset="ranking_features", task=None) -> Finding:
    return Finding(check=check, passed=False, feature=feature, environment=env,
                   segment=segment, value=value, threshold=threshold, count=count,
                   message=message, examples=examples, dataset=dataset, task=task)


def catalogue_runs() -> dict[str, list[RunResult]]:
    """Per fault, the failing runs the checks would store (validate, skew, drift, gate, train)."""
    def run(command, *findings, dataset="ranking_features", env="online"):
        return RunResult(command=command, partition="2026-10-24", findings=findings,
                         dataset=dataset, environment=env)

    return {
        "serving_default": [run("default-rate", default_rate(feature="credit_score"),
                                default_rate(feature="approval_odds")),
                            run("skew", _f("replay_skew", "credit_score", "online_vs_offline",
                                           message="credit_score offline 712 served as -1",
                                           examples=(712, 787)))],
        "unit_mismatch": [run("skew", _f("replay_skew", "annual_income", "online_vs_offline",
                                         message="annual_income 123456.78 served as 12345678.0",
                                         examples=(123456.78, 12345678.0)))],
        "stale_online": [run("skew", _f("replay_skew", "user_ctr_30d", "online_vs_offline",
                                        message="user_ctr_30d differs on 40 % of rows",
                                        examples=(0.031, 0.044)))],
        "category_remap": [run("validate", _f("allowed_values", "item_type",
                                              message="item_type: 600 rows outside the allowed "
                                                      "values", examples=("crypto_card",)))],
        "tz_shift": [run("drift", _f("drift", "hour_of_day", message="hour_of_day drifted "
                                     "(Wasserstein 0.41 > 0.1)", value=0.41, threshold=0.1))],
        "null_burst": [run("validate", _f("not_null", "user_id", "offline",
                                          message="user_id null on 20 %, e.g. next to "
                                                  "u_48213977", examples=("u_48213977",),
                                          segment="user_id=u_77410023"), env="offline")],
        "nan_burst": [run("validate", _f("finite", "credit_utilization", "offline",
                                         message="credit_utilization: 630 non-finite values",
                                         examples=("inf", "-inf")), env="offline")],
        "outlier_burst": [run("validate", _f("range", "annual_income", "offline",
                                             message="annual_income 85250500000.0 above range",
                                             examples=(85250500000.0,)), env="offline")],
        "duplicate_keys": [run("validate", _f("unique", "impression_id", "offline",
                                              message="impression_id: 60 duplicated keys",
                                              examples=("imp-20261024-000017",), count=60),
                               dataset="impressions", env="offline")],
        "label_lag": [run("gate", _f("label_freshness", None, None, dataset="labels",
                                     message="no label events loaded for 4 days", value=4.0,
                                     threshold=1.0, count=None), dataset="labels", env=None)],
        "label_drop": [run("gate", _f("label_completeness", None, None, dataset="labels",
                                      task="approval", message="approval labels 45 % below "
                                      "the expected rate", value=0.45, threshold=0.2),
                           dataset="labels", env=None),
                       run("train", Finding(check="triage", passed=False, value="task",
                                            task="approval", message="approval head loss "
                                            "diverged while other heads improved"),
                           dataset=None, env=None)],
    }


def test_no_pii_reaches_slack(store, clock, slack, settings, directory):
    runs = catalogue_runs()
    assert tuple(runs) == FAULTS
    for fault_runs in runs.values():
        for result in fault_runs:
            store.record_run(result)
    report = flush_store(store, settings=settings, directory=directory, now=clock)
    # a row per run and feature (14); one message per partition, dataset and feature
    assert report.exit_code == 0 and len(report.sent) == 14
    assert len(slack.requests) == 12
    bodies = [json.dumps(body, ensure_ascii=False) for body in slack.requests]
    summaries = [render_run_summary(r, directory=directory) for rs in runs.values() for r in rs]
    for text in bodies + summaries:
        leaked = [v for v in PLANTED if v in text]
        assert leaked == [], text
    everything = "\n".join(bodies)
    # the scan is not vacuous: the PII findings are there, by their numbers, non-PII examples too
    assert "*annual_income* replay skew: 20.0 % (limit 0.0 %), 630 rows" in everything
    assert "*user_id* not null: 20.0 % (limit 0.0 %), 630 rows, one segment only" in everything
    assert "`crypto_card`" in everything and "`imp-20261024-000017`" in everything
    assert "Triage verdict:* `task`" in everything
