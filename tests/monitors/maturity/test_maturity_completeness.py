"""Completeness: drops of loaded positives against the trailing norm, at the cohorts' ages."""

from __future__ import annotations

import datetime as dt

import pytest

from funnelguard.project import PACKAGED_PROJECT, load_project
from monitors.maturity import LabelColumns, check_completeness
from monitors.maturity import normalise_label_frame as _normalise

A = dt.date(2026, 10, 25)
COLUMNS = LabelColumns.of(load_project(PACKAGED_PROJECT))


def normalise_label_frame(frame):
    return _normalise(frame, COLUMNS)


def check(frame, task, as_of, window, **kw):
    return check_completeness(frame, task, as_of, window, columns=COLUMNS, **kw)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(("task", "window"), [("click", 1), ("application", 3),
                                               ("conversion", 14), ("approval", 14)])
def test_complete_labels_pass(synthetic_labels, seed, task, window):
    frame = normalise_label_frame(synthetic_labels(seed=seed))
    result = check(frame, task, A, window)
    assert result.assessed and result.passed, result.message
    assert result.tests > 20


def test_most_conversions_dropped_since_a_landing_fail(synthetic_labels):
    frame = normalise_label_frame(synthetic_labels(drop=("conversion", "2026-10-10", 0.8)))
    result = check(frame, "conversion", A, 14)
    assert not result.passed
    assert result.ratio < 0.4
    assert result.p_value < result.alpha_per_test
    assert dt.date(2026, 10, 6) <= result.collapse_since <= dt.date(2026, 10, 15)
    assert result.kind == "landing" and result.span[1] == dt.date(2026, 10, 24)
    assert "conversion labels missing from the landings" in result.message
    # the other tasks are untouched by that drop
    assert check(frame, "approval", A, 14).passed


def test_one_matured_cohort_without_labels_fails_on_that_cohort(synthetic_labels):
    frame = normalise_label_frame(synthetic_labels(blank_cohort=("application", "2026-10-12")))
    result = check(frame, "application", A, 3)
    assert not result.passed
    assert result.kind == "cohort" and result.span == (dt.date(2026, 10, 12), dt.date(2026, 10, 12))
    assert result.observed == 0 and result.expected > 20


def test_half_of_conversions_dropped_is_seen_at_higher_volume(synthetic_labels):
    # at 3000 impressions a day a 50 % loss over 15 landings is below the detection limit
    # (docs/labels.md); at 12000 a day it is clear
    frame = normalise_label_frame(synthetic_labels(per_day=12000,
                                                   drop=("conversion", "2026-10-10", 0.5)))
    result = check(frame, "conversion", A, 14)
    assert not result.passed and 0.35 < result.ratio < 0.65
    assert dt.date(2026, 10, 6) <= result.collapse_since <= dt.date(2026, 10, 15)


def test_stalled_pipeline_fails_from_the_stall(synthetic_labels):
    frame = normalise_label_frame(synthetic_labels(stall_days=4))
    result = check(frame, "click", A, 1)
    assert not result.passed
    assert result.kind == "landing" and result.collapse_since == dt.date(2026, 10, 21)


def test_young_cohorts_are_not_read_as_a_collapse(synthetic_labels):
    # the newest conversion cohorts hold few positives only because they are young
    frame = normalise_label_frame(synthetic_labels(seed=5))
    young = frame[frame["ds"] >= dt.date(2026, 10, 20)]
    assert young["conversion_loaded_at"].notna().mean() < 0.003 * 0.7
    assert check(frame, "conversion", A, 14).passed


def test_small_shortfall_needs_the_ratio_too(synthetic_labels):
    # a 20 % loss of clicks over 15 landings is statistically clear but above max_ratio
    frame = normalise_label_frame(synthetic_labels(drop=("click", "2026-10-10", 0.2)))
    strict = check(frame, "click", A, 1, max_ratio=0.95)
    assert not strict.passed
    assert check(frame, "click", A, 1).passed


def test_not_assessed_without_matured_history(synthetic_labels):
    frame = normalise_label_frame(synthetic_labels())
    frame = frame[frame["ds"] >= dt.date(2026, 10, 14)]  # no conversion cohort has matured
    result = check(frame, "conversion", A, 14)
    assert not result.assessed and result.passed and result.tests == 0
    assert "not assessed" in result.message
