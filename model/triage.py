"""Automatic triage of a stopped training run: replay the failing step and classify the cause.

From the saved state at most ``run.replay_steps`` steps before the failure, the intermediate
batches are replayed deterministically (same batch order, same RNG state) and the failing batch
is measured again: in the run's own precision, and in fp32 under
``torch.autograd.detect_anomaly``. The verdict, first match wins:

- **data**: the batch itself carries non-finite or out-of-contract values (the features named),
  labels that are not 0/1 or known rows whose label is missing (``model.batch_audit``), a
  loss no 0/1 label allows (negative, or above ``|logit| + log 2``), or one hashed id bucket
  whose embedding-row gradient dwarfs its table's (the table named, the bucket in the
  evidence, with the batch's rows of that bucket and their positives);
- **numerics**: the run used reduced precision, the replay in that precision fails again and
  the fp32 replay does not (both replayed losses recorded);
- **task**: one task alone is anomalous (its loss, or its gradient on the last shared layer
  against its own probe history) while the others are normal;
- **optimization**: the batch is fine from the good state and every task is hit: the
  dynamics (evidence: the same replay at a tenth of the learning rate).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from model.batch_audit import label_problems
from model.errors import TrainingAnomaly
from model.guard import (
    Anomaly,
    BatchLabels,
    GuardState,
    check_grad_norm,
    check_task_losses,
    task_spike,
)
from model.state import TrainingState
from model.training import Trainer

__all__ = ["ReplayRun", "TriageResult", "triage", "replay", "measure"]


@dataclass(frozen=True)
class ReplayRun:
    """One replay from ``from_step`` through the failing step ``to_step``."""

    precision: str
    detect_anomaly: bool
    from_step: int
    to_step: int
    losses: dict[int, dict[str, float]]
    grad_norm: float | None
    reproduced: bool
    anomaly: str | None
    anomaly_ops: list[str]
    lr_scale: float = 1.0
    probe: dict[str, Any] | None = None
    labels: dict[str, BatchLabels] = field(default_factory=dict)  # of the failing batch

    def final_losses(self) -> dict[str, float]:
        return self.losses.get(self.to_step, {})

    def to_json(self) -> dict[str, Any]:
        return {"precision": self.precision, "detect_anomaly": self.detect_anomaly,
                "from_step": self.from_step, "to_step": self.to_step,
                "losses": {str(k): v for k, v in self.losses.items()},
                "grad_norm": self.grad_norm, "reproduced": self.reproduced,
                "anomaly": self.anomaly, "anomaly_ops": self.anomaly_ops,
                "lr_scale": self.lr_scale, "probe": self.probe,
                "label_counts": {t: dataclasses.asdict(b) for t, b in self.labels.items()}}


@dataclass(frozen=True)
class TriageResult:
    """The verdict, its evidence and the replays it rests on."""

    verdict: str
    reason: str
    features: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    replays: tuple[ReplayRun, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason, "features": list(self.features),
                "tasks": list(self.tasks), "replays": [r.to_json() for r in self.replays],
                "evidence": self.evidence}


def _op_name(exc: RuntimeError) -> str:
    """The backward function anomaly mode names ("Function 'MulBackward0' returned nan ...")."""
    found = re.search(r"Function '(\w+)'", str(exc))
    return found.group(1) if found else str(exc).splitlines()[0][:200]


def measure(trainer: Trainer, step: int, *, precision: str,
            detect_anomaly: bool = False) -> dict[str, Any]:
    """Forward and backward on batch ``step`` without updating anything (for the triage).

    Returns per-task losses, each task's :class:`~model.guard.BatchLabels` (what the guard's
    spike rule weighs the loss against), the global gradient norm, the per-task probe and,
    under ``detect_anomaly``, the names of the backward operations anomaly mode flagged.
    """
    rows = trainer.plan.rows_for(step)
    ops: list[str] = []
    probe = None
    ctx = torch.autograd.detect_anomaly(check_nan=True) if detect_anomaly \
        else contextlib.nullcontext()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with ctx:
            logits, losses = trainer._forward(rows, precision)
            labels = trainer.batch_labels(rows, logits)
            values = {t: float(v.detach()) for t, v in losses.items()}
            if len(trainer.tasks) > 1:
                try:
                    probe = trainer._probe(losses)
                except RuntimeError as exc:
                    ops.append(_op_name(exc))
            total = trainer.weighting(losses)
            for opt in trainer.optimizers:
                opt.zero_grad(set_to_none=True)
            scale = 1.0
            if precision == "fp16-static":
                scale = trainer.config.optim.static_loss_scale
            elif precision == "fp16" and trainer.scaler is not None:
                scale = trainer.scaler.get_scale()
            try:
                (total * scale).backward()
            except RuntimeError as exc:
                ops.append(_op_name(exc))
    if scale != 1.0:
        for p in trainer._all_params():
            if p.grad is not None:
                p.grad.div_(scale)
    norm = trainer._grad_norm_and_clip()
    for opt in trainer.optimizers:
        opt.zero_grad(set_to_none=True)
    return {"losses": values, "label_counts": labels, "grad_norm": norm, "probe": probe,
            "anomaly_ops": [o for o in ops if o]}


def replay(trainer: Trainer, state: TrainingState, to_step: int, *, precision: str,
           detect_anomaly: bool = False, lr_scale: float = 1.0) -> ReplayRun:
    """Restore ``state``, replay the steps before ``to_step``, then measure ``to_step``."""
    trainer.restore(state)
    saved_scale = trainer.lr_scale
    trainer.lr_scale = saved_scale * lr_scale
    losses: dict[int, dict[str, float]] = {}
    try:
        for s in range(state.step, to_step):
            if s in trainer.dropped:  # a batch a rollback dropped is not replayed either
                continue
            try:
                stats = trainer.step(s, precision=precision)
            except TrainingAnomaly as exc:
                return ReplayRun(precision, detect_anomaly, state.step, to_step, losses, None,
                                 True, exc.anomaly.kind, [], lr_scale)
            losses[s] = stats.losses
        m = measure(trainer, to_step, precision=precision, detect_anomaly=detect_anomaly)
    finally:
        trainer.lr_scale = saved_scale
    losses[to_step] = m["losses"]
    cfg = trainer.config.guard
    guard = GuardState.from_dict(trainer.guard.to_dict(), cfg)
    found = check_task_losses(to_step, m["losses"], guard, cfg, m["label_counts"])  # as the run did
    dynamic = precision == "fp16" and trainer.scaler is not None
    if found is None and not (dynamic and not math.isfinite(m["grad_norm"])):
        found = check_grad_norm(to_step, m["grad_norm"], guard, cfg)
    probe = m["probe"]
    return ReplayRun(precision, detect_anomaly, state.step, to_step, losses, m["grad_norm"],
                     found is not None, found.kind if found else None, m["anomaly_ops"],
                     lr_scale, {"norms": probe["norms"]} if probe else None, m["label_counts"])


def _anomalous_tasks(run: ReplayRun, guard: GuardState, probes: list[dict[str, Any]],
                     cfg) -> set[str]:
    """Tasks whose replayed loss, or gradient share, stands out against their own history.

    A loss stands out by the guard's own rule (:func:`model.guard.task_spike`, weighed against
    the batch's positives), so the triage never calls normal noise of a rare task a spike.
    """
    flagged = set()
    for t, v in run.final_losses().items():
        if not math.isfinite(v) or v > cfg.max_task_loss:
            flagged.add(t)
        elif t in guard.loss and task_spike(t, v, guard, cfg, run.labels.get(t)) is not None:
            flagged.add(t)
    if run.probe and probes:
        for t, v in run.probe["norms"].items():
            past = sorted(p["norms"].get(t, float("nan")) for p in probes)
            past = [x for x in past if math.isfinite(x)]
            if past and (not math.isfinite(v) or v > 10 * max(past[len(past) // 2], 1e-12)):
                flagged.add(t)
    return flagged


def _data_features(scan: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {f: e for f, e in scan.items() if e.get("non_finite") or e.get("out_of_contract")}


def _bad_labels(trainer: Trainer, anomaly: Anomaly) -> TriageResult | None:
    """The data verdict of a batch whose labels or losses no 0/1 labelling allows, or of an
    exploding id row; None when neither."""
    rows = trainer.plan.rows_for(anomaly.step)
    found = label_problems(anomaly.step, trainer.data.labels[rows], trainer.data.masks[rows],
                           trainer.tasks, trainer.audit.missing[rows]
                           if trainer.audit.missing is not None else None)
    if found is not None or anomaly.kind == "impossible_loss":
        found = found or anomaly
        return TriageResult("data", f"the batch's labels are not 0/1: {found.message}", (),
                            tuple(found.tasks), (), dict(found.evidence))
    if anomaly.kind != "embedding_row_explosion":
        return None
    table, bucket = anomaly.evidence["table"], int(anomaly.evidence["bucket"])
    column = list(trainer.id_tables).index(table)
    mine = trainer.data.features.ids[rows][:, column] == bucket
    known = trainer.data.masks[rows][mine]
    positives = (trainer.data.labels[rows][mine] * known).sum(0)
    share = {t: {"rows": int(mine.sum()), "known": int(known[:, i].sum()),
                 "positives": int(positives[i])} for i, t in enumerate(trainer.tasks)}
    said = ", ".join(f"{t} {v['positives']}/{v['known']}" for t, v in share.items())
    return TriageResult(
        "data", f"bucket {bucket} of id {table} takes a row gradient {anomaly.value:.4g}x its "
        f"table's median row's, probe after probe; its {int(mine.sum())} rows in the batch have "
        f"positives/known {said}", (table,), (), (),
        {"bucket": bucket, "table": table, "bucket_labels": share, **dict(anomaly.evidence)})


def triage(trainer: Trainer, anomaly: Anomaly, state: TrainingState | None,
           scan: Mapping[str, Mapping[str, Any]]) -> TriageResult:
    """Replay and classify; leaves ``trainer`` in an undefined state (training is over)."""
    f = anomaly.step
    labelled = _bad_labels(trainer, anomaly)
    if labelled is not None:
        return labelled
    bad = _data_features(scan)
    if state is None:
        if bad:
            return TriageResult("data", _data_reason(bad), tuple(bad))
        return TriageResult("optimization", "no replay state was available; the batch is clean",
                            tasks=anomaly.tasks)
    probes = list(trainer.probe_history)
    replays: list[ReplayRun] = []
    reduced = None
    if trainer.precision != "fp32":
        reduced = replay(trainer, state, f, precision=trainer.precision)
        replays.append(reduced)
    fp32 = replay(trainer, state, f, precision="fp32", detect_anomaly=True)
    replays.append(fp32)
    guard_after = GuardState.from_dict(trainer.guard.to_dict(), trainer.config.guard)
    evidence: dict[str, Any] = {
        "replayed_losses": {r.precision: r.final_losses() for r in replays},
        "anomaly_ops": sorted({op for r in replays for op in r.anomaly_ops}),
    }
    if bad:
        return TriageResult("data", _data_reason(bad), tuple(bad), anomaly.tasks,
                            tuple(replays), evidence)
    if reduced is not None and reduced.reproduced and not fp32.reproduced:
        return TriageResult(
            "numerics",
            f"fails again in {trainer.precision} ({reduced.anomaly}; losses "
            f"{_fmt_losses(reduced.final_losses())}, grad norm {reduced.grad_norm}) but is "
            f"stable in fp32 (losses {_fmt_losses(fp32.final_losses())}, grad norm "
            f"{fp32.grad_norm:.4g})", (), anomaly.tasks, tuple(replays), evidence)
    flagged = _anomalous_tasks(fp32, guard_after, probes, trainer.config.guard)
    flagged |= set(anomaly.tasks) if len(anomaly.tasks) == 1 and not flagged else set()
    trainer.restore(state)
    good = measure(trainer, f, precision="fp32")
    evidence["loss_at_good_state"] = {"step": state.step, "losses": good["losses"]}
    if len(trainer.tasks) > 1 and len(flagged) == 1:
        task = next(iter(flagged))
        return TriageResult(
            "task", f"only task {task} is anomalous in the fp32 replay (loss "
            f"{fp32.final_losses().get(task, float('nan')):.4g}); the other tasks stay normal",
            (), (task,), tuple(replays), evidence)
    slower = replay(trainer, state, f, precision="fp32", lr_scale=0.1)
    replays.append(slower)
    evidence["stable_at_lr_x0.1"] = not slower.reproduced
    fine = all(math.isfinite(v) for v in good["losses"].values())
    return TriageResult(
        "optimization",
        f"the batch is clean and {'fine' if fine else 'not finite'} from the state of step "
        f"{state.step} (losses {_fmt_losses(good['losses'])}); the run diverges on its own "
        f"dynamics in fp32 across {len(flagged) or 'all'} task(s)"
        + ("; a tenth of the learning rate is stable" if not slower.reproduced else ""),
        (), tuple(sorted(flagged)), tuple(replays), evidence)


def _fmt_losses(losses: Mapping[str, float]) -> str:
    return ", ".join(f"{t}={v:.4g}" for t, v in losses.items())


def _data_reason(bad: Mapping[str, Mapping[str, Any]]) -> str:
    parts = []
    for name, e in bad.items():
        kinds = [f"{e[k]} {k}" for k in ("nan", "posinf", "neginf", "out_of_contract") if e.get(k)]
        parts.append(f"{name} ({', '.join(kinds)})")
    return "the batch carries non-finite or out-of-contract values in " + "; ".join(parts)
