"""No personal data in any message the fault catalogue really produces.

One simulated warehouse carries every fault of the catalogue, spread over partitions so they
do not mask one another (online faults on the last day, offline ones the day before, key and
user_id faults the day before that, ``nan_burst`` in the middle, both label faults in the
labels). The real checks run through the CLI into one results store — ``validate`` (offline,
online, and the impressions contract), ``drift``, ``skew``, ``freshness`` on each faulted
partition, ``gate`` before and after the label lag — the outbox is flushed to a live webhook on
127.0.0.1, and every body Slack receives and every run summary is scanned for the PII values the
warehouse holds. The PII fields are the contracts' (``classification`` pii/restricted:
``user_id``, ``credit_score``, ``annual_income``); their values are read from the rows.

Matching rule (``pii_scanner.PiiValues``): identifiers (user ids) match as whole words
anywhere; numbers match as whole number tokens (not part of an id, a date or a longer number),
those with >= 5 significant digits (incomes in cents) anywhere, shorter ones (3-digit credit
scores) only on a line that names their field and not as a count (``644 rows``, ``11/1629``).
Contract sentinels and bounds (-1, 300, 850) are not personal data. The scan is shown not to be
vacuous: the messages name the faulted PII features with their numbers, and raw values planted
in a real message line are caught.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from pii_scanner import PiiValues, collect_pii_values, texts_of

from funnelguard.cli import run

DAYS, PER_DAY = 24, 1800
LAST, OFFLINE_DAY, KEYS_DAY, MIDDLE = "2026-10-24", "2026-10-23", "2026-10-22", "2026-10-13"
FAULTS = (
    # online, last partition
    "serving_default:feature=credit_score,device_type=android",
    "unit_mismatch:feature=annual_income",
    "stale_online:feature=user_ctr_30d",
    "category_remap:feature=item_type,rename=card/crypto_card",
    "tz_shift:hours=5",
    # offline, the day before
    f"null_burst:feature=credit_score,share=0.3,day={OFFLINE_DAY}",
    f"outlier_burst:feature=annual_income,share=0.2,day={OFFLINE_DAY}",
    # keys and user ids
    f"null_burst:feature=user_id,share=0.1,day={KEYS_DAY},env=online",
    f"duplicate_keys:share=0.05,day={KEYS_DAY},env=impressions",
    f"duplicate_keys:share=0.05,day={KEYS_DAY},env=offline",
    # middle partition
    "nan_burst:feature=credit_utilization,share=0.2",
    # labels: the drop shows as of 10-21, the lag (last 4 days) as of 10-25
    "label_drop:task=conversion,share=0.8,since=2026-10-10",
    "label_lag:days=4",
    # blind spots: late approval loads, a late and thinner serving log, a finite extreme with no
    # bound on a restricted feature, an offline feature computed from the click label
    "label_delay:task=approval,days=6,since=2026-10-07",
    "served_late:hours=10",
    "volume_loss:share=0.3",
    f"extreme_value:feature=annual_income,share=0.01,day={KEYS_DAY}",
    "label_leak:feature=days_since_last_visit,task=click,since=2026-10-18",
)
# fault -> a failing (command, dataset, check, feature or task, partition) the checks report
EXPECTED = {
    "serving_default": ("validate", "ranking_features", "default_rate", "credit_score", LAST),
    "unit_mismatch": ("skew", "ranking_features", "replay_skew", "annual_income", LAST),
    "stale_online": ("skew", "ranking_features", "replay_skew", "user_ctr_30d", LAST),
    "category_remap": ("validate", "ranking_features", "allowed_values", "item_type", LAST),
    "tz_shift": ("skew", "ranking_features", "replay_skew", "hour_of_day", LAST),
    "null_burst": ("validate", "ranking_features", "not_null", "credit_score", OFFLINE_DAY),
    "null_burst/user_id": ("validate", "ranking_features", "not_null", "user_id", KEYS_DAY),
    "outlier_burst": ("drift", "ranking_features", "drift", "annual_income", OFFLINE_DAY),
    "duplicate_keys": ("validate", "ranking_features", "unique", "impression_id", KEYS_DAY),
    "duplicate_keys/impressions": ("validate", "impressions", "unique", "impression_id",
                                   KEYS_DAY),
    "nan_burst": ("validate", "ranking_features", "finite", "credit_utilization", MIDDLE),
    "label_drop": ("gate", "labels", "label_completeness", "conversion", "2026-10-21"),
    "label_lag": ("gate", "labels", "label_freshness", "click", "2026-10-25"),
    "label_delay": ("gate", "labels", "label_delay", "approval", "2026-10-21"),
    "served_late": ("freshness", "ranking_features", "freshness_sla", None, LAST),
    "volume_loss": ("freshness", "ranking_features", "volume", None, LAST),
    "extreme_value": ("validate", "ranking_features", "history_bound", "annual_income", KEYS_DAY),
    "label_leak": ("audit", "ranking_features", "leakage", "days_since_last_visit", "2026-10-25"),
}
PII_FEATURES = ("user_id", "credit_score", "annual_income")


@dataclass(frozen=True)
class CheckedWarehouse:
    """What the checks left: their results, the results store, the PII values, the contracts."""

    results: list
    store: str
    values: PiiValues
    contracts: list

    def __repr__(self) -> str:  # keep failure output short: the values are thousands
        return f"CheckedWarehouse({len(self.results)} runs, {len(self.values)} PII values)"


@pytest.fixture(scope="module")
def checked(warehouse, tmp_path_factory):
    """The faulted warehouse, every check's RunResult, the store URL and the PII values."""
    from contracts import load_contract
    from funnelguard.warehouse import connect

    url = warehouse(*FAULTS, days=DAYS, per_day=PER_DAY)
    tmp = tmp_path_factory.mktemp("pii_catalogue")
    store = f"sqlite:///{tmp / 'results.db'}"
    common = ["--warehouse", url, "--store", store]
    html = ["--html", str(tmp / "html")]
    results = []
    for day in (MIDDLE, KEYS_DAY, OFFLINE_DAY, LAST):
        for argv in (["validate", "--env", "offline"], ["validate", "--env", "online"],
                     ["drift", *html], ["skew", *html], ["freshness", *html]):
            results.append(run(["-q", *argv, "--date", day, *common]))
    results.append(run(["-q", "validate", "--contract", "impressions", "--env", "offline",
                        "--date", KEYS_DAY, *common]))
    for as_of in ("2026-10-21", "2026-10-25"):
        results.append(run(["-q", "gate", "--as-of", as_of, *common]))
    results.append(run(["-q", "audit", "--as-of", "2026-10-25", *common]))
    assert all(r is not None and r.error is None for _, r in results), \
        [r.error for _, r in results if r is not None and r.error is not None]
    engine = connect(url)
    try:
        contracts = [load_contract(n) for n in ("ranking_features", "impressions", "labels")]
        # every row a check of these partitions could read: drift's 7-day windows included
        values = collect_pii_values(engine, contracts)
    finally:
        engine.dispose()
    return CheckedWarehouse([r for _, r in results], store, values, contracts)


def test_every_fault_of_the_catalogue_is_found(checked):
    from funnelguard.simulator.catalogue import FAULTS as CATALOGUE

    # a fault added to the catalogue fails here until this warehouse carries it
    assert {spec.split(":")[0] for spec in FAULTS} == set(CATALOGUE)
    assert {name.split("/")[0] for name in EXPECTED} == set(CATALOGUE)
    failing = {(r.command, f.dataset or r.dataset, f.check, f.feature or f.task, r.partition)
               for r in checked.results for f in r.failures}
    missing = {fault: want for fault, want in EXPECTED.items() if want not in failing}
    assert missing == {}
    values = checked.values
    # the PII fields come from the contracts, and the warehouse holds values of each
    assert values.fields == set(PII_FEATURES)
    assert len(values.identifiers["user_id"]) > 1000
    assert len(values.short_numbers["credit_score"]) > 300
    assert len(values.long_numbers["annual_income"]) > 1000


def _leak_summary(leaks) -> str:
    fields = Counter(leak.field for leak in leaks)
    return (f"{len(leaks)} PII values shown ({dict(fields)}), "
            f"e.g. {leaks[0].value!r} in {leaks[0].line!r}")


def _slack_texts(slack) -> list[str]:
    return ["\n".join(texts_of(body)) for body in slack.requests]


def test_no_pii_value_reaches_slack_or_the_run_summaries(checked, slack, settings):
    from monitors.alerts import flush, render_run_summary

    report = flush(checked.store, settings=settings)  # owners and PII from the contracts
    # every row sent; the rows of one partition, dataset and feature as one message
    assert report.exit_code == 0 and len(report.sent) > len(slack.requests) >= 15
    assert {r for r in slack.alert_ids()} <= {d.outbox_id for d in report.sent}
    bodies = _slack_texts(slack)
    summaries = [render_run_summary(r) for r in checked.results]
    # every failing finding, not only the first five lines of each summary
    summaries += [render_run_summary(r, max_lines=10_000) for r in checked.results]
    values: PiiValues = checked.values
    leaks = [leak for text in bodies + summaries for leak in values.leaks(text)]
    assert leaks == [], _leak_summary(leaks)

    # not vacuous: the faulted PII features are in the messages, described by their numbers
    everything = "\n".join(bodies)
    for feature in PII_FEATURES:
        lines = [ln for ln in everything.splitlines() if f"*{feature}*" in ln]
        assert lines and all(re.search(r"\d", ln.split(f"*{feature}*", 1)[1]) for ln in lines), \
            feature
    assert re.search(r"\*credit_score\* default rate: 3\d\.\d % \(limit 5\.0 %\), [\d,]+ rows",
                     everything)
    assert re.search(r"\*credit_score\* not null: 30\.0 % .*rows", everything)
    assert re.search(r"\*user_id\* not null: 10\.0 % .*rows", everything)
    assert re.search(r"\*annual_income\* replay skew: [\d.]+ % \(limit 0\.0 %\), [\d,]+ rows", everything)
    assert re.search(r"\*annual_income\* drift: [\d.]+ \(limit 0\.1\), [\d,]+ rows", everything)
    # non-PII findings still carry their raw examples, so redaction is by field, not blanket
    assert "`crypto_card`" in everything


def test_stored_examples_of_pii_fields_hold_no_raw_values(checked):
    from monitors.alerts import OwnerDirectory

    directory = OwnerDirectory("", {c.name: c for c in checked.contracts})
    values: PiiValues = checked.values
    engine = sa.create_engine(checked.store)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            'SELECT "check", dataset, feature, examples FROM fg_findings '
            "WHERE examples IS NOT NULL")).all()
    engine.dispose()
    pii_rows = [r for r in rows if directory.is_pii(r.dataset, r.feature)]
    assert {r.feature for r in pii_rows} >= {"user_id", "credit_score", "annual_income"}
    raw_leaves = []
    for r in pii_rows:
        for leaf in _leaves(json.loads(r.examples) if isinstance(r.examples, str)
                            else r.examples):
            # "<redacted>", or the policy's words "<redacted restricted>" / "<redacted pii>"
            if (leaf not in (None, "inf", "-inf") and not str(leaf).startswith("<redacted")
                    and not str(leaf).startswith("imp-")):
                raw_leaves.append((r.check, r.feature, leaf))
    assert raw_leaves == []
    # and no finding of any field holds a user id or an income among its examples
    leaks = [leak for r in rows for leak in values.leaks(str(r.examples))
             if leak.field != "credit_score"]
    assert leaks == [], _leak_summary(leaks)
    # not vacuous: examples of other fields do hold raw values
    assert any(r.feature == "item_type" and "crypto_card" in str(r.examples) for r in rows)


def _leaves(doc):
    if isinstance(doc, dict):
        for value in doc.values():
            yield from _leaves(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _leaves(value)
    else:
        yield doc


def test_the_scanner_catches_raw_values_planted_in_a_real_message(checked):
    from monitors.alerts import render_run_summary

    values: PiiValues = checked.values
    user = sorted(values.identifiers["user_id"])[0]
    scores = sorted(values.short_numbers["credit_score"])
    score = scores[len(scores) // 2]
    income = sorted(values.long_numbers["annual_income"])[0]
    result = next(r for r in checked.results if r.command == "validate"
                  and r.partition == OFFLINE_DAY and r.environment == "offline")
    summary = render_run_summary(result)
    line = next(ln for ln in summary.splitlines() if "credit_score not null" in ln)
    assert values.leaks(summary) == []
    planted = {
        "user_id": f"{line}; e.g. `{user}`",
        "credit_score": f"{line}; e.g. {score}",
        "annual_income": f"{line} next to annual_income {income:,}",
    }
    for feature, text in planted.items():
        assert [leak.field for leak in values.leaks(text)] == [feature], text
    # a score without its field's name, or shown as a count, is not one
    assert values.leaks(f"position {score}") == []
    assert values.leaks(f"credit_score not null: 30.0 %, {score} rows") == []
