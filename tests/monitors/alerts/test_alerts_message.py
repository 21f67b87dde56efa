"""What a message says: severity, where, numbers in words, since when, repeats, tasks, owner
from the contract, links; gate blocks, training stops with the triage verdict, resolutions;
the short run summary for Airflow's notifier."""

from __future__ import annotations

import json

from alert_cases import default_rate, validate_run

from funnelguard.findings import ErrorInfo, Finding, RunResult
from monitors.alerts.message import QueuedAlert, render_message, render_run_summary
from monitors.alerts.owners import OwnerDirectory
from monitors.alerts.settings import AlertSettings

FP = "default_rate|ranking_features|online|approval_odds||device_type=android"


def _alert(*findings: Finding, kind="alert", fps=None, **payload) -> QueuedAlert:
    fps = fps or [f"fp{i}" for i in range(len(findings))]
    docs = [dict(f.to_json(), fingerprint=fp) for f, fp in zip(findings, fps, strict=True)]
    return QueuedAlert(17, kind, "ranking_features", "online", "2026-10-24", "error",
                       {"command": "validate", "findings": docs, **payload})


def _texts(message) -> str:
    return json.dumps(message.body(), ensure_ascii=False)


def test_alert_says_what_where_how_bad_since_when_and_who(directory, settings):
    alert = _alert(default_rate(), fps=[FP], since={FP: "2026-10-21"}, repeats={FP: 3},
                   run_id=5, airflow={"dag_id": "nightly_checks",
                                      "run_id": "scheduled__2026-10-25",
                                      "task_id": "validate_online"})
    message = render_message(alert, directory, settings)
    body = message.body()
    assert body["blocks"][0]["text"]["text"] == (
        ":red_circle: ERROR: approval_odds · device_type=android only · ranking_features · "
        "online · 2026-10-24")
    fields = {f["text"].split(":*\n")[0].lstrip("*"): f["text"].split(":*\n")[1]
              for f in body["blocks"][1]["fields"]}
    assert fields["Owner"] == "<!subteam^S0PREQUAL>"  # approval_odds is owned by prequal
    assert fields["Tasks affected"] == "click, application, conversion, approval"
    assert fields["Severity"] == "error" and fields["Environment"] == "online"
    assert fields["Root cause"].startswith("device_type=android")
    line = body["blocks"][2]["text"]["text"]
    # the default comes from the contract (approval_odds: 0.0); numbers from the finding
    assert line == ("• *approval_odds* default rate: 38.2 % of online rows hold the default 0.0 "
                    "(at most 5 % allowed), device_type=android only, since 2026-10-21 (seen 3 "
                    "more times since the last alert); e.g. `0.0`, `0.0`")
    context = " ".join(e["text"] for e in body["blocks"][3]["elements"])
    base = "https://funnelguard.example.com"
    # the results site's pages (docs/site.md): the run, the dataset's trends
    assert f"<{base}/runs/5.html|validate run>" in context
    assert f"<{base}/datasets/ranking_features.html|ranking_features trends>" in context
    assert "/reports/" not in context and "/runbooks/" not in context
    assert (f"<{base}/airflow/dags/nightly_checks/runs/scheduled__2026-10-25/tasks/"
            "validate_online|Airflow log>") in context
    assert "Runbook: `docs/alerts.md#runbook-default-rate`" in context
    assert f"alerts mute '{FP}'" in context and "alert #17" in context
    assert "<!subteam^S0PREQUAL>" in message.text


def _context(alert, directory, settings) -> str:
    body = render_message(alert, directory, settings).body()
    return " ".join(e["text"] for e in body["blocks"][-1]["elements"])


def test_local_links_without_base_url(directory):
    settings = AlertSettings()
    alert = _alert(default_rate(), run_id=5,
                   artifacts={"report": "/data/reports/drift-2026-10-24.html"})
    context = _context(alert, directory, settings)
    assert "validate report: `file:///data/reports/drift-2026-10-24.html`" in context
    assert "Runbook: `docs/alerts.md#runbook-default-rate`" in context
    assert "http" not in context and "runs/5.html" not in context
    # a relative path (stored before the outbox made paths absolute) resolves against the
    # wrong directory at flush time: it is left out, never shown as a relative path
    relative = _alert(default_rate(), artifacts={"report": ".funnelguard/reports/drift.html"})
    context = _context(relative, directory, settings)
    assert "drift.html" not in context and "file://" not in context


def test_runbook_url_links_the_checks_section(directory):
    settings = AlertSettings(runbook_url="https://wiki.example.com/funnelguard/alerts")
    context = _context(_alert(default_rate()), directory, settings)
    assert ("<https://wiki.example.com/funnelguard/alerts#runbook-default-rate|Runbook: "
            "default_rate>") in context


def test_dataset_without_contract_goes_to_default_owner(settings):
    directory = OwnerDirectory("<!subteam^S0MLPLATFORM>", {})
    alert = _alert(default_rate(dataset="clickstream"))
    fields = render_message(alert, directory, settings).body()["blocks"][1]["fields"]
    assert fields[4]["text"] == "*Owner:*\n<!subteam^S0MLPLATFORM>"


def test_long_groups_are_cut_with_a_count(directory, settings):
    findings = [default_rate(feature=f"f{i}") for i in range(14)]
    text = render_message(_alert(*findings), directory, settings).body()["blocks"][2]["text"]
    assert text["text"].count("\n") == 10 and text["text"].endswith("…and 4 more")


def test_training_stop_shows_verdict_and_evidence(directory, settings):
    triage = Finding(check="triage", passed=False, value="data", feature="approval_odds",
                     message="approval_odds default share 38 % in the failing batches vs 0.4 % "
                             "before; gradient spike on the approval head at step 812")
    alert = QueuedAlert(3, "training", "", "", "2026-10-25", "error",
                        {"command": "train", "findings": [dict(triage.to_json(),
                                                               fingerprint="t")]})
    body = render_message(alert, directory, settings).body()
    assert body["blocks"][0]["text"]["text"] == ":octagonal_sign: Training stopped (as of 2026-10-25)"
    verdict = body["blocks"][2]["text"]["text"]
    assert verdict.startswith("*Triage verdict:* `data`\n*Evidence:* approval_odds default share")
    assert "step 812" in verdict


def test_gate_block_and_resolution(directory, settings):
    gate = Finding(check="label_maturity", passed=False, task="approval", value=0.31,
                   threshold=0.9, dataset="labels",
                   message="approval labels 31 % mature as of 2026-10-25, need 90 %")
    alert = QueuedAlert(4, "gate", "labels", "", "2026-10-25", "error",
                        {"command": "gate", "findings": [dict(gate.to_json(), fingerprint="g")]})
    body = render_message(alert, directory, settings).body()
    assert body["blocks"][0]["text"]["text"].startswith(":no_entry: Training gate blocked")
    fields = [f["text"] for f in body["blocks"][1]["fields"]]
    assert "*Tasks affected:*\napproval" in fields
    assert "*Owner:*\n<!subteam^S0LABELS>" in fields
    resolved = _alert(default_rate(passed=True), kind="resolution", fps=[FP],
                      since={FP: "2026-10-21"})
    text = _texts(render_message(resolved, directory, settings))
    assert ":white_check_mark: Resolved: approval_odds · ranking_features · online · 2026-10-24" \
        in text
    assert "*approval_odds* default rate passes again (failing since 2026-10-21)" in text


def test_mrkdwn_from_checks_is_escaped(directory, settings):
    f = default_rate().with_(check="drift", message="approval_odds: share <0.5> & rising")
    text = render_message(_alert(f), directory, settings).body()["blocks"][2]["text"]["text"]
    assert "share &lt;0.5&gt; &amp; rising" in text


def test_run_summary_for_the_failure_notifier(directory):
    result = validate_run(default_rate(), default_rate(passed=True, feature="item_apr"),
                          Finding(check="range", passed=False, feature="credit_score",
                                  environment="online", count=12, value=0.004, threshold=0.0,
                                  message="credit_score {{ 901 }} out of range",
                                  examples=(901, 1200), dataset="ranking_features"))
    text = render_run_summary(result, directory=directory)
    lines = text.splitlines()
    assert lines[0] == ("funnelguard validate · ranking_features · online · 2026-10-24: FAIL — "
                        "2 of 3 checks not passed")
    assert lines[1].startswith("• approval_odds default rate: 38.2 % of online rows hold the "
                               "default 0.0 (at most 5 % allowed), device_type=android only")
    assert lines[2] == "• credit_score range: 0.4 % (limit 0.0 %), 12 rows"  # PII: numbers only
    assert "901" not in text and "{{" not in text
    error = RunResult(command="validate", partition="2026-10-24",
                      error=ErrorInfo("environment", "warehouse unreachable"))
    assert render_run_summary(error) == ("funnelguard validate · 2026-10-24: environment error: "
                                         "warehouse unreachable")
