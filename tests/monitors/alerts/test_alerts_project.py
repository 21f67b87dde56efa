"""Alerts of another project (tests/byow's marketplace): owners, PII fields and the stages
affected come from the contracts the run used, carried with the queued alert — never from the
packaged contracts' names. Old rows (stored without a project) are addressed as before."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from alert_cases import default_rate, validate_run

from funnelguard.findings import Finding, RunResult
from monitors.alerts.dispatch import flush_store
from monitors.alerts.owners import OwnerDirectory
from monitors.store import AlertOutbox, open_store, recording_project

PART = "2026-09-21"
PRICING, MKTDATA, GROWTH = "<!subteam^S0PRICING>", "<!subteam^S0MKTDATA>", "<!subteam^S0GROWTH>"


def _stuck_apr(**changes) -> Finding:
    doc = dict(check="default_rate", passed=False, severity="error", feature="quoted_apr",
               environment="online", segment="channel=app", value=0.41, threshold=0.06,
               count=121, message="quoted_apr default rate online 41.0 % vs offline 1.0 %",
               examples=(-9.0, -9.0), dataset="marketplace_features")
    return Finding(**{**doc, **changes})


def _features_run(*findings: Finding) -> RunResult:
    return RunResult("validate", PART, findings, dataset="marketplace_features",
                     environment="online")


def _rows(store) -> list[AlertOutbox]:
    with store.session() as s:
        return list(s.scalars(sa.select(AlertOutbox).order_by(AlertOutbox.id)))


def _facts(body: dict) -> dict[str, str]:
    section = next(b for b in body["blocks"] if b.get("fields"))
    return {f["text"].split(":*\n")[0].lstrip("*"): f["text"].split(":*\n")[1]
            for f in section["fields"]}


def _flush(store, clock, settings):
    return flush_store(store, settings=settings, directory=OwnerDirectory(settings.default_owner),
                       now=clock)


@pytest.fixture
def project(marketplace):
    from funnelguard.project import load_project

    return load_project(marketplace.project_path)


def _check_feature_alert_goes_to_its_owner(store, project, clock, slack, settings, caplog):
    caplog.set_level(logging.INFO, logger="monitors.alerts.owners")
    store.record_run(_features_run(_stuck_apr(), _stuck_apr(feature="loan_amount",
                                                            segment=None)), project=project)
    rows = _rows(store)  # one per feature
    assert {(row.project, row.contract) for row in rows} == {(
        str(Path(project.path).resolve()), str(Path(project.features.path).resolve()))}
    report = _flush(store, clock, settings)
    assert [d.status for d in report.deliveries] == ["sent", "sent"]
    apr, loan = slack.requests
    # quoted_apr has its own owner in the contract; loan_amount is the contract team's
    assert (_facts(apr)["Owner"], _facts(loan)["Owner"]) == (PRICING, MKTDATA)
    for body in (apr, loan):  # the project's stages, in order
        assert _facts(body)["Tasks affected"] == "click, signup, funded"
    text = json.dumps(apr)
    # the sentinel from this project's contract, not the packaged one's
    assert ("*quoted_apr* default rate: 41 % of online rows hold the default -9.0 (at most 6 % "
            "allowed), channel=app only") in text
    said = [r.getMessage() for r in caplog.records if r.name == "monitors.alerts.owners"]
    assert said == []  # no "no contract for dataset ... default owner"


def test_feature_alert_goes_to_the_owner_its_contract_names(store, project, clock, slack,
                                                             settings, caplog):
    _check_feature_alert_goes_to_its_owner(store, project, clock, slack, settings, caplog)


@pytest.mark.postgres
def test_feature_alert_goes_to_its_owner_on_postgres(pg_store_url, project, clock, slack,
                                                      settings, caplog):
    _check_feature_alert_goes_to_its_owner(open_store(pg_store_url), project, clock, slack,
                                           settings, caplog)


def test_label_and_score_findings_name_their_own_stage(store, project, clock, slack, settings):
    gate = Finding(check="label_freshness", passed=False, task="signup", value=0.31,
                   threshold=0.9, dataset="outcomes",
                   message="signup labels 31 % landed as of 2026-09-22, need 90 %")
    store.record_run(RunResult("gate", "2026-09-22", (gate,), dataset="outcomes"),
                     project=project)
    score = Finding(check="range", passed=False, feature="pred_funded", task="funded",
                    environment="online", value=0.02, threshold=0.0, count=12,
                    dataset="marketplace_features", message="pred_funded above 1")
    store.record_run(_features_run(score), project=project)
    _flush(store, clock, settings)
    gate_facts, score_facts = (_facts(b) for b in slack.requests)
    assert (gate_facts["Owner"], gate_facts["Tasks affected"]) == (GROWTH, "signup")
    assert (score_facts["Owner"], score_facts["Tasks affected"]) == (MKTDATA, "funded")


def test_pii_fields_are_the_contracts_of_the_run(store, project, clock, slack, settings):
    # member_ref is classification pii in the marketplace contracts only
    leak = Finding(check="not_null", passed=False, feature="member_ref", environment="online",
                   value=0.1, threshold=0.0, count=60, examples=("M-04711",),
                   message="member_ref M-04711 is null", dataset="marketplace_features")
    by_member = _stuck_apr(segment="member_ref=M-04711")
    store.record_run(_features_run(leak, by_member), project=project)
    _flush(store, clock, settings)
    text = json.dumps(slack.requests)
    assert "M-04711" not in text
    assert "*member_ref* not null: 10.0 % (limit 0.0 %), 60 rows" in text
    assert "*quoted_apr* default rate" in text and "one segment only" in text


def test_runs_recorded_in_a_project_scope_or_its_environment_carry_it(store, project,
                                                                      monkeypatch, clock):
    with recording_project(project.path):
        store.record_run(_features_run(_stuck_apr()))
    monkeypatch.setenv("FUNNELGUARD_PROJECT", project.path)
    store.record_run(RunResult("drift", PART, (_stuck_apr(feature="tenure_months"),),
                               dataset="marketplace_features"))
    rows = _rows(store)
    assert len(rows) == 2
    assert {(r.project, r.contract) for r in rows} == {
        (str(Path(project.path).resolve()), str(Path(project.features.path).resolve()))}


def test_run_summary_redacts_the_projects_pii(project):
    from funnelguard.orchestration.airflow_tasks import failure_summary

    leak = Finding(check="allowed_values", passed=False, feature="member_ref",
                   environment="online", value=0.02, threshold=0.0, count=12,
                   examples=("M-00042",), message="member_ref M-00042 not allowed",
                   dataset="marketplace_features")
    text = failure_summary(_features_run(leak), project=project)
    assert "M-00042" not in text and "member_ref allowed values: 2.0 % (limit 0.0 %), 12 rows" in text


def test_rows_stored_without_a_project_use_the_packaged_contract_of_their_name(
        store, clock, slack, settings):
    store.record_run(validate_run(default_rate()), project=None)
    with store.session() as s, s.begin():  # as stored before revision 0002
        s.execute(sa.update(AlertOutbox).values(project=None, contract=None))
    _flush(store, clock, settings)
    facts = _facts(slack.requests[0])
    assert facts["Owner"] == "<!subteam^S0PREQUAL>"
    assert facts["Tasks affected"] == "click, application, conversion, approval"


def test_a_dataset_outside_the_runs_project_goes_to_the_default_owner(store, project, clock,
                                                                       slack, settings):
    other = _stuck_apr(dataset="ranking_features", feature="approval_odds")
    store.record_run(RunResult("validate", PART, (other,), dataset="ranking_features",
                               environment="online"), project=project)
    _flush(store, clock, settings)
    # the packaged contract of that name owns approval_odds, but the run was not about it
    assert _facts(slack.requests[0])["Owner"] == settings.default_owner

