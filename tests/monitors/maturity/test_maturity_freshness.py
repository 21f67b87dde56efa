"""Label freshness: the landing due as of A, missed landings and the Poisson silence test."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from funnelguard.project import PACKAGED_PROJECT, load_project
from funnelguard.warehouse import TASKS
from monitors.maturity import LabelColumns, landing_due_at, normalise_label_frame
from monitors.maturity import check_freshness as _check_freshness

A = dt.date(2026, 10, 25)
UTC = dt.UTC
COLUMNS = LabelColumns.of(load_project(PACKAGED_PROJECT))


def check_freshness(frame, task, as_of, **kw):
    return _check_freshness(frame, task, as_of, columns=COLUMNS, **kw)


def landings(task: str, per_landing: int, first: str, last: str, hour: int = 6) -> pd.DataFrame:
    """``per_landing`` events of ``task`` loaded at ``hour`` UTC every day from first to last."""
    days = pd.date_range(first, last, freq="D", tz="UTC")
    loaded = [d + pd.Timedelta(hours=hour) for d in days for _ in range(per_landing)]
    frame = pd.DataFrame({
        "impression_id": [f"i{k}" for k in range(len(loaded))],
        "event_ts": [t - pd.Timedelta(hours=12) for t in loaded],
        **{f"{t}_loaded_at": [None] * len(loaded) for t in TASKS},
    })
    frame[f"{task}_loaded_at"] = loaded
    return normalise_label_frame(frame, COLUMNS)


@pytest.mark.parametrize(("hours", "due"), [
    (30, dt.datetime(2026, 10, 24, 6, tzinfo=UTC)),   # the contract: landing by 06:00
    (24, dt.datetime(2026, 10, 25, 0, tzinfo=UTC)),   # by midnight: due exactly at A
    (3, dt.datetime(2026, 10, 24, 3, tzinfo=UTC)),
])
def test_landing_due_at(hours, due):
    assert landing_due_at(A, hours) == due


def test_daily_landing_present_is_fresh():
    result = check_freshness(landings("click", 100, "2026-10-01", "2026-10-24"), "click", A)
    assert result.passed and result.missed_landings == 0
    assert result.latest_loaded_at == dt.datetime(2026, 10, 24, 6, tzinfo=UTC)
    assert "landing due 2026-10-24 06:00 UTC present" in result.message


def test_loads_at_or_after_as_of_are_invisible():
    frame = landings("click", 100, "2026-10-01", "2026-10-25")  # 10-25 06:00 is after A
    result = check_freshness(frame, "click", A)
    assert result.latest_loaded_at == dt.datetime(2026, 10, 24, 6, tzinfo=UTC)


def test_frequent_task_fails_on_one_missed_landing():
    result = check_freshness(landings("click", 100, "2026-10-01", "2026-10-23"), "click", A)
    assert not result.passed
    assert result.missed_landings == 1
    assert result.events_per_landing == pytest.approx(100)
    assert result.p_silent == pytest.approx(pytest.approx(2.0e-44, rel=0.5))
    assert "click labels stalled" in result.message and "1 daily landing(s) missing" in result.message


@pytest.mark.parametrize(("last", "missed", "passed"), [
    ("2026-10-22", 2, True),    # exp(-2) = 0.14: a quiet rare task, not a stall
    ("2026-10-19", 5, True),    # exp(-5) = 0.0067 >= 0.001
    ("2026-10-17", 7, False),   # exp(-7) = 0.0009 < 0.001
])
def test_rare_task_silence_is_judged_by_its_rate(last, missed, passed):
    result = check_freshness(landings("approval", 1, "2026-10-01", last), "approval", A)
    assert result.missed_landings == missed
    assert result.passed is passed
    assert result.p_silent == pytest.approx(pow(2.718281828459045, -missed), rel=1e-6)


def test_task_without_any_loaded_event_fails():
    result = check_freshness(landings("click", 10, "2026-10-01", "2026-10-24"), "conversion", A)
    assert not result.passed and result.latest_loaded_at is None
    assert "no conversion label event was ever loaded" in result.message


def test_landing_hour_from_the_contract_latency():
    # landings at 23:00 with a 24 h latency: the 10-24 23:00 landing is due by A
    frame = landings("click", 50, "2026-10-01", "2026-10-23", hour=23)
    late = check_freshness(frame, "click", A, landing_hours=24)
    assert not late.passed and late.missed_landings == 1
