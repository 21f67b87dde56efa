"""The texts people read: examples as ``key=value`` (cut cleanly, personal columns left out),
"since" said once, default rates in words, open bounds as "≥ 0", no Python reprs; a group's
mute hint and ``alerts mute --group``; ``alerts list`` (and ``--json``) never calls a row that
waits "sent"; ``alerts preview`` renders without changing a row."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from alert_cases import default_rate, validate_run

from contracts.spec import FieldContract
from funnelguard.findings import Finding
from monitors.alerts.message import QueuedAlert, render_message
from monitors.alerts.wording import bounds_words, check_words, example_words, percent
from monitors.store import AlertOutbox, AlertState, open_store

FP = "default_rate|ranking_features|online|approval_odds||device_type=android"
GROUP = "ranking_features|approval_odds"


def _alert(*findings: Finding, id: int = 17, **payload) -> QueuedAlert:
    docs = [dict(f.to_json(), fingerprint=f"{f.check}|{f.feature}|{f.segment}")
            for f in findings]
    return QueuedAlert(id, "alert", "ranking_features", "online", "2026-10-24", "error",
                       {"command": "skew", "findings": docs, **payload})


def _lines(message) -> list[str]:
    return message.body()["blocks"][2]["text"]["text"].split("\n")


def _skew(**changes) -> Finding:
    doc = dict(check="replay_skew", passed=False, severity="error", feature="item_apr",
               environment="online_vs_offline", value=0.31, threshold=0.0, count=535,
               dataset="ranking_features",
               message="rank 1: 535 of 1723 matched impressions differ (31.05%; |Δ| ≤ 0)")
    return Finding(**{**doc, **changes})


def test_examples_are_key_value_pairs_cut_cleanly_without_personal_columns(directory,
                                                                          settings):
    record = {"impression_id": "imp-0000045906", "offline": 12.5, "online": 0.125,
              "user_id": "u_48213977"}  # user_id: pii in the contract
    long = {"impression_id": "imp-0000045907", "offline": "x" * 120}
    message = render_message(_alert(_skew(examples=(record, long))), directory, settings)
    [line] = _lines(message)
    assert "e.g. `impression_id=imp-0000045906 offline=12.5 online=0.125`, " \
           "`impression_id=imp-0000045907 offline=xxx" in line
    second = line.split("`, `")[1]
    assert second.endswith("x…`") and len(second) == 60 + 1  # 60 characters and the backtick
    text = message.dumps()
    assert "u_48213977" not in text and "user_id" not in line
    assert "{'" not in text and "': " not in text
    cut = example_words({"a": "word " * 30})
    assert cut.endswith("…") and len(cut) <= 60 and not cut.endswith(" …")


def test_since_is_said_once(directory, settings):
    f = _skew(message="rank 1: 535 of 1723 matched impressions differ (31.05%) "
                      "(failing since 2026-10-21)")
    fp = "replay_skew|item_apr|None"
    [line] = _lines(render_message(_alert(f, since={fp: "2026-10-21"}), directory, settings))
    assert line.endswith("differ (31.1 %), since 2026-10-21")
    assert line.count("since") == 1


def test_default_rate_in_words():
    quoted_apr = FieldContract(name="quoted_apr", logical_type="number", default=-9.0)
    f = Finding(check="default_rate", passed=False, feature="quoted_apr", value=0.3335,
                threshold=0.05, count=200, message="33.350% of 600 rows of quoted_apr hold "
                "the default -9.0; at most 5.00% allowed")
    assert check_words(f, quoted_apr) == ("33.4 % of rows hold the default -9.0 "
                                          "(at most 5 % allowed)")
    online = f.with_(environment="online_vs_offline", threshold=0.0183, message=(
        "quoted_apr is its default in 33.35% of online rows (200/600) vs 0.83% offline "
        "(5/600); limit 1.83% (offline + 0.01, max 5.00%); caused by channel=app: 43.53% vs "
        "0.32% offline; other segments at their base rate (failing since 2026-09-21)"))
    words = check_words(online, quoted_apr)
    assert words == ("33.4 % of online rows hold the default -9.0 vs 0.83 % offline (at most "
                     "1.8 % allowed); caused by channel=app: 43.5 % vs 0.32 % offline; other "
                     "segments at their base rate")
    assert "is its default in" not in words
    unknown = FieldContract(name="member_tier", logical_type="string", default="none")
    assert 'hold the default "none"' in check_words(f.with_(feature="member_tier"), unknown)


def test_open_bounds_and_lists_without_reprs(directory, settings):
    assert (bounds_words(0, 40), bounds_words(0, None), bounds_words(None, 40)) == (
        "0 to 40", "≥ 0", "≤ 40")
    assert (percent(0.3335), percent(0.05), percent(0.0019), percent(1.0)) == (
        "33.4 %", "5 %", "0.19 %", "100 %")
    # from the contract: num_open_accounts has a minimum of 0 and no maximum
    in_contract = Finding(check="range", passed=False, feature="num_open_accounts",
                          environment="online", value=0.004, threshold=0.0, count=7,
                          dataset="ranking_features",
                          message="7 of 1723 rows of num_open_accounts are outside [0, None] "
                                  "(the default -1 excepted) (0.406%; tolerated 0.000%)")
    [line] = _lines(render_message(_alert(in_contract), directory, settings))
    assert line == ("• *num_open_accounts* range: 0.4 % of online rows (7) are outside the "
                    "allowed range ≥ 0 (the default -1 excepted) (at most 0 % allowed)")
    # without a contract the check's own message, cleaned
    assert check_words(in_contract.with_(message="7 rows are outside [None, 40] (the default "
                                                 "'-1' excepted)"), None) \
        == '7 rows are outside the allowed range ≤ 40 (the default "-1" excepted)'
    schema = Finding(check="schema", passed=False, severity="warning", value=2,
                     message="table serving_log has columns the contract does not describe: "
                             "['debug_flag', 'trace']")
    assert check_words(schema) == ("table serving_log has columns the contract does not "
                                   "describe: debug_flag, trace")
    remap = Finding(check="allowed_values", passed=False, feature="item_type",
                    environment="online", value=0.2, threshold=0.0, count=600,
                    dataset="ranking_features", examples=("crypto_card",))
    [line] = _lines(render_message(_alert(remap), directory, settings))
    assert "are not one of " in line and "['" not in line and "`crypto_card`" in line


def test_a_group_has_one_mute_hint_and_mute_group_mutes_it(run_cli, store_url, clock,
                                                           directory, settings, capsys):
    store = open_store(store_url)
    drift = [f.with_(environment="online_vs_offline") for f in (default_rate(segment=None),
                                                                 default_rate())]
    store.record_run(validate_run(*drift, command="drift"))
    store.record_run(validate_run(default_rate(segment=None), command="validate"))
    from monitors.alerts.preview import preview

    [shown] = preview(store, settings=settings, directory=directory)
    context = " ".join(e["text"] for e in shown.message.body()["blocks"][-1]["elements"])
    assert (f"mute all 3: `funnelguard alerts mute --group '{GROUP}' --for 24h --reason ...`"
            in context)
    assert "alert #1 (rows #1, #2) · `drift`, `validate`" in context
    capsys.readouterr()
    code, _ = run_cli("alerts", "mute", "--group", GROUP, "--for", "2h", "--reason",
                      "prequal rollback", "--store", store_url)
    assert code == 0 and capsys.readouterr().out.count("muted ") == 3
    assert preview(store, settings=settings, directory=directory)[0].message is None
    code, result = run_cli("alerts", "mute", "--group", "ranking_features|approval_oddz",
                           "--for", "2h", "--reason", "x", "--store", store_url)
    assert code == 2 and f"did you mean {GROUP}" in result.error.message
    code, result = run_cli("alerts", "mute", "--for", "2h", "--reason", "x", "--store",
                           store_url)
    assert code == 2 and "expected a FINGERPRINT or --group" in result.error.message
    assert run_cli("alerts", "unmute", "--group", GROUP, "--store", store_url)[0] == 0
    assert capsys.readouterr().out.count("unmuted ") == 3


def test_personal_segment_values_stay_out_of_a_groups_message(store, clock, directory,
                                                              settings):
    from monitors.alerts.preview import preview

    by_user = default_rate(segment="user_id=u_77410023")
    store.record_run(validate_run(default_rate(segment=None), by_user, command="drift"))
    [shown] = preview(store, settings=settings, directory=directory)
    text = shown.message.dumps()
    assert "u_77410023" not in text and "one segment only" in text
    assert f"--group '{GROUP}'" in text  # the group key holds no segment value


def _state_rows(store_url):
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        rows = {t: [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {t} ORDER BY 1"))]
                for t in ("fg_alert_outbox", "fg_alert_state")}
    engine.dispose()
    return rows


def test_preview_changes_no_row_and_shows_mutes_and_waits(run_cli, store_url, clock, capsys):
    store = open_store(store_url)
    store.record_run(validate_run(default_rate(), default_rate(feature="user_ctr_30d")))
    store.record_run(validate_run(default_rate(feature="item_apr"), command="skew"))
    from monitors.alerts.mutes import mute

    mute(store, FP, dt.timedelta(hours=4), "rollback", now=clock.now)
    later = clock.now + dt.timedelta(hours=1)
    with store.session() as s, s.begin():  # item_apr waits after a failed post
        s.execute(sa.update(AlertOutbox).where(AlertOutbox.id == 3).values(
            attempts=1, next_attempt_at=later, last_error="HTTP 503 from Slack: unavailable"))
    before = _state_rows(store_url)
    capsys.readouterr()
    assert run_cli("alerts", "preview", "--json", "--store", store_url)[0] == 0
    doc = json.loads(capsys.readouterr().out)
    assert _state_rows(store_url) == before
    muted, ctr, apr = doc["alerts"]
    assert (muted["alert"], muted["muted"], muted["message"]) == (1, [FP], None)
    assert ctr["feature"] == "user_ctr_30d" and ctr["due"] is True
    assert ctr["message"]["blocks"][0]["text"]["text"].startswith(":red_circle: ERROR: user_ctr")
    assert (apr["due"], apr["attempts"]) == (False, 1)
    assert apr["next_attempt_at"].startswith(later.isoformat()[:16])
    assert run_cli("alerts", "preview", "--store", store_url)[0] == 0
    out = capsys.readouterr().out
    assert "── alert #2 (alert; rows #2; due now)" in out
    assert "every finding muted since it was queued" in out
    assert out.rstrip().endswith("3 message(s) queued, 1 due now, 1 with every finding muted; "
                                 "nothing sent")
    assert _state_rows(store_url) == before


def test_list_never_calls_a_waiting_row_sent_and_has_json(run_cli, store_url, clock, slack,
                                                          monkeypatch, capsys):
    store = open_store(store_url)
    store.record_run(validate_run(default_rate()))
    capsys.readouterr()
    run_cli("alerts", "list", "--store", store_url)
    out = capsys.readouterr().out
    assert f"  {FP}  since 2026-10-24  queued #1, not sent yet  repeats 0" in out
    assert "last sent" not in out
    assert run_cli("alerts", "list", "--json", "--store", store_url)[0] == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"open", "muted", "pending", "failed"}
    [fp] = doc["open"]
    assert (fp["fingerprint"], fp["since"], fp["last_sent_at"], fp["queued"]) == (
        FP, "2026-10-24", None, [1])
    assert [(p["id"], p["status"], p["fingerprints"]) for p in doc["pending"]] == [
        (1, "pending", [FP])]
    with store.session() as s:  # queueing stamped the state; that is not a delivery
        assert s.get(AlertState, FP).last_sent_at is not None
    assert run_cli("alerts", "flush", "--store", store_url)[0] == 0
    capsys.readouterr()
    run_cli("alerts", "list", "--json", "--store", store_url)
    [fp] = json.loads(capsys.readouterr().out)["open"]
    assert fp["queued"] == [] and fp["last_sent_at"].startswith("20")
    run_cli("alerts", "list", "--store", store_url)
    assert "  last sent 20" in capsys.readouterr().out


@pytest.mark.parametrize("example", [{"k": None, "b": True}, [1.5, "x"], "plain"])
def test_examples_of_every_shape_are_text(example):
    assert example_words(example) in ("k=null b=true", "1.5, x", "plain")
