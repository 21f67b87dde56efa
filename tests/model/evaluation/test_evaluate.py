"""Evaluation findings on hand-built holdout frames with tiny scorers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from funnelguard.warehouse import TASKS
from model.evaluation.bootstrap import PairedBootstrap
from model.evaluation.errors import ThresholdsError
from model.evaluation.evaluate import evaluate_predictions
from model.evaluation.thresholds import EvaluationThresholds, load_thresholds

FAST = PairedBootstrap(40, seed=1)
RATES = {"click": 0.2, "application": 0.1, "conversion": 0.08, "approval": 0.05}
SEGMENTS = ("device_type", "item_type", "user")


def holdout(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Rows with known true probabilities per task and segments; labels drawn from them."""
    rng = np.random.default_rng(seed)
    truth = {t: 1 / (1 + np.exp(-(np.log(r / (1 - r)) + 1.5 * rng.normal(size=n))))
             for t, r in RATES.items()}
    frame = pd.DataFrame({f"label_{t}": (rng.random(n) < truth[t]).astype(float) for t in TASKS})
    for t in TASKS:
        frame[f"mask_{t}"] = True
    frame["device_type"] = rng.choice(["ios", "android", "web"], n)
    frame["item_type"] = rng.choice(["card", "mortgage"], n)
    frame["user"] = rng.choice(["new", "returning"], n)
    return frame, truth


def by(findings, check, task=None, segment=None):
    return [f for f in findings if f.check == check and (task is None or f.task == task)
            and f.segment == segment]


def test_a_good_model_passes_floors_and_calibration():
    frame, truth = holdout()
    result = evaluate_predictions(frame, truth, bootstrap=FAST)
    for t in TASKS:
        (auc,) = by(result.findings, "eval_auc_floor", t)
        (cal,) = by(result.findings, "eval_calibration", t)
        assert auc.passed and auc.severity == "error" and auc.value > 0.75
        assert cal.passed and 0.8 < cal.value < 1.25
    assert not [f for f in result.findings if f.failed_error]
    overall = result.overall("click")
    assert overall.rows == 4000 and overall.positives == int(frame["label_click"].sum())
    assert overall.model["auc"].low < overall.model["auc"].value < overall.model["auc"].high


def test_auc_below_its_floor_fails_with_task_value_and_floor():
    frame, truth = holdout()
    noise = np.random.default_rng(1).random(len(frame)) * 0.2
    preds = {**truth, "approval": noise}  # unrelated to the label
    result = evaluate_predictions(frame, preds, bootstrap=FAST, segments=SEGMENTS,
                                  thresholds=EvaluationThresholds(calibration_band=(0, 99)))
    (f,) = by(result.findings, "eval_auc_floor", "approval")
    assert not f.passed and f.severity == "error"
    assert f.value < 0.6 and f.threshold == 0.65 and f.count == 4000
    segment = by(result.findings, "eval_auc_floor", "approval", "device_type=ios")
    assert segment and segment[0].severity == "warning"
    assert all(f.passed for f in by(result.findings, "eval_auc_floor", "click"))


def test_miscalibration_fails_when_the_interval_lies_outside_the_band():
    frame, truth = holdout()
    result = evaluate_predictions(frame, {**truth, "click": truth["click"] * 2.0},
                                  bootstrap=FAST)
    (f,) = by(result.findings, "eval_calibration", "click")
    assert not f.passed and f.value == pytest.approx(2.0, rel=0.1) and f.threshold == [0.8, 1.25]


def test_no_positives_is_a_clear_finding_not_a_crash():
    frame, truth = holdout()
    frame["label_approval"] = 0.0
    result = evaluate_predictions(frame, truth, bootstrap=FAST)
    (f,) = by(result.findings, "eval_degenerate", "approval")
    assert not f.passed and f.severity == "error" and f.value == 0 and f.count == 4000
    assert "0 positives" in f.message
    assert result.overall("approval").model["auc"].value is None
    # with no positives the log loss is still defined: the mean of -log(1 - p)
    p = np.clip(truth["approval"][frame["mask_approval"].to_numpy(bool)], 1e-15, 1 - 1e-15)
    assert np.isclose(result.overall("approval").model["log_loss"].value, -np.log1p(-p).mean(),
                      rtol=1e-6)
    assert not by(result.findings, "eval_auc_floor", "approval")


def test_constant_scores_are_a_clear_finding():
    frame, truth = holdout()
    result = evaluate_predictions(frame, {**truth, "click": np.full(len(frame), 0.2)},
                                  bootstrap=FAST)
    (f,) = by(result.findings, "eval_degenerate", "click")
    assert not f.passed and "does not rank" in f.message
    assert result.overall("click").model["auc"].value is None
    known = frame["mask_click"].to_numpy(bool)
    expected = 0.2 * known.sum() / frame.loc[known, "label_click"].sum()
    assert np.isclose(result.overall("click").model["calibration_ratio"].value, expected,
                      rtol=1e-9)


def test_masked_rows_do_not_count():
    frame, truth = holdout()
    frame.loc[:1999, "mask_conversion"] = False
    result = evaluate_predictions(frame, truth, bootstrap=FAST, segments=False)
    assert result.overall("conversion").rows == 2000
    assert result.overall("click").rows == 4000


def test_champion_comparison_fails_on_a_deliberately_worse_model():
    frame, truth = holdout()
    rng = np.random.default_rng(2)
    worse = {t: np.clip(p + rng.normal(0, 2 * RATES[t], len(p)), 1e-4, 0.999)
             for t, p in truth.items()}
    result = evaluate_predictions(frame, worse, champion=truth, bootstrap=FAST, segments=False)
    failed = {(f.check, f.task) for f in result.findings if f.failed_error}
    for t in TASKS:
        assert ("eval_champion_auc", t) in failed
        (f,) = by(result.findings, "eval_champion_auc", t)
        assert f.value < f.threshold < 0 and f.severity == "error"
    again = evaluate_predictions(frame, truth, champion=worse, bootstrap=FAST, segments=False)
    assert all(f.passed for f in again.findings if f.check.startswith("eval_champion"))


def test_oracle_auc_is_reported_beside_the_model():
    frame, truth = holdout()
    result = evaluate_predictions(frame, {t: np.sqrt(p) for t, p in truth.items()}, oracle=truth,
                                  bootstrap=FAST, segments=False)
    s = result.overall("click")
    assert s.oracle["auc"].value == pytest.approx(s.model["auc"].value)  # same ranking
    (gap,) = by(result.findings, "eval_oracle_gap", "click")
    assert gap.passed and gap.value == pytest.approx(0.0, abs=1e-12)


def test_unscored_rows_are_left_out_and_counted():
    frame, truth = holdout()
    p = truth["click"].copy()
    p[:10] = np.nan
    result = evaluate_predictions(frame, {**truth, "click": p}, bootstrap=FAST, segments=False)
    (f,) = by(result.findings, "eval_unscored", "click")
    assert f.count == 10 and f.severity == "warning"
    assert result.overall("click").rows == len(frame) - 10


def test_thresholds_file_overrides_and_refuses_unknown_keys(tmp_path):
    good = tmp_path / "t.yaml"
    good.write_text("evaluation:\n  auc_floor: {click: 0.7}\nreplay:\n  rank_k: 3\n")
    ev, rp = load_thresholds(good, TASKS)
    assert ev.auc_floor["click"] == 0.7 and ev.auc_floor["approval"] == 0.65 and rp.rank_k == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("evaluation:\n  auc_flor: {click: 0.7}\n")
    with pytest.raises(ThresholdsError, match=r"bad.yaml: evaluation: unknown key 'auc_flor'"):
        load_thresholds(bad, TASKS)
    task = tmp_path / "task.yaml"
    task.write_text("evaluation:\n  auc_floor: {clicks: 0.7}\n")
    with pytest.raises(ThresholdsError, match=r"auc_floor: .*unknown stages \['clicks'\]"):
        load_thresholds(task, TASKS)
