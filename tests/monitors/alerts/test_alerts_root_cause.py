"""One alert per root cause, end to end: the real checks (validate, drift, skew through
``funnelguard.cli.run``) on a faulted warehouse into one results store, previewed with
``funnelguard alerts preview --json`` and flushed to a live webhook on 127.0.0.1.

The demo's fault (the online pipeline serves approval_odds' default to android users) fails
validate's default rate, drift (two comparisons), the default rate online vs offline and replay
skew: one message, naming device_type=android. The second project's fault (quoted_apr stuck at
-9.0 for channel=app) is one message to the pricing team, naming channel=app.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from funnelguard.cli import run

DEMO_FAULT = "serving_default:feature=approval_odds,device_type=android"
DAYS, PER_DAY, LAST = 10, 2000, "2026-10-10"
CHECKS = (("validate", "--env", "online"), ("drift",), ("skew",))


def _check_all(tmp, date: str, *where: str) -> str:
    store = f"sqlite:///{tmp / 'results.db'}"
    for argv in CHECKS:
        html = ("--html", str(tmp / "html")) if argv[0] != "validate" else ()
        code, result = run(["-q", *argv, *where, *html, "--date", date, "--store", store])
        assert code == 1 and result.error is None, (argv, result.error)
    return store


@pytest.fixture(scope="module")
def demo_store(warehouse, tmp_path_factory) -> str:
    url = warehouse(DEMO_FAULT, days=DAYS, per_day=PER_DAY)
    return _check_all(tmp_path_factory.mktemp("demo_alerts"), LAST, "--warehouse", url)


@pytest.fixture(scope="module")
def marketplace_store(marketplace_faulted, tmp_path_factory) -> str:
    m = marketplace_faulted
    return _check_all(tmp_path_factory.mktemp("marketplace_alerts"), m.last.isoformat(),
                      "--project", str(m.project_path))


def _preview(store: str, capsys) -> list[dict]:
    capsys.readouterr()
    code, _ = run(["alerts", "preview", "--json", "--store", store])
    assert code == 0
    return json.loads(capsys.readouterr().out)["alerts"]


def _snapshot(store: str) -> dict[str, list]:
    engine = sa.create_engine(store)
    try:
        with engine.connect() as conn:
            return {table: [tuple(r) for r in conn.execute(sa.text(
                f"SELECT * FROM {table} ORDER BY 1"))]
                for table in ("fg_alert_outbox", "fg_alert_state", "fg_runs")}
    finally:
        engine.dispose()


def _rows(store: str):
    from monitors.store import AlertOutbox, open_store

    with open_store(store).session() as s:
        return list(s.scalars(sa.select(AlertOutbox).order_by(AlertOutbox.id)))


def _about(alerts: list[dict], feature: str) -> list[dict]:
    return [a for a in alerts if feature in json.dumps(a["message"])]


def _facts(body: dict) -> dict[str, str]:
    section = next(b for b in body["blocks"] if b.get("fields"))
    return {f["text"].split(":*\n")[0].lstrip("*"): f["text"].split(":*\n")[1]
            for f in section["fields"]}


def _lines(body: dict) -> list[str]:
    section = next(b for b in body["blocks"][2:] if b.get("text", {}).get("text", "")
                   .startswith("• "))
    return section["text"]["text"].split("\n")


def test_the_demo_fault_is_one_alert_naming_device_type_android(demo_store, capsys):
    before = _snapshot(demo_store)
    alerts = _preview(demo_store, capsys)
    assert _snapshot(demo_store) == before  # preview changes no row
    [alert] = _about(alerts, "approval_odds")
    rows = _rows(demo_store)
    fault_rows = [r.id for r in rows if any("|approval_odds|" in fp for fp in r.fingerprints)]
    # validate, drift (same-day and vs the window) and skew: four runs' rows, one message
    assert alert["rows"] == fault_rows and len(fault_rows) == 4
    assert {r.payload["command"] for r in rows if r.id in fault_rows} == {
        "validate", "drift", "skew"}
    assert alert["feature"] == "approval_odds" and alert["due"] is True
    body = alert["message"]
    header = body["blocks"][0]["text"]["text"]
    assert header == (":red_circle: ERROR: approval_odds · device_type=android only · "
                      f"ranking_features · {LAST}")
    assert _facts(body)["Root cause"].startswith("device_type=android")
    assert _facts(body)["Owner"] == "<!subteam^S0PREQUAL>"
    lines = _lines(body)
    # one line per check and environment, the cause's segment findings folded in
    checks = [line.split("* ", 1)[1].split(":", 1)[0] for line in lines]
    assert sorted(checks) == ["default rate", "default rate", "drift", "drift", "replay skew"]
    text = json.dumps(body, ensure_ascii=False)
    assert "item_type=" not in header and " only" not in text.replace(
        "device_type=android only", "")  # no "card only", "personal_loan only" ...
    assert all(line.count("since ") == 1 for line in lines), lines
    skew = next(line for line in lines if "replay skew" in line)
    assert "caused by device_type=android" in skew
    assert "e.g. `impression_id=imp-" in skew and "offline=" in skew and "online=0.0`" in skew
    assert "mute all 7: `funnelguard alerts mute --group 'ranking_features|approval_odds'" \
        in text
    for repr_mark in ("{'", "['", "': ", "None", "(failing since"):
        assert repr_mark not in text, repr_mark


def test_the_demo_fault_goes_out_once_and_every_row_is_marked(demo_store, tmp_path, slack,
                                                              monkeypatch, capsys):
    import shutil
    from pathlib import Path

    source = Path(sa.engine.make_url(demo_store).database)
    for part in source.parent.glob(source.name + "*"):  # with -wal / -shm, if any
        shutil.copy(part, tmp_path / part.name.replace(source.name, "results.db"))
    store = f"sqlite:///{tmp_path / 'results.db'}"  # a copy: the module's store stays queued
    monkeypatch.setenv("FUNNELGUARD_BASE_URL", "https://fg.example.com")
    code, result = run(["-q", "alerts", "flush", "--store", store])
    assert code == 0, result.findings
    about = [b for b in slack.requests if "approval_odds" in json.dumps(b)]
    assert len(about) == 1
    rows = [r for r in _rows(store) if any("|approval_odds|" in fp for fp in r.fingerprints)]
    assert {(r.status, r.payload["message_id"]) for r in rows} == {("sent", rows[0].id)}
    context = " ".join(e["text"] for e in about[0]["blocks"][-1]["elements"])
    for r in rows:  # every run of the message, on the results site
        assert f"<https://fg.example.com/runs/{r.payload['run_id']}.html|" in context
    assert "https://fg.example.com/datasets/ranking_features.html" in context
    capsys.readouterr()
    run(["alerts", "list", "--store", store])
    listing = capsys.readouterr().out
    assert "not sent yet" not in listing and "last sent 20" in listing


def test_the_second_projects_fault_is_one_alert_to_its_pricing_team(marketplace_store, capsys):
    before = _snapshot(marketplace_store)
    alerts = _preview(marketplace_store, capsys)
    assert _snapshot(marketplace_store) == before
    [alert] = [a for a in alerts if a["feature"] == "quoted_apr"]
    assert _about(alerts, "quoted_apr") == [alert]
    body = alert["message"]
    assert body["blocks"][0]["text"]["text"].startswith(
        ":red_circle: ERROR: quoted_apr · channel=app only · marketplace_features · ")
    facts = _facts(body)
    assert facts["Owner"] == "<!subteam^S0PRICING>"
    assert facts["Root cause"].startswith("channel=app")
    assert facts["Tasks affected"] == "click, signup, funded"
    lines = _lines(body)
    assert lines[0] == ("• *quoted_apr* default rate: 23.7 % of online rows hold the default "
                        "-9.0 (at most 5 % allowed), since 2026-09-21")
    assert {r.payload["command"] for r in _rows(marketplace_store)
            if r.id in alert["rows"]} == {"validate", "drift", "skew"}
    assert "<!subteam^S0PRICING>" in body["text"]
