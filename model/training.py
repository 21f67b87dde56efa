"""The guarded training loop, read top to bottom: optimizers, one step, the run.

:class:`Trainer` owns the network, the optimizers (a lazy row-wise Adam, ``model.optimizers``,
for the embedding tables; AdamW for the dense parameters), the optional GradScaler and the
guard's memory. ``step()`` audits the batch before its forward pass (labels, masks, input
ranges: ``model.batch_audit``), measures (losses, each task's known rows, positives and
per-class loss, the global gradient norm before clipping; every ``probe_every`` steps the
per-task unweighted gradient probe, the per-parameter-group norms and the id tables' row
gradients; the scaler; the measuring functions are ``model.step_measurements``) and asks
``model.guard`` after each measurement, so a bad batch is caught before its update is applied.
``run()`` adds snapshots for the triage and the rollback, checkpoints, TensorBoard, a progress
bar and what the guard does about an anomaly (``model.policy``: stop, skip the batch, roll
back). The triage reuses ``step()`` to replay.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from model.batch_audit import BatchAudit
from model.batches import BatchPlan, TrainingTensors
from model.config import TrainConfig
from model.errors import TrainingAnomaly
from model.guard import (
    Anomaly,
    BatchLabels,
    GuardState,
    check_grad_norm,
    check_parameters,
    check_possible_losses,
    check_scaler,
    check_task_losses,
    loss_ceiling,
    raise_for,
)
from model.losses import TaskWeighting, task_losses
from model.network import FunnelNet
from model.optimizers import RowAdam
from model.policy import GuardAction, act_on
from model.probe_checks import check_embedding_rows, check_task_gradients
from model.state import SnapshotRing, TrainingState, write_checkpoint
from model.step_measurements import (
    RowGradientWindow,
    StepStats,
    autocast_for,
    batch_label_stats,
    clip_global_grad_norm,
    first_non_finite_module,
    group_grad_norms,
    non_finite_rows,
    parameter_groups,
    task_gradient_probe,
)

__all__ = ["Trainer", "StepStats", "FitResult", "fit", "autocast_for", "first_non_finite_module"]

HISTORY = 512


@dataclass(frozen=True)
class FitResult:
    """A finished run: steps taken, the last losses, where it resumed from, what the guard did."""

    steps: int
    final_losses: dict[str, float]
    resumed_from: int | None = None
    loss_history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    actions: tuple[GuardAction, ...] = ()


class Trainer:
    """One training run over encoded data.

    Args:
        net: the network (its output biases already at the base-rate logits).
        data: the training split as tensors.
        config: the training config.
        out_dir: where checkpoints and TensorBoard events go (None: nowhere).
        on_step: called with each step's :class:`StepStats` after its update.
        audit: the per-batch audit (``BatchAudit.of(encoder, frame, tasks)``: input ranges
            and missing labels); None audits the labels' values only.
    """

    def __init__(self, net: FunnelNet, data: TrainingTensors, config: TrainConfig, *,
                 out_dir: Path | None = None,
                 on_step: Callable[[StepStats], None] | None = None,
                 audit: BatchAudit | None = None) -> None:
        self.net, self.data, self.config = net, data, config
        self.tasks = net.tasks
        self.out_dir = Path(out_dir) if out_dir else None
        self.on_step = on_step
        o = config.optim
        self.plan = BatchPlan(len(data), o.batch_size, config.run.seed)
        self.total_steps = o.max_steps or o.epochs * self.plan.steps_per_epoch
        self.weighting = TaskWeighting(self.tasks, config.loss)
        self.tables = list(net.embedding_tables().values())
        self.id_tables = dict(net.id_embeddings.tables.items())
        self.row_window = RowGradientWindow(self.id_tables)
        self.groups = parameter_groups(net)
        table_ids = {id(t.weight) for t in self.tables}
        self.optimizers = self._build_optimizers(table_ids)
        self.lr_scale = 1.0  # the triage's replays and the rollback lower the rate through this
        self.precision = o.precision
        self.scaler = torch.amp.GradScaler("cpu") if o.precision == "fp16" else None
        self.audit = audit or BatchAudit(tuple(self.tasks))
        self.guard = GuardState.fresh(self.tasks, config.guard)
        self.snapshots = SnapshotRing(2)
        self.start_step = 0
        self.resumed_from: int | None = None
        self.loss_history = {t: deque(maxlen=HISTORY) for t in self.tasks}
        self.grad_history: deque[tuple[int, float]] = deque(maxlen=HISTORY)
        self.probe_history: deque[dict[str, Any]] = deque(maxlen=64)
        self.fingerprint: dict[str, Any] = {}
        self.actions: list[GuardAction] = []
        self.dropped: set[int] = set()  # steps whose batches a rollback drops

    # -- optimizers -------------------------------------------------------------------------
    def _build_optimizers(self, table_ids: set[int]) -> list[torch.optim.Optimizer]:
        o = self.config.optim
        head_of = {id(p): t for t in self.tasks for p in self.net.heads[t].parameters()}
        groups: dict[float, list[nn.Parameter]] = {}
        sparse_params = []
        for p in list(self.net.parameters()) + list(self.weighting.parameters()):
            if id(p) in table_ids:
                sparse_params.append(p)
                continue
            scale = float(o.head_lr_scale.get(head_of.get(id(p), ""), 1.0))
            groups.setdefault(o.lr * scale, []).append(p)
        # ``base_lr`` travels in the groups (and so in every state_dict): the schedule scales it.
        dense_groups = [{"params": ps, "lr": lr, "base_lr": lr} for lr, ps in groups.items()]
        if o.sparse_embeddings:
            return [torch.optim.AdamW(dense_groups, lr=o.lr, weight_decay=o.weight_decay),
                    RowAdam([{"params": sparse_params, "lr": o.sparse_lr,
                              "base_lr": o.sparse_lr}], lr=o.sparse_lr)]
        dense_groups.append({"params": sparse_params, "lr": o.sparse_lr, "base_lr": o.sparse_lr,
                             "weight_decay": 0.0})
        return [torch.optim.AdamW(dense_groups, lr=o.lr, weight_decay=o.weight_decay)]

    def lr_factor(self, step: int) -> float:
        """The schedule's multiplier of every base learning rate at ``step`` (pure in step).

        The linear warmup (``optim.warmup_steps``) multiplies the schedule by
        ``(step + 1) / warmup_steps`` over the first steps.
        """
        o = self.config.optim
        warmup = min((step + 1) / o.warmup_steps, 1.0) if o.warmup_steps > 0 else 1.0
        if o.lr_schedule == "constant" or self.total_steps <= 0:
            return warmup
        progress = min(step / self.total_steps, 1.0)
        if o.lr_schedule == "cosine":
            return warmup * 0.5 * (1.0 + math.cos(math.pi * progress))
        return warmup * (1.0 - progress)

    def _set_learning_rates(self, step: int) -> None:
        factor = self.lr_factor(step) * self.lr_scale
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * factor

    # -- state ------------------------------------------------------------------------------
    def tensor_state(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "weighting": self.weighting.state_dict(),
                "optimizers": [opt.state_dict() for opt in self.optimizers],
                "scaler": self.scaler.state_dict() if self.scaler else None}

    def capture(self, step: int) -> TrainingState:
        return TrainingState(step, self.tensor_state(), self.guard.to_dict(),
                             torch.get_rng_state()).clone()

    def restore(self, state: TrainingState) -> None:
        """Continue from ``state`` (a snapshot or a checkpoint); its buffers stay untouched."""
        state = state.clone()
        self.net.load_state_dict(state.tensors["net"])
        self.weighting.load_state_dict(state.tensors["weighting"])
        for opt, sd in zip(self.optimizers, state.tensors["optimizers"], strict=True):
            opt.load_state_dict(sd)
        if self.scaler is not None:  # a fresh scaler: never the live one's per-step stage
            self.scaler = torch.amp.GradScaler("cpu")
            if state.tensors.get("scaler"):
                self.scaler.load_state_dict(state.tensors["scaler"])
        self.guard = GuardState.from_dict(state.guard, self.config.guard)
        self.row_window = RowGradientWindow(self.id_tables)
        torch.set_rng_state(state.rng)
        self.start_step = state.step

    # -- one step ---------------------------------------------------------------------------
    def _forward(self, rows: torch.Tensor, precision: str
                 ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The batch's ``{task: B}`` logits and ``{task: scalar}`` losses."""
        batch = self.data.features.index(rows)
        with autocast_for(precision):
            logits = self.net(batch)
        return logits, task_losses(logits, self.data.labels[rows], self.data.masks[rows],
                                   self.tasks, self.config.loss)

    def _losses(self, rows: torch.Tensor, precision: str) -> dict[str, torch.Tensor]:
        return self._forward(rows, precision)[1]

    def batch_labels(self, rows: torch.Tensor, logits: dict[str, torch.Tensor]
                     ) -> dict[str, BatchLabels]:
        """Each task's known rows, positives and mean BCE per class in the batch ``rows``.

        The guard tells a rare task's real loss spike from the draw of a few more positives
        with these (``model.guard.task_spike``, ``model.step_measurements.batch_label_stats``).
        """
        return batch_label_stats(logits, self.data.labels[rows], self.data.masks[rows],
                                 self.tasks)

    def _probe(self, losses: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Per-task gradient norms and pairwise cosines on the last shared layer."""
        shared = self.net.last_shared_parameters()
        return task_gradient_probe(losses, self.weighting.weights(), shared, self.tasks)

    def _grad_norm_and_clip(self) -> float:
        return clip_global_grad_norm(self.optimizers, self.tables, self.config.optim.clip_norm)

    def step(self, step: int, *, precision: str | None = None, guarded: bool = True) -> StepStats:
        """Train on batch ``step``; with ``guarded`` raise a TrainingAnomaly before a bad update."""
        precision = precision or self.precision
        cfg = self.config.guard
        check = guarded and cfg.enabled
        rows = self.plan.rows_for(step)
        rng = torch.get_rng_state()
        if check and cfg.audit_batches:
            self._stop_if(self.audit.check(step, rows, self.data), rows, rng, precision, False)
        logits, losses = self._forward(rows, precision)
        values = {t: float(v.detach()) for t, v in losses.items()}
        labels = self.batch_labels(rows, logits) if cfg.enabled else {}
        if check:
            pos_weight = self.config.loss.pos_weight
            ceilings = {t: loss_ceiling(b, float(pos_weight.get(t, 1.0)))
                        for t, b in labels.items()}
            self._stop_if(check_possible_losses(step, values, ceilings), rows, rng, precision)
            self._stop_if(check_task_losses(step, values, self.guard, cfg, labels), rows, rng,
                          precision)
        probing = check and step % cfg.probe_every == 0
        probe = self._probe(losses) if probing and len(self.tasks) > 1 else None
        if probe is not None:
            self.probe_history.append({"step": step, **probe})
        total = self.weighting(losses)
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        scale = None
        dynamic = self.scaler is not None and precision == "fp16"
        if dynamic:
            self.scaler.scale(total).backward()
            for opt in self.optimizers:
                self.scaler.unscale_(opt)
        elif precision == "fp16-static":
            (total * self.config.optim.static_loss_scale).backward()
            for p in self._all_params():
                if p.grad is not None:
                    p.grad.div_(self.config.optim.static_loss_scale)
        else:
            total.backward()
        groups = group_grad_norms(self.groups) if probing else None
        if check:
            self.row_window.add()
        row_stats = self.row_window.stats() if probing else None
        if probe is not None:
            self.probe_history[-1].update(groups=groups, rows=row_stats)
        norm = self._grad_norm_and_clip()
        if check and not (dynamic and not math.isfinite(norm)):
            per_task = probe["norms"] if probe else None
            self._stop_if(check_grad_norm(step, norm, self.guard, cfg, per_task), rows, rng,
                          precision)
        if probe is not None:
            self._stop_if(check_task_gradients(step, probe["norms"], probe["cosines"],
                                               self.guard, cfg, probe["weights"]),
                          rows, rng, precision)
        if row_stats and not (dynamic and not math.isfinite(norm)):
            self._stop_if(check_embedding_rows(step, row_stats, self.guard, cfg), rows, rng,
                          precision)
        self._set_learning_rates(step)
        skipped = False
        if dynamic:
            before = self.scaler.get_scale()
            for opt in self.optimizers:
                self.scaler.step(opt)
            self.scaler.update()
            scale = self.scaler.get_scale()
            skipped = scale < before
            if check:
                self._stop_if(check_scaler(step, scale, skipped, self.guard, cfg), rows, rng,
                              precision)
        else:
            for opt in self.optimizers:
                opt.step()
        for t, v in values.items():
            self.guard.loss[t].push(v)
            self.loss_history[t].append((step, v))
        self.guard.push_labels(labels)
        if not skipped:
            self.guard.grad_norm.push(norm)
        self.grad_history.append((step, norm))
        return StepStats(step, values, norm, probe, scale, skipped, labels, groups, row_stats)

    def _all_params(self) -> list[nn.Parameter]:
        return [p for opt in self.optimizers for g in opt.param_groups for p in g["params"]]

    def _stop_if(self, anomaly: Anomaly | None, rows: torch.Tensor, rng: torch.Tensor,
                 precision: str, hooks: bool = True) -> None:
        if anomaly is None:
            return
        module = None
        if hooks and self.config.guard.activation_hooks and anomaly.module is None:
            state = torch.get_rng_state()
            torch.set_rng_state(rng)
            module = first_non_finite_module(self.net, self.data.features.index(rows), precision)
            torch.set_rng_state(state)
        if module is not None:
            anomaly = Anomaly(anomaly.kind, anomaly.step, anomaly.message + f"; first non-finite "
                              f"module output: {module}", anomaly.tasks, anomaly.value,
                              anomaly.threshold, module, anomaly.evidence)
        raise_for(anomaly)

    def non_finite_parameters(self) -> dict[str, list[int]]:
        """Parameter name -> rows (first dimension) holding a non-finite value."""
        return non_finite_rows(self.net)

    # -- the run ----------------------------------------------------------------------------
    def checkpoint(self, step: int) -> Path | None:
        """Refuse a non-finite parameter, then write the state at the start of ``step``."""
        if self.config.guard.enabled:
            anomaly = check_parameters(step, self.non_finite_parameters())
            if anomaly is not None:
                raise_for(anomaly)
        if self.out_dir is None:
            return None
        return write_checkpoint(self.out_dir, self.capture(step), dict(self.fingerprint))

    def run(self) -> FitResult:
        """Train from ``start_step`` to ``total_steps``; raises a TrainingAnomaly on a stop.

        An anomaly goes through ``guard.on_anomaly`` (:mod:`model.policy`): the batch's update
        is dropped, or the last good snapshot restored, within the budgets; else it is raised.
        """
        run, cfg = self.config.run, self.config.guard
        writer = self._writer()
        bar = None
        if run.progress:
            from funnelguard.progress import progress

            bar = progress(self.total_steps, "train", unit="step", initial=self.start_step)
        self.net.train()
        try:
            step = self.start_step
            while step < self.total_steps:
                if cfg.enabled and step % run.snapshot_every == 0:
                    self._snapshot(step)
                if run.checkpoint_every and step > self.start_step \
                        and step % run.checkpoint_every == 0:
                    self.checkpoint(step)
                if step in self.dropped:
                    step += 1
                    continue
                try:
                    stats = self.step(step)
                except TrainingAnomaly as exc:
                    step = act_on(self, exc, step, writer)
                    continue
                if writer is not None and step % run.log_every == 0:
                    self._log(writer, stats)
                if bar is not None:
                    bar.update(1)
                if self.on_step is not None:
                    self.on_step(stats)
                step += 1
            self.checkpoint(self.total_steps)
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
        final = {t: (sum(v for _, v in list(h)[-20:]) / max(len(list(h)[-20:]), 1))
                 for t, h in self.loss_history.items()}
        return FitResult(self.total_steps, final, self.resumed_from,
                         {t: list(h) for t, h in self.loss_history.items()}, tuple(self.actions))

    def _snapshot(self, step: int) -> None:
        """A replay state; under ``rollback`` only after a passing parameter check (good)."""
        if self.config.guard.on_anomaly == "rollback" and self.non_finite_parameters():
            return
        self.snapshots.take(step, self.tensor_state(), self.guard.to_dict())

    def _writer(self):
        if self.out_dir is None or not self.config.run.tensorboard:
            return None
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.out_dir / "tensorboard"))

    def _log(self, writer, stats: StepStats) -> None:
        for t, v in stats.losses.items():
            writer.add_scalar(f"loss/{t}", v, stats.step)
        if stats.grad_norm is not None:
            writer.add_scalar("grad_norm/global", stats.grad_norm, stats.step)
        if stats.probe:
            for t, v in stats.probe["norms"].items():
                writer.add_scalar(f"grad_norm/{t}", v, stats.step)
        for name, v in (stats.groups or {}).items():
            writer.add_scalar(f"grad_norm/group/{name}", v, stats.step)
        for table, r in (stats.rows or {}).items():
            writer.add_scalar(f"embedding_rows/{table}/ratio", r["ratio"], stats.step)
        writer.add_scalar("guard/lr_scale", self.lr_scale, stats.step)
        if stats.scale is not None:
            writer.add_scalar("amp/scale", stats.scale, stats.step)


def fit(data: TrainingTensors, net: FunnelNet, config: TrainConfig, *,
        out_dir: Path | None = None, on_step: Callable[[StepStats], None] | None = None,
        resume_from: TrainingState | None = None) -> tuple[Trainer, FitResult]:
    """Build a :class:`Trainer`, optionally restore a state, and run it to the end."""
    trainer = Trainer(net, data, config, out_dir=out_dir, on_step=on_step)
    if resume_from is not None:
        trainer.restore(resume_from)
        trainer.resumed_from = resume_from.step
    return trainer, trainer.run()
