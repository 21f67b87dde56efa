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
    BatchLabels,
    GuardState,
    RobustWindow,
    binomial_tail,
    check_grad_norm,
    check_parameters,
    check_scaler,
    check_task_losses,
    raise_for,
    task_spike,
)
from model.probe_checks import check_task_gradients

TASKS = ("click", "application", "conversion", "approval")
CFG = GuardConfig(loss_warmup=5, grad_warmup=5, probe_patience=2, domination_window=2)


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


def rare_state(n=60) -> GuardState:
    """Windows of a 0.1 % task at batch 256 (~85 known rows): one batch in 12 has a positive."""
    state = GuardState.fresh(("approval",), CFG)
    for i in range(n):
        positives = 1 if i % 12 == 0 else 0
        neg, pos = 0.0025 + 0.0001 * (i % 3), 6.0 + 0.5 * (i % 4)
        loss = (84 * neg + positives * pos) / 85 if positives else neg
        state.loss["approval"].push(loss)
        state.push_labels({"approval": BatchLabels(85, positives, neg, pos if positives else
                                                   math.nan)})
    return state


def _batch(positives, known=85, neg=0.0026, pos=6.2):
    labels = BatchLabels(known, positives, neg, pos if positives else math.nan)
    return {"approval": ((known - positives) * neg + positives * pos) / known}, {"approval": labels}


def test_binomial_tail_is_the_upper_sum():
    for n, k, rate in [(0, 10, 0.1), (1, 1, 0.5), (2, 3, 0.5), (3, 85, 0.0025), (40, 85, 0.0025),
                       (12, 256, 0.04)]:
        exact = sum(math.comb(k, j) * rate ** j * (1 - rate) ** (k - j) for j in range(n, k + 1))
        assert binomial_tail(n, k, rate) == pytest.approx(exact, rel=1e-9, abs=1e-300)
    assert binomial_tail(5, 4, 0.5) == 0.0 and binomial_tail(1, 10, 0.0) == 0.0


def test_a_draw_of_a_few_positives_is_not_a_spike():
    state = rare_state()
    losses, labels = _batch(3)  # 3 positives where 0.08 are expected: tail ~1e-4
    # The batch loss alone (the rule before issue 15) calls it a spike ...
    assert check_task_losses(61, losses, state, CFG).kind == "loss_spike"
    assert task_spike("approval", losses["approval"], state, CFG) is not None
    # ... its positives explain it: each class's loss is normal and 3 positives are plausible.
    assert check_task_losses(61, losses, state, CFG, labels) is None
    plain, plain_labels = _batch(0)
    assert check_task_losses(61, plain, state, CFG, plain_labels) is None


def test_negatives_spike_names_the_task_and_the_class():
    state = rare_state()
    losses, labels = _batch(0, neg=0.65)  # every negative at p = 0.5: a shifted head
    a = check_task_losses(61, losses, state, CFG, labels)
    assert a.kind == "loss_spike" and a.tasks == ("approval",) and a.value > CFG.loss_spike_z
    assert "approval's 85 known negatives have mean loss 0.65" in a.message
    assert a.evidence["label_counts"]["approval"]["positives"] == 0


def test_positives_spike_counts_after_enough_batches_with_positives():
    losses, labels = _batch(1, pos=90.0)
    a = check_task_losses(61, losses, rare_state(), CFG, labels)
    assert a.kind == "loss_spike" and "1 known positives have mean loss 90" in a.message
    # Two batches with positives so far: the positives' window is not judged yet.
    assert task_spike("approval", losses["approval"], rare_state(n=24), CFG,
                      labels["approval"]) is None


def test_implausibly_many_positives_are_a_spike():
    state = rare_state()
    losses, labels = _batch(40)  # flipped labels: each positive costs what positives cost
    a = check_task_losses(61, losses, state, CFG, labels)
    assert a.kind == "loss_spike" and a.tasks == ("approval",)
    assert "40 positives of 85 known rows" in a.message and "binomial tail" in a.message
    seen_pos, seen_known = state.seen["approval"]
    assert (seen_pos, seen_known) == (5, 60 * 85)


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
    assert check_task_gradients(15, balanced, {}, state, CFG) is None  # median of 2 drops
    assert state.dominance_streak == 0
    # Unweighted norms: the same balanced gradients under a click weight of 10 dominate.
    weighted = GuardState.fresh(TASKS, CFG)
    for step in (5, 10):
        found = check_task_gradients(step, balanced, {}, weighted, CFG, {"click": 10.0})
    assert found.kind == "task_domination" and found.tasks == ("click",)
    assert found.evidence["unweighted_share"]["click"] == pytest.approx(1 / 1.3, abs=1e-3)
    assert check_task_gradients(5, balanced, {}, GuardState.fresh(TASKS, CFG), CFG) is None


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
    rare = rare_state()
    assert GuardState.from_dict(rare.to_dict(), CFG).to_dict() == rare.to_dict()
    # A state saved before the per-class windows (an older checkpoint) starts them empty.
    old = {k: v for k, v in rare.to_dict().items() if k not in ("negatives", "positives", "seen")}
    back = GuardState.from_dict(old, CFG)
    assert len(back.negatives["approval"]) == 0 and back.seen["approval"] == (0, 0)
    assert len(back.loss["approval"]) == len(rare.loss["approval"])
