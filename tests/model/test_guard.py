"""The guard's pure decisions: each check's failing example and its passing counterpart."""

from __future__ import annotations

import math

import pytest

from model.config import GuardConfig
from model.errors import (
    GradientConflict,
    GradientExplosion,
    LossSpike,
    NonFiniteLoss,
    TaskDomination,
    TrainingAnomaly,
)
from model.guard import (
    GuardState,
    RobustWindow,
    check_grad_norm,
    check_parameters,
    check_scaler,
    check_task_gradients,
    check_task_losses,
    raise_for,
)

TASKS = ("click", "application", "conversion", "approval")
CFG = GuardConfig(loss_warmup=5, grad_warmup=5, probe_patience=2)


def warmed(loss=0.2, grad=1.0, n=30) -> GuardState:
    state = GuardState.fresh(TASKS, CFG)
    for i in range(n):
        for t in TASKS:
            state.loss[t].push(loss + 0.01 * (i % 3))
        state.grad_norm.push(grad + 0.05 * (i % 4))
    return state


def test_robust_window_median_and_z():
    w = RobustWindow(5, [1.0, 2.0, 3.0, 4.0, 100.0])
    assert w.median() == 3.0
    assert w.z(3.0) == 0.0
    assert w.z(100.0) > 40
    w.push(float("nan"))
    assert len(w) == 5


def test_non_finite_loss_names_the_tasks():
    values = {"click": 0.2, "application": float("nan"), "conversion": 0.1, "approval": math.inf}
    a = check_task_losses(7, values, warmed(), CFG)
    assert a.kind == "non_finite_loss" and a.tasks == ("application", "approval") and a.step == 7
    with pytest.raises(NonFiniteLoss) as info:
        raise_for(a)
    assert isinstance(info.value, TrainingAnomaly) and info.value.anomaly is a


def test_loss_ceiling_and_spike():
    state = warmed()
    clean = {t: 0.21 for t in TASKS}
    assert check_task_losses(1, clean, state, CFG) is None
    diverged = check_task_losses(1, {**clean, "click": 80.0}, state, CFG)
    assert diverged.kind == "loss_divergence" and diverged.tasks == ("click",)
    assert diverged.value == 80.0 and diverged.threshold == CFG.max_task_loss
    spike = check_task_losses(1, {**clean, "conversion": 4.0}, state, CFG)
    assert spike.kind == "loss_spike" and spike.tasks == ("conversion",)
    assert spike.value > CFG.loss_spike_z
    with pytest.raises(LossSpike):
        raise_for(spike)
    # Not yet warmed up: no spike verdict from too little history.
    assert check_task_losses(1, {**clean, "conversion": 4.0}, warmed(n=3), CFG) is None


def test_rare_task_single_positive_is_not_a_spike():
    state = GuardState.fresh(TASKS, CFG)
    for i in range(40):  # one batch in five holds one positive
        for t in TASKS:
            state.loss[t].push(0.06 if i % 5 == 0 else 0.01)
    assert check_task_losses(1, {t: 0.12 for t in TASKS}, state, CFG) is None


def test_gradient_norm_non_finite_ceiling_and_explosion():
    state = warmed()
    assert check_grad_norm(3, 1.2, state, CFG) is None
    assert check_grad_norm(3, math.nan, state, CFG).kind == "non_finite_gradient"
    ceiling = check_grad_norm(3, 2e4, warmed(n=1), CFG)
    assert ceiling.kind == "gradient_explosion" and ceiling.threshold == CFG.max_grad_norm
    exploded = check_grad_norm(3, 60.0, state, CFG)
    assert exploded.kind == "gradient_explosion"
    assert exploded.threshold == pytest.approx(CFG.grad_explosion_factor * state.grad_norm.median())
    with pytest.raises(GradientExplosion):
        raise_for(exploded)


def test_domination_needs_patience_and_names_the_task():
    state = warmed()
    norms = {"click": 10.0, "application": 0.01, "conversion": 0.01, "approval": 0.01}
    assert check_task_gradients(5, norms, {}, state, CFG) is None  # first probe
    a = check_task_gradients(10, norms, {}, state, CFG)
    assert a.kind == "task_domination" and a.tasks == ("click",) and a.value > 0.995
    with pytest.raises(TaskDomination):
        raise_for(a)
    balanced = {"click": 1.0, "application": 0.5, "conversion": 0.2, "approval": 0.1}
    assert check_task_gradients(15, balanced, {}, state, CFG) is None
    assert state.dominance_streak == 0


def test_conflict_needs_patience_and_names_the_pair():
    state = warmed()
    norms = {"click": 1.0, "application": 1.0}
    cos = {("click", "application"): -0.99}
    assert check_task_gradients(5, norms, cos, state, CFG) is None
    a = check_task_gradients(10, norms, cos, state, CFG)
    assert a.kind == "gradient_conflict" and a.tasks == ("click", "application")
    with pytest.raises(GradientConflict):
        raise_for(a)
    assert check_task_gradients(15, norms, {("click", "application"): 0.1}, state, CFG) is None


def test_scaler_collapse_and_skip_rate():
    state = GuardState.fresh(TASKS, CFG)
    assert check_scaler(1, 65536.0, False, state, CFG) is None
    collapsed = check_scaler(2, 0.5, True, state, CFG)
    assert collapsed.kind == "scaler_collapse" and collapsed.threshold == CFG.scaler_min_scale
    state = GuardState.fresh(TASKS, CFG)
    found = [check_scaler(i, 1024.0, True, state, CFG) for i in range(CFG.scaler_max_skips + 1)]
    assert found[-2] is None and found[-1].kind == "scaler_collapse"
    assert found[-1].value == CFG.scaler_max_skips + 1


def test_non_finite_parameter_names_rows():
    assert check_parameters(4, {}) is None
    a = check_parameters(4, {"id_embeddings.tables.user_id.weight": [17, 99]})
    assert a.kind == "non_finite_parameter" and a.module == "id_embeddings.tables.user_id.weight"
    assert a.evidence["rows"]["id_embeddings.tables.user_id.weight"] == [17, 99]


def test_guard_state_round_trip():
    state = warmed()
    state.dominance_streak = 2
    back = GuardState.from_dict(state.to_dict(), CFG)
    assert back.to_dict() == state.to_dict()
