"""Volume against the weekly pattern: a weekday-factor band narrow enough to catch a 20 % loss
on a weekday, with the plain band as the fallback for short histories."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pytest
import sqlalchemy as sa

from monitors.freshness import volume_check, volume_finding

WED = dt.date(2026, 10, 21)  # a Wednesday; the simulator's weekdays run 0.88-1.08 x per_day
FACTOR = (1.04, 1.07, 1.08, 1.05, 0.98, 0.88, 0.90)  # Monday..Sunday, as the simulator's


def _history(day: dt.date, days: int, per_day: int = 3000, seed: int = 0) -> dict[dt.date, int]:
    rng = np.random.default_rng(seed)
    dates = [day - dt.timedelta(days=k) for k in range(days, 0, -1)]
    return {d: int(rng.poisson(per_day * FACTOR[d.weekday()])) for d in dates}


def test_a_20_percent_loss_on_a_wednesday_is_caught_and_the_plain_band_misses_it():
    history = _history(WED, 28)
    normal = int(3000 * FACTOR[2])
    lost = int(normal * 0.8)
    plain = volume_check(history, lost)
    assert plain.model == "plain" and not plain.flagged  # the weekend swing widens it
    check = volume_check(history, lost, partition=WED)
    assert check.model == "weekday" and check.flagged and check.weekday == "Wednesday"
    assert check.factor == pytest.approx(1.08 / np.median(FACTOR), abs=0.03)
    finding = volume_finding(check, "serving_log", environment="online", dataset="d")
    assert not finding.passed and "drop of 19%" in finding.message
    assert "for a Wednesday, weekday factor" in finding.message
    assert not volume_check(history, normal, partition=WED).flagged


@pytest.mark.parametrize("offset", range(7))
def test_clean_days_of_every_weekday_pass(offset):
    day = WED + dt.timedelta(days=offset)
    for seed in range(5):
        history = _history(day, 28, seed=seed)
        rows = int(np.random.default_rng(100 + seed).poisson(3000 * FACTOR[day.weekday()]))
        check = volume_check(history, rows, partition=day)
        assert check.model == "weekday" and not check.flagged, (day, seed, check)


def test_short_history_falls_back_to_the_plain_band_and_says_so():
    history = _history(WED, 10)  # one earlier Wednesday
    check = volume_check(history, 2500, partition=WED)
    assert check.model == "plain" and check.judged
    assert "1 earlier Wednesday partition, 2 needed" in check.note
    message = volume_finding(check, "t", environment="offline").message
    assert "the plain band" in message


def test_simulated_wednesday_losing_20_percent(clean_warehouse, tmp_path):
    """The packaged simulator has the weekly pattern (funnelguard/simulator/world.py
    WEEKLY_FACTOR); a fifth of one Wednesday's serving rows deleted is a volume finding."""
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect
    from monitors.commands import run_freshness

    target = tmp_path / "loss.db"
    shutil.copy(clean_warehouse.removeprefix("sqlite:///"), target)
    engine = connect(f"sqlite:///{target}")
    project = load_project()
    clean = run_freshness(project, engine, WED, html_dir=tmp_path)
    volume = {f.environment: f for f in clean.findings if f.check == "volume"}
    assert all(f.passed for f in volume.values()) and "Wednesday" in volume["online"].message
    with engine.begin() as conn:
        lost = conn.execute(sa.text(
            "DELETE FROM serving_log WHERE ds = :d AND abs(random()) % 5 = 0"),
            {"d": WED.isoformat()}).rowcount
    result = run_freshness(project, engine, WED, html_dir=tmp_path)
    volume = {f.environment: f for f in result.findings if f.check == "volume"}
    assert not volume["online"].passed and volume["offline"].passed
    assert "drop of" in volume["online"].message and lost > 400
    engine.dispose()
