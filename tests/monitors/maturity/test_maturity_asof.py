"""The as-of rule on hand-built impressions: window boundaries, late loads, time zones."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from contracts.spec import Contract, MaturityWindow, Owner
from funnelguard.project import PACKAGED_PROJECT, load_project
from funnelguard.warehouse import TASKS
from monitors.maturity import (
    LabelColumns,
    as_of_instant,
    matured_through,
    maturity_windows,
    normalise_label_frame,
    resolve_labels,
)
from monitors.maturity.errors import LabelFrameError, MaturityConfigError

A = dt.date(2026, 10, 25)
WINDOWS = {"click": 1.0, "application": 3.0, "conversion": 14.0, "approval": 14.0}
PROJECT = load_project(PACKAGED_PROJECT)
COLUMNS = LabelColumns.of(PROJECT)


def frame_of(rows: list[dict]) -> pd.DataFrame:
    """Rows giving impression_id, event_ts and some {task}_loaded_at; other tasks stay null."""
    out = pd.DataFrame(rows)
    for task in TASKS:
        if f"{task}_loaded_at" not in out:
            out[f"{task}_loaded_at"] = None
    return normalise_label_frame(out, COLUMNS)


def resolved(rows: list[dict], as_of=A, **kw) -> pd.DataFrame:
    return resolve_labels(frame_of(rows), as_of, WINDOWS, columns=COLUMNS,
                          **kw).set_index("impression_id")


def test_window_closing_exactly_at_as_of_is_mature():
    out = resolved([
        {"impression_id": "edge", "event_ts": "2026-10-11T00:00:00Z"},
        {"impression_id": "one-second-late", "event_ts": "2026-10-11T00:00:01Z"},
    ])
    assert out.loc["edge", "mask_conversion"] and out.loc["edge", "label_conversion"] == 0.0
    assert not out.loc["one-second-late", "mask_conversion"]
    assert out.loc["one-second-late", "label_conversion"] == 0.0  # masked, value is a placeholder
    # approval has the same 14-day window, application (3 days) has closed for both
    assert out["mask_approval"].tolist() == [True, False]
    assert out["mask_application"].tolist() == [True, True]


def test_event_loaded_at_or_after_as_of_does_not_exist_yet():
    out = resolved([
        {"impression_id": "loaded-before", "event_ts": "2026-10-05T10:00:00Z",
         "conversion_loaded_at": "2026-10-24T23:59:59Z"},
        {"impression_id": "loaded-at-as-of", "event_ts": "2026-10-05T10:00:00Z",
         "conversion_loaded_at": "2026-10-25T00:00:00Z"},
        {"impression_id": "loaded-after-immature", "event_ts": "2026-10-20T10:00:00Z",
         "conversion_loaded_at": "2026-10-26T06:00:00Z"},
    ])
    assert out.loc["loaded-before", "label_conversion"] == 1.0
    assert out.loc["loaded-before", "mask_conversion"]
    # mature and not loaded before A: a negative, although the event did happen later
    assert out.loc["loaded-at-as-of", "label_conversion"] == 0.0
    assert out.loc["loaded-at-as-of", "mask_conversion"]
    # immature and not loaded before A: unknown
    assert not out.loc["loaded-after-immature", "mask_conversion"]


def test_early_positive_of_an_immature_impression_stays_masked():
    # using it while its immature negatives are masked would inflate the conversion rate
    out = resolved([{"impression_id": "early", "event_ts": "2026-10-20T10:00:00Z",
                     "click_loaded_at": "2026-10-21T06:00:00Z",
                     "conversion_loaded_at": "2026-10-24T06:00:00Z"}])
    row = out.loc["early"]
    assert row["label_conversion"] == 1.0 and not row["mask_conversion"]
    assert row["label_click"] == 1.0 and row["mask_click"]
    # application matured (10-23 10:00 <= A) with no event: a real negative; approval unknown
    assert row["label_application"] == 0.0 and row["mask_application"]
    assert not row["mask_approval"]


def test_impressions_at_or_after_as_of_are_excluded():
    out = resolved([
        {"impression_id": "last-minute", "event_ts": "2026-10-24T23:59:00Z"},
        {"impression_id": "at-as-of", "event_ts": "2026-10-25T00:00:00Z"},
        {"impression_id": "after", "event_ts": "2026-10-25T08:00:00Z"},
    ])
    assert out.index.tolist() == ["last-minute"]
    assert not out.loc["last-minute", "mask_click"]


@pytest.mark.parametrize("event_ts", [
    pd.Timestamp("2026-10-23 23:30"),  # naive: read as UTC
    pd.Timestamp("2026-10-23 23:30", tz="UTC"),
    pd.Timestamp("2026-10-23 19:30", tz="America/New_York"),  # the same instant, EDT
    "2026-10-24T01:30:00+02:00",
])
def test_time_zones_normalise_to_utc(event_ts):
    rows = [{"impression_id": "late-evening", "event_ts": event_ts}]
    frame = frame_of(rows)
    assert frame.loc[0, "ds"] == dt.date(2026, 10, 23)
    assert frame.loc[0, "event_ts"] == pd.Timestamp("2026-10-23 23:30", tz="UTC")
    # the click window (1 day) closes 2026-10-24 23:30 UTC: mature as of 10-25, not as of 10-24
    assert resolved(rows, A).loc["late-evening", "mask_click"]
    assert not resolved(rows, dt.date(2026, 10, 24)).loc["late-evening", "mask_click"]


def test_loaded_at_time_zone_decides_visibility():
    rows = [
        {"impression_id": "aware", "event_ts": "2026-10-20T12:00:00Z",
         "conversion_loaded_at": pd.Timestamp("2026-10-25 01:30", tz="Europe/Berlin")},
        {"impression_id": "naive", "event_ts": pd.Timestamp("2026-10-20 12:00"),
         "conversion_loaded_at": pd.Timestamp("2026-10-25 01:30")},
    ]
    out = resolve_labels(normalise_label_frame(pd.DataFrame(rows).assign(
        **{f"{t}_loaded_at": None for t in TASKS if t != "conversion"}), COLUMNS), A, WINDOWS,
        columns=COLUMNS)
    out = out.set_index("impression_id")
    # 01:30 CEST is 2026-10-24 23:30 UTC: loaded before A
    assert out.loc["aware", "label_conversion"] == 1.0
    # naive 01:30 is UTC: after A, and the window has not closed
    assert out.loc["naive", "label_conversion"] == 0.0 and not out.loc["naive", "mask_conversion"]


def test_as_of_instant_accepts_dates_datetimes_and_strings():
    midnight = pd.Timestamp("2026-10-25", tz="UTC")
    assert as_of_instant(A) == midnight
    assert as_of_instant("2026-10-25") == midnight
    assert as_of_instant(dt.datetime(2026, 10, 25)) == midnight
    assert as_of_instant(pd.Timestamp("2026-10-25 09:00", tz="Asia/Tokyo")) == midnight
    with pytest.raises(LabelFrameError, match="expected a date YYYY-MM-DD, found '25/10'"):
        as_of_instant("25/10")


def test_naive_rule_counts_unknown_as_negative():
    rows = [{"impression_id": "young", "event_ts": "2026-10-20T10:00:00Z"}]
    out = resolved(rows, naive=True)
    assert out.loc["young", "mask_conversion"] and out.loc["young", "label_conversion"] == 0.0


@pytest.mark.parametrize(("days", "last"), [(14, "2026-10-10"), (1, "2026-10-23"),
                                            (3, "2026-10-21"), (1.5, "2026-10-22")])
def test_matured_through_is_the_last_whole_cohort(days, last):
    assert matured_through(A, days) == dt.date.fromisoformat(last)


def test_missing_columns_are_named():
    with pytest.raises(LabelFrameError, match=r"expected columns \['approval_loaded_at'\]"):
        normalise_label_frame(pd.DataFrame({
            "impression_id": ["a"], "event_ts": ["2026-10-01T00:00:00Z"],
            **{f"{t}_loaded_at": [None] for t in TASKS if t != "approval"}}), COLUMNS)


def test_unparseable_timestamps_are_named():
    with pytest.raises(LabelFrameError, match="column 'event_ts': expected timestamps"):
        frame_of([{"impression_id": "a", "event_ts": "yesterday"}])


def _contract(**maturity: MaturityWindow) -> Contract:
    return Contract(name="labels", path="custom/labels.yaml", version="1", owner=Owner("t"),
                    tables={"offline": "labels"}, fields=(), maturity=maturity)


def test_windows_come_from_the_contract_in_funnel_order():
    assert maturity_windows(PROJECT.labels) == WINDOWS
    assert list(maturity_windows(PROJECT.labels)) == list(TASKS)
    windows = maturity_windows(_contract(conversion=MaturityWindow("conversion", 21.0)))
    assert windows == {"conversion": 21.0}


def test_a_stage_without_a_window_is_refused_not_defaulted():
    with pytest.raises(MaturityConfigError,
                       match=r"custom/labels.yaml: expected a maturity window for stage 'click', "
                             r"found windows for \['conversion'\]"):
        maturity_windows(_contract(conversion=MaturityWindow("conversion", 21.0)), ("click",))


def test_bad_contract_windows_are_refused_with_the_file():
    with pytest.raises(MaturityConfigError, match=r"custom/labels.yaml.*'approval'.*found 0"):
        maturity_windows(_contract(approval=MaturityWindow("approval", 0)))
    with pytest.raises(MaturityConfigError, match=r"counts from 'click_ts'; expected 'event_ts'"):
        maturity_windows(_contract(conversion=MaturityWindow("conversion", 14, "click_ts")),
                         event_time="event_ts")
    # stages counting from different timestamps: the first stage's anchor is the expectation
    with pytest.raises(MaturityConfigError, match=r"stage 'b' counts from 'x'; expected 'y'"):
        maturity_windows(_contract(a=MaturityWindow("a", 1, "y"), b=MaturityWindow("b", 2, "x")))
