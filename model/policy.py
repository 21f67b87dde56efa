"""What the guard does about an anomaly: stop, drop the batch's update, or roll back.

``guard.on_anomaly`` chooses (``model.config.GuardConfig``): ``stop`` (the default) raises
the anomaly, and the job writes the forensic bundle and the triage; ``skip_batch`` drops the
failing batch's update (no optimizer step; the GradScaler rebuilt from its own state, so a
stop after ``unscale_`` leaves nothing half done) at most ``guard.max_skipped_batches``
times; ``rollback`` restores the last good snapshot (model, optimizers, scaler, guard windows,
taken every ``run.snapshot_every`` steps after a passing parameter check) at a learning rate a
replay of the failing stretch proves stable (the first of ``guard.rollback_lr_scales`` whose
replay passes the guard, the triage's own "a tenth of the learning rate is stable" evidence),
at most ``guard.max_rollbacks`` times. A rollback for a bad batch (impossible labels, an
out-of-contract or non-finite input) keeps the learning rate and drops that batch on the way
back instead. An anomaly found after the update was applied (a collapsing scaler), at a
checkpoint, or with its budget spent stops as before.

:func:`choose_action` is the pure decision, :func:`act_on` applies it to a
:class:`~model.training.Trainer`; :class:`GuardAction` is what was done, recorded in
the run's ``actions`` (the bundle's ``actions.json``, the ``training_action`` findings of the
train RunResult, TensorBoard's ``guard/*`` scalars).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from model.config import GuardConfig
from model.errors import TrainingAnomaly
from model.guard import Anomaly

if TYPE_CHECKING:
    from model.state import TrainingState
    from model.training import Trainer

__all__ = ["GuardAction", "choose_action", "act_on", "rollback_scale", "action_findings",
           "ALWAYS_STOP", "BAD_BATCH"]

ALWAYS_STOP = frozenset({"scaler_collapse", "non_finite_parameter"})
BAD_BATCH = frozenset({"invalid_labels", "out_of_contract_input", "impossible_loss"})


@dataclass(frozen=True)
class GuardAction:
    """One thing the guard did about an anomaly.

    Attributes:
        step: the step whose batch raised the anomaly.
        action: ``skip_batch``, ``rollback`` or ``stop``.
        anomaly: the anomaly kind; ``tasks`` the tasks it names; ``message`` its message.
        count: the how-many-th action of its kind this run (budget use).
        budget: the action's budget (``guard.max_skipped_batches`` / ``guard.max_rollbacks``).
        to_step: rollback: the step training restarted from.
        lr_scale: the learning-rate multiplier in force after the action.
        dropped: rollback: the steps whose batches are dropped on the way back.
        reason: why this action (and not another) was taken.
    """

    step: int
    action: str
    anomaly: str
    tasks: tuple[str, ...] = ()
    message: str = ""
    count: int = 0
    budget: int = 0
    to_step: int | None = None
    lr_scale: float = 1.0
    dropped: tuple[int, ...] = ()
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["tasks"], doc["dropped"] = list(self.tasks), list(self.dropped)
        return doc


def choose_action(anomaly: Anomaly, cfg: GuardConfig, used: Mapping[str, int]) -> tuple[str, str]:
    """``(action, reason)`` for ``anomaly`` under ``cfg``, given the budget ``used`` so far.

    Args:
        anomaly: what the guard saw.
        cfg: the guard config (``on_anomaly`` and the budgets).
        used: ``{"skip_batch": n, "rollback": m}`` actions taken so far this run.
    """
    policy = cfg.on_anomaly
    if policy == "stop":
        return "stop", "guard.on_anomaly is stop"
    if anomaly.kind in ALWAYS_STOP:
        return "stop", f"{anomaly.kind} is found after the update or at a checkpoint: it stops"
    budget = cfg.max_skipped_batches if policy == "skip_batch" else cfg.max_rollbacks
    if used.get(policy, 0) >= budget:
        key = "max_skipped_batches" if policy == "skip_batch" else "max_rollbacks"
        return "stop", f"{policy} budget spent ({used.get(policy, 0)} of guard.{key} {budget})"
    return policy, f"guard.on_anomaly is {policy} ({used.get(policy, 0) + 1} of {budget})"


def act_on(trainer: Trainer, exc: TrainingAnomaly, step: int, writer: Any = None) -> int:
    """Apply ``guard.on_anomaly`` to ``exc``, raised by ``trainer.step(step)``.

    Returns the step to go on from; re-raises ``exc`` when the action is to stop (recording
    the stop in ``trainer.actions`` first). ``writer``: a TensorBoard writer, or None.
    """
    anomaly = exc.anomaly
    used = {kind: sum(a.action == kind for a in trainer.actions)
            for kind in ("skip_batch", "rollback")}
    action, reason = choose_action(anomaly, trainer.config.guard, used)
    common = {"step": step, "anomaly": anomaly.kind, "tasks": tuple(anomaly.tasks),
              "message": anomaly.message, "reason": reason}
    state = None
    if action == "rollback":
        state = trainer.snapshots.before(step, trainer.config.run.replay_steps)
        if state is None:
            action = "stop"
            common["reason"] = "rollback: no good snapshot to restore"
    if action == "stop":
        trainer.actions.append(GuardAction(action="stop", lr_scale=trainer.lr_scale, **common))
        raise exc
    for opt in trainer.optimizers:
        opt.zero_grad(set_to_none=True)
    if action == "skip_batch":
        if trainer.scaler is not None:  # drop the half-done step: unscaled, not stepped
            saved = trainer.scaler.state_dict()
            trainer.scaler = torch.amp.GradScaler("cpu")
            trainer.scaler.load_state_dict(saved)
        taken = GuardAction(action="skip_batch", count=used["skip_batch"] + 1,
                            budget=trainer.config.guard.max_skipped_batches,
                            lr_scale=trainer.lr_scale, **common)
        resume = step + 1
    else:
        scale, dropped = rollback_scale(trainer, anomaly, state, step)
        if scale is None:
            common["reason"] = (f"{reason}; no learning-rate scale of "
                                f"{list(trainer.config.guard.rollback_lr_scales)} replays "
                                f"steps {state.step}-{step} through the guard")
            trainer.actions.append(GuardAction(action="stop", lr_scale=trainer.lr_scale, **common))
            raise exc
        trainer.restore(state)
        trainer.lr_scale *= scale
        trainer.dropped |= set(dropped)
        taken = GuardAction(action="rollback", count=used["rollback"] + 1,
                            budget=trainer.config.guard.max_rollbacks, to_step=state.step,
                            lr_scale=trainer.lr_scale, dropped=tuple(dropped), **common)
        resume = state.step
    trainer.actions.append(taken)
    if writer is not None:
        for kind in ("skip_batch", "rollback"):
            writer.add_scalar(f"guard/{kind}", used[kind] + (taken.action == kind), step)
        writer.add_scalar("guard/lr_scale", trainer.lr_scale, step)
    return resume

def rollback_scale(trainer: Trainer, anomaly: Anomaly, state: TrainingState,
                   step: int) -> tuple[float | None, tuple[int, ...]]:
    """The learning-rate multiplier to roll back with, and the batches to drop.

    A bad batch (impossible labels or loss, an out-of-contract or non-finite input) is
    dropped at the same rate. Otherwise each of ``guard.rollback_lr_scales`` in turn is
    replayed from ``state`` through ``step`` (``model.triage.replay``); the first the guard
    passes is returned (None: none is stable).
    """
    rows = trainer.plan.rows_for(step)
    if anomaly.kind in BAD_BATCH or not bool(
            torch.isfinite(trainer.data.features.dense[rows]).all()):
        return 1.0, (step,)
    from model.triage import replay

    for scale in trainer.config.guard.rollback_lr_scales:
        if not replay(trainer, state, step, precision=trainer.precision, lr_scale=scale).reproduced:
            return scale, ()
    return None, ()


def action_findings(actions: Iterable[GuardAction]) -> tuple[Any, ...]:
    """One warning ``training_action`` finding per skip or rollback (a stop has its own)."""
    from funnelguard.findings import Finding

    out = []
    for a in actions:
        if a.action == "stop":
            continue
        where = (f"; restarted from step {a.to_step} at learning rate x{a.lr_scale:g}"
                 + (f", dropping the batch(es) of step(s) {list(a.dropped)}" if a.dropped else "")
                 if a.action == "rollback" else "; the batch's update was dropped")
        out.append(Finding("training_action", False, "warning",
                           task=a.tasks[0] if len(a.tasks) == 1 else None, value=a.action,
                           threshold=float(a.budget), count=a.step,
                           message=f"step {a.step}: {a.action} ({a.count} of {a.budget}) on "
                                   f"{a.anomaly}{where}. {a.message}"))
    return tuple(out)
